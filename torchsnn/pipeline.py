"""The steps of a run (simulate, theory, compare) and what each writes into the run folder."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from torchsnn.analysis.figures import activity_overview, rate_histograms
from torchsnn.analysis.metrics import compare_samples
from torchsnn.config import BuiltRun, build_network
from torchsnn.meanfield.build import model_from_config
from torchsnn.meanfield.distributions import RateDistribution, rate_distribution
from torchsnn.meanfield.solver import SolveResult, solve
from torchsnn.monitors.tensorboard import TensorBoardLogger
from torchsnn.outputs import write_json, write_neuron_table
from torchsnn.simulation import SimulationResult, simulate

log = logging.getLogger("torchsnn")
MODES = ("theory", "simulate", "compare")


def run_simulation(
    cfg: dict[str, Any], run_dir: Path, summary: dict[str, Any], tb: TensorBoardLogger | None
) -> tuple[BuiltRun, SimulationResult]:
    """Build and simulate the network; fill ``summary['simulation']`` and write the per-neuron table."""
    built = build_network(cfg)
    sim, logs = cfg["simulation"], cfg["logging"]
    net = built.network
    log.info(
        "network: %s; %d synapses; device %s; %d replica(s); block of %d steps",
        ", ".join(f"{n}={p.size}" for n, p in net.populations.items()),
        sum(p.n_edges for p in net.projections.values()),
        built.device,
        net.batch,
        net.block_steps,
    )
    result = simulate(
        net,
        duration_ms=sim["duration_ms"],
        transient_ms=sim["transient_ms"],
        generator=built.generator,
        raster_neurons=sim.get("raster_neurons", 0),
        raster_ms=sim.get("raster_ms", 1000.0),
        voltage_every_ms=sim.get("voltage_every_ms", 1.0),
        progress=logs.get("progress", True),
        callbacks=[tb] if tb else [],
        callback_every_ms=logs.get("log_every_ms", 100.0),
    )
    model_s = sim["duration_ms"] * 1e-3
    summary["scaffold"] = built.scaffold.summary()
    summary["simulation"] = result.summary()
    summary["run"].update(
        device=str(built.device),
        replicas=net.batch,
        simulation_wall_time_s=result.wall_time_s,
        model_time_s=model_s,
        wall_s_per_model_s=result.wall_time_s / model_s,
    )
    write_neuron_table(run_dir / "neurons.csv", result, built.scaffold)
    for name, s in summary["simulation"].items():
        log.info(
            "simulation %s: rate %.3f ± %.3f Hz (median %.3f), CV ISI %.2f, chi %.3f",
            name,
            s["rate_mean_hz"],
            s["rate_std_hz"],
            s["rate_median_hz"],
            s["cv_isi_mean"],
            s["chi"],
        )
    log.info("simulated %.2f s of model time in %.1f s", model_s, result.wall_time_s)
    return built, result


def run_theory(
    cfg: dict[str, Any], summary: dict[str, Any], built: BuiltRun | None
) -> tuple[SolveResult, dict[str, RateDistribution]]:
    """Solve the mean-field equations of the same network; fill ``summary['theory']``."""
    mf = cfg.get("meanfield") or {}
    t0 = time.perf_counter()
    model = model_from_config(cfg, scaffold=built.scaffold if built else None)
    result = solve(
        model,
        tol=float(mf.get("tol", 1e-10)),
        max_iter=int(mf.get("max_iter", 40)),
        continuation=int(mf.get("continuation", 0)),
        initial_rate_hz=float(mf.get("initial_rate_hz", 5.0)),
    )
    rng = np.random.default_rng(int(cfg["seed"]))
    dists = {
        name: rate_distribution(model, result.x, name, int(mf.get("samples", 200_000)), rng)
        for name in model.populations
    }
    summary["theory"] = {name: d.summary() for name, d in dists.items()}
    summary["theory_solver"] = {
        **result.diagnostics(),
        "degrees": mf.get("degrees", "laws"),
        "total_wall_time_s": time.perf_counter() - t0,
    }
    for name, d in dists.items():
        log.info("theory %s: rate %.3f ± %.3f Hz (median %.3f)", name, d.mean_hz, d.std_hz, d.median_hz)
    log.info("mean-field solve: %s", result.diagnostics())
    return result, dists


def run_comparison(
    cfg: dict[str, Any], summary: dict[str, Any], sim: SimulationResult, dists: dict[str, RateDistribution]
) -> dict[str, np.ndarray]:
    """Per population: KS, Wasserstein, relative mean/std errors of simulated rates against the prediction passed
    through the same counting noise as the measurement (Poisson counts over the window); the same metrics
    against the raw prediction are kept under ``*_raw`` keys. Returns the noise-matched predicted samples."""
    window_s = (sim.duration_ms - sim.transient_ms) * 1e-3
    rng = np.random.default_rng(int(cfg["seed"]) + 1)
    comparison, matched = {}, {}
    for name, d in dists.items():
        simulated = sim.rates_hz(name).numpy().ravel()
        matched[name] = d.with_counting_noise(window_s, rng)
        std_counted = float(np.sqrt(d.std_hz**2 + d.mean_hz / window_s))
        metrics = compare_samples(simulated, matched[name], d.mean_hz, std_counted)
        raw = compare_samples(simulated, d.samples_hz, d.mean_hz, d.std_hz)
        comparison[name] = {
            **metrics,
            **{f"{k}_raw": v for k, v in raw.items()},
            "counting_noise": "poisson",
            "window_s": window_s,
        }
        log.info(
            "compare %s: KS %.3f, W1 %.3f Hz, mean error %+.1f%%, std error %+.1f%%",
            name,
            metrics["ks"],
            metrics["wasserstein_hz"],
            100 * metrics["mean_rel_error"],
            100 * metrics["std_rel_error"],
        )
    summary["comparison"] = comparison
    return matched


def run(cfg: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """Run ``cfg['mode']`` and write everything into ``run_dir``; returns the summary."""
    mode = cfg.get("mode", "compare")
    run_dir.mkdir(parents=True, exist_ok=True)
    logs = cfg["logging"]
    summary: dict[str, Any] = {"run": {"mode": mode, "seed": cfg["seed"]}}
    tb = TensorBoardLogger(run_dir / "tensorboard") if logs.get("tensorboard", True) else None
    built = sim = dists = matched = None
    try:
        if mode in ("simulate", "compare"):
            built, sim = run_simulation(cfg, run_dir, summary, tb)
            write_json(run_dir / "summary.json", summary)
        if mode in ("theory", "compare"):
            _, dists = run_theory(cfg, summary, built)
        if mode == "compare":
            matched = run_comparison(cfg, summary, sim, dists)
        write_json(run_dir / "summary.json", summary)
        if logs.get("figures", True):
            write_figures(run_dir, cfg, sim, dists, matched)
        if tb:
            log_to_tensorboard(tb, summary, sim, dists)
    finally:
        if tb:
            tb.close()
    log.info("outputs in %s", run_dir)
    return summary


def write_figures(
    run_dir: Path,
    cfg: dict[str, Any],
    sim: SimulationResult | None,
    dists: dict[str, RateDistribution] | None,
    matched: dict[str, np.ndarray] | None,
) -> None:
    names = list(sim.spike_stats) if sim else list(dists or {})
    rates = {n: sim.rates_hz(n).numpy() for n in names} if sim else {n: dists[n].samples_hz for n in names}
    predicted = None
    if dists:
        predicted = {}
        for n in names:
            samples = matched[n] if matched else dists[n].samples_hz
            top = max(float(np.quantile(rates[n], 0.995)) * 1.1, 1.0)
            grid = np.linspace(0, top, 61)
            predicted[n] = (0.5 * (grid[1:] + grid[:-1]), np.histogram(samples, bins=grid, density=True)[0])
    title = "simulation vs theory" if sim and dists else ("simulation" if sim else "theory")
    rate_histograms(rates, run_dir / "rates.png", title=f"{title} (seed {cfg['seed']})", predicted=predicted)
    if sim:
        raster = {n: (r["step"].numpy(), r["neuron"].numpy()) for n, r in sim.raster.items()}
        pop_rates = {n: sim.population_rate.binned_rate_hz(n, 1.0)[:, 0].numpy() for n in names}
        activity_overview(pop_rates, 1.0, raster, sim.dt_ms, run_dir / "activity.png")


def log_to_tensorboard(
    tb: TensorBoardLogger,
    summary: dict[str, Any],
    sim: SimulationResult | None,
    dists: dict[str, RateDistribution] | None,
) -> None:
    if sim:
        tb.log_rates({n: sim.rates_hz(n).numpy() for n in sim.spike_stats}, tag="simulation/rate_hz")
    if dists:
        tb.log_rates({n: d.samples_hz for n, d in dists.items()}, tag="theory/rate_hz")
    for section in ("simulation", "theory", "comparison"):
        if section in summary:
            tb.log_summary(summary[section], section)
