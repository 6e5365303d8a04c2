"""The steps of a run (theory, simulate, compare) and what each writes into the run folder.

Order: wire the scaffold (simulate/compare) -> solve the theory (theory/compare, and plastic runs whose traces or
weights start from the prediction) -> simulate -> compare. ``summary.json`` gets ``simulation``, ``theory``,
``comparison`` (per population) and, for plastic runs, ``*_weights`` (per plastic projection), ``convergence``
and ``alpha``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from torchsnn.analysis.comparison import run_comparison
from torchsnn.analysis.metrics import synchrony_or_none
from torchsnn.analysis.plasticity_summary import replica_r_p, summarise_plasticity
from torchsnn.analysis.run_outputs import log_to_tensorboard, stability_note, write_figures, write_run_report
from torchsnn.checkpoint import CheckpointWriter, latest_checkpoint, restore
from torchsnn.config import BuiltRun, build_network
from torchsnn.config.builder import Seeds, build_scaffold, file_scaffold_hook, resolve_device
from torchsnn.config.instantiate import instantiate
from torchsnn.config.preflight import preflight
from torchsnn.config.theory_builder import degree_source, solve_from_config
from torchsnn.errors import CheckpointError, ConfigError, SimulationAbortedError, SolverError
from torchsnn.io.exports import write_exports
from torchsnn.meanfield.distributions import (
    Distribution,
    neuron_rates,
    rate_distribution,
    sample_population,
    weight_distribution,
)
from torchsnn.meanfield.model import MeanFieldModel
from torchsnn.meanfield.solver import SolveResult
from torchsnn.memory import RunMemory
from torchsnn.monitors.tensorboard import TensorBoardLogger, run_hparams
from torchsnn.monitors.weights import WeightMonitor
from torchsnn.outputs import write_json, write_neuron_table
from torchsnn.runguard import Interrupted, RunFolder, StopFlag, Writes, resumed_with
from torchsnn.scaffold import SparseScaffold
from torchsnn.scaffold.from_file import uses_file
from torchsnn.simulation import SimulationInterruptedError, SimulationResult, simulate

log = logging.getLogger("torchsnn")
MODES = ("theory", "simulate", "compare", "study")


@dataclass
class Theory:
    model: MeanFieldModel
    result: SolveResult
    rates: dict[str, Distribution]
    weights: dict[str, Distribution]
    neuron_rates_hz: dict[str, np.ndarray] = field(default_factory=dict)


def plastic_projections(cfg: dict[str, Any]) -> list[str]:
    return list((cfg.get("plasticity") or {}).get("projections") or [])


def run_theory(cfg: dict[str, Any], summary: dict[str, Any], scaffold: SparseScaffold | None) -> Theory:
    """Solve the mean-field equations of the network; predicted rate (and plastic weight) distributions; each
    realised neuron's predicted rate when the scaffold is wired."""
    t0 = time.perf_counter()
    model, result = solve_from_config(cfg, scaffold=scaffold)
    rng = np.random.default_rng(int(cfg["seed"]))
    n = int(cfg["meanfield"]["samples"])
    samples = {name: sample_population(model, result.x, name, n, rng) for name in model.populations}
    rates = {name: rate_distribution(model, result.x, samples[name], name) for name in model.populations}
    weights = {}
    for name in plastic_projections(cfg):
        index = model.block_names.index(name)
        weights[name] = weight_distribution(model, index, samples, rng)
    theory = Theory(model, result, rates, weights)
    if scaffold is not None:
        for name in model.populations:
            k = np.stack([d.numpy() for d in scaffold.in_degrees(name).values()], -1).astype(np.float64)
            order = list(scaffold.in_degrees(name))
            k = k[:, [order.index(pre) for pre in model.populations[name].nodes.inputs]]
            theory.neuron_rates_hz[name] = neuron_rates(model, result.x, name, k)
    summary["theory"] = {name: d.summary() for name, d in rates.items()}
    if weights:
        summary["theory_weights"] = {
            name: {**d.summary(), **model.block_info.get(name, {})} for name, d in weights.items()
        }
    multiple = {}
    with torch.no_grad():
        for name in model.populations:
            if model.has_implicit_rates(name):
                nodes = model.node_rates(result.x, name)
                multiple[name] = nodes.multiple_roots / nodes.nu_hz.numel()
    summary["theory_solver"] = {
        **result.diagnostics(),
        "fraction_of_nodes_with_several_stable_rates": multiple,
        "degrees": degree_source(cfg, scaffold),
        "total_wall_time_s": time.perf_counter() - t0,
    }
    summary["theory_solver"]["stability"] = stability_note(
        summary["theory_solver"]["leading_eigenvalues"], result.stable
    )
    for name, d in rates.items():
        log.info("theory %s: rate %.3f ± %.3f Hz (median %.3f)", name, d.mean, d.std, d.median)
    for name, d in weights.items():
        log.info("theory %s: |w| %.4f ± %.4f mV", name, d.mean, d.std)
    log.info("mean-field solve: %s", result.diagnostics())
    return theory


def run_simulation(
    cfg: dict[str, Any],
    run_dir: Path,
    summary: dict[str, Any],
    tb: TensorBoardLogger | None,
    scaffold: SparseScaffold,
    theory: Theory | None,
    resume: dict[str, Any] | None = None,
    stop_requested: Callable[[], bool] | None = None,
    writes: Writes | None = None,
) -> tuple[BuiltRun, SimulationResult]:
    """Build and simulate the network (continuing from ``resume``, a checkpoint); fill ``summary['simulation']``
    (and weights, convergence, alpha). Checkpoints go to ``run_dir/checkpoints``."""
    predicted = {name: torch.as_tensor(r) for name, r in theory.neuron_rates_hz.items()} if theory else None
    built = build_network(cfg, scaffold=scaffold, predicted_rates_hz=predicted)
    if resume is not None:
        restore(resume, built.network, built.generator)
        log.info("resumed from t = %.1f ms", resume["time_ms"])
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
    weights = WeightMonitor(round(float(logs["weights_every_ms"]) / net.dt_ms)) if net.estimators else None
    every_ms = float(sim["checkpoint_every_ms"])
    checkpoints = (
        CheckpointWriter(
            run_dir / "checkpoints",
            round(every_ms / net.dt_ms),
            net,
            built.generator,
            cfg,
            int(sim["checkpoint_keep"]),
        )
        if every_ms > 0
        else None
    )
    result = simulate(
        net,
        duration_ms=sim["duration_ms"],
        transient_ms=sim["transient_ms"],
        generator=built.generator,
        raster_neurons=sim["raster_neurons"],
        raster_ms=sim["raster_ms"],
        voltage_every_ms=sim["voltage_every_ms"],
        progress=logs["progress"],
        callbacks=[tb] if tb else [],
        callback_every_ms=logs["log_every_ms"],
        extra_monitors=[weights] if weights else [],
        health_every_ms=float(sim["health_check_ms"]),
        max_rate_fraction=float(sim["max_rate_fraction"]),
        checkpoints=checkpoints,
        resume=resume["simulation"] if resume else None,
        stop_requested=stop_requested,
    )
    model_s = sim["duration_ms"] * 1e-3
    summary["scaffold"] = built.scaffold.summary()
    summary["simulation"] = result.summary()
    for s in summary["simulation"].values():
        s["chi"] = synchrony_or_none(s["chi"], s["fraction_silent"])
    summary["run"].update(
        device=str(built.device),
        backend=result.backend,
        replicas=net.batch,
        simulation_wall_time_s=result.wall_time_s,
        model_time_s=model_s,
        wall_s_per_model_s=result.wall_time_s / model_s,
    )
    if weights:
        result.extra["weights"] = weights.result()
        summarise_plasticity(cfg, summary, result)
    if checkpoints is not None and checkpoints.failures:
        summary["run"]["checkpoint_failures"] = checkpoints.failures
    (writes or Writes()).attempt(
        "neurons.csv", lambda: write_neuron_table(run_dir / "neurons.csv", result, built.scaffold)
    )
    for name, s in summary["simulation"].items():
        log.info(
            "simulation %s: rate %.3f ± %.3f Hz (median %.3f), CV ISI %.2f, chi %s",
            name,
            s["rate_mean_hz"],
            s["rate_std_hz"],
            s["rate_median_hz"],
            s["cv_isi_mean"],
            "n/a (silent)" if s["chi"] is None else f"{s['chi']:.3f}",
        )
    log.info("simulated %.2f s of model time in %.1f s", model_s, result.wall_time_s)
    return built, result


class RunStoppedError(Exception):
    """The run ended early (aborted by a health check, interrupted, or its results could not all be written); its
    partial summary is written."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def run(
    cfg: dict[str, Any],
    run_dir: Path,
    resume: dict[str, Any] | None = None,
    raw: DictConfig | None = None,
    hparams: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run ``cfg['mode']`` and write everything into ``run_dir``; returns the summary. ``resume`` (a checkpoint)
    continues an interrupted run of the same config.

    Before any work the whole config is checked (:func:`~torchsnn.config.preflight.preflight`) and the folder is
    locked (:class:`~torchsnn.runguard.RunFolder`); ``status.json`` records how the run ended. Raises
    RunStoppedError (after writing the partial summary) when a health check aborts the simulation, a signal
    interrupts it (exit 128 + signal, in every mode) or results could not be written (exit 5)."""
    cfg = file_scaffold_hook(cfg)  # scaffold=file: the file's blocks as connectivity, realised degrees in the theory
    preflight(cfg)
    folder = RunFolder(run_dir, resuming=resume is not None, resumed_with=resumed_with(cfg))
    folder.acquire()
    summary: dict[str, Any] = {"run": {"mode": cfg["mode"], "seed": cfg["seed"]}}
    stop = StopFlag(on_exit=lambda signum: folder.mark("interrupted", 128 + signum, signal=signal.Signals(signum).name))
    writes = Writes()
    try:
        stop.install()
        if resume is None and raw is not None:
            writes.attempt("config.yaml", lambda: (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg)))
        run_steps(cfg, run_dir, summary, resume, raw, hparams, stop, writes)
        if writes.failures:
            summary["run"]["io_errors"] = writes.failures
            if not writes.attempt("summary.json", lambda: write_json(run_dir / "summary.json", summary)):
                log.error("summary: %s", json.dumps(summary, default=str))
            raise RunStoppedError(f"results incomplete: {'; '.join(writes.failures)}", 5)
    except Interrupted as exc:
        summary["interrupted"] = {"signal": signal.Signals(exc.signum).name, "phase": summary["run"].get("phase")}
        writes.attempt("summary.json", lambda: write_json(run_dir / "summary.json", summary))
        folder.mark("interrupted", 128 + exc.signum, signal=signal.Signals(exc.signum).name)
        raise RunStoppedError(
            f"interrupted by {signal.Signals(exc.signum).name} ({summary['interrupted']['phase']}); partial summary "
            f"in {run_dir / 'summary.json'}",
            128 + exc.signum,
        ) from None
    except RunStoppedError as err:
        kind = {4: "aborted", 5: "failed"}.get(err.exit_code, "interrupted")
        folder.mark(kind, err.exit_code, message=str(err))
        raise
    except ConfigError as err:
        folder.mark("failed", 2, message=str(err))
        raise
    except SolverError as err:
        folder.mark("no_prediction", 3, message=str(err))
        raise
    except BaseException as err:
        folder.mark("failed", 1, message=f"{type(err).__name__}: {err}")
        raise
    else:
        folder.mark("complete", 0)
    finally:
        stop.uninstall()
        folder.release()
    log.info("outputs in %s", run_dir)
    return summary


def run_steps(
    cfg: dict[str, Any],
    run_dir: Path,
    summary: dict[str, Any],
    resume: dict[str, Any] | None,
    raw: DictConfig | None,
    hparams: dict[str, Any] | None,
    stop: StopFlag,
    writes: Writes,
) -> None:
    """The steps of :func:`run` (``summary`` filled in place, ``summary['run']['phase']`` saying where it is)."""
    mode = cfg["mode"]
    phase = summary["run"]
    if mode == "study":
        phase["phase"] = "study"
        study = instantiate(cfg.get("study") or {}, "study")
        log.info("study %s", type(study).__name__)
        summary.update(study.run(raw if raw is not None else OmegaConf.create(cfg), run_dir))
        log.info("outputs in %s (report.md)", run_dir)
        return
    logs = cfg["logging"]
    if resume is not None:
        summary["run"]["resumed_from_ms"] = resume["time_ms"]
        if isinstance(cfg.get("resume"), dict):
            summary["run"]["resume"] = cfg["resume"]
            if resumed_with(cfg):
                summary["run"]["resumed_with"] = resumed_with(cfg)
    tb = TensorBoardLogger(run_dir / "tensorboard") if logs["tensorboard"] else None
    plasticity = cfg.get("plasticity") or {}
    needs_prediction = bool(plastic_projections(cfg)) and "theory" in (
        plasticity.get("initial_traces"),
        plasticity.get("initial_weights"),
    )
    scaffold = sim = theory = matched = None
    try:
        if mode in ("simulate", "compare"):
            phase["phase"] = "wiring"
            device = resolve_device(cfg["simulation"]["device"])
            memory = RunMemory(cfg, device)  # refuses too large a network; prints the estimate
            summary["run"]["memory_estimate_gib"] = memory.parts["total"] / 2**30
            scaffold = build_scaffold(cfg, Seeds.from_seed(int(cfg["seed"])).scaffold)
            memory.pause()  # the theory solve is not part of the network's estimate
        if scaffold is None and uses_file(cfg):  # the theory of a file's network needs its realised degrees
            scaffold = build_scaffold(cfg, Seeds.from_seed(int(cfg["seed"])).scaffold)
        if mode in ("theory", "compare") or needs_prediction:
            phase["phase"] = "theory"
            theory = run_theory(cfg, summary if mode != "simulate" else {}, scaffold)
            writes.attempt("summary.json", lambda: write_json(run_dir / "summary.json", summary))
        if mode in ("simulate", "compare"):
            phase["phase"] = "simulation"
            stop.polling = True
            memory.resume()
            try:
                built, sim = run_simulation(cfg, run_dir, summary, tb, scaffold, theory, resume, stop, writes)
                memory.pause()
                summary["run"]["memory"] = memory.record()
            except SimulationAbortedError as err:
                summary["aborted"] = {"diagnosis": err.diagnosis, "time_ms": err.time_ms, "step": err.step}
                if getattr(err, "partial", None) is not None:
                    summary["simulation_partial"] = err.partial.summary()
                writes.attempt("summary.json", lambda: write_json(run_dir / "summary.json", summary))
                raise RunStoppedError(f"simulation stopped at t = {err.time_ms:.1f} ms: {err.diagnosis}", 4) from None
            except SimulationInterruptedError as err:
                raise interrupted_simulation(err, run_dir, summary, stop, writes) from None
            finally:
                stop.polling = False
            writes.attempt("summary.json", lambda: write_json(run_dir / "summary.json", summary))
            writes.attempt("exports", lambda: write_exports(run_dir, cfg, built, sim))
        phase["phase"] = "outputs"
        if mode == "compare":
            r_p = replica_r_p(cfg, sim.batch) if plastic_projections(cfg) else None
            matched = run_comparison(cfg, summary, sim, theory, r_p)
        writes.attempt("summary.json", lambda: write_json(run_dir / "summary.json", summary))
        if logs["figures"]:
            writes.attempt(
                "figures", lambda: write_figures(run_dir, cfg, sim, theory if mode != "simulate" else None, matched)
            )
        writes.attempt("report.md", lambda: write_run_report(run_dir, summary))
        if tb:
            log_to_tensorboard(tb, summary, sim, theory if mode != "simulate" else None)
            tb.log_figures(run_dir)
            tb.log_hparams(run_hparams(cfg, summary, hparams), summary)  # every run, the default one too
        phase.pop("phase", None)
    finally:
        if tb:
            tb.close()


def interrupted_simulation(
    err: SimulationInterruptedError, run_dir: Path, summary: dict[str, Any], stop: StopFlag, writes: Writes
) -> RunStoppedError:
    """Partial summary of a simulation stopped by a signal; the error that tells how to continue it."""
    checkpoint = err.checkpoint
    if checkpoint is None:  # the stop checkpoint could not be written: the newest earlier one, if any
        with contextlib.suppress(CheckpointError):
            checkpoint = latest_checkpoint(run_dir)
    summary["interrupted"] = {
        "signal": signal.Signals(stop.signal).name if stop.signal else None,
        "phase": "simulation",
        "time_ms": err.partial.duration_ms,
        "checkpoint": str(checkpoint) if checkpoint else None,
    }
    summary["simulation_partial"] = err.partial.summary()
    writes.attempt("summary.json", lambda: write_json(run_dir / "summary.json", summary))
    how = (
        f"resume with: python -m torchsnn.run resume={run_dir}"
        if checkpoint
        else "no checkpoint was written (simulation.checkpoint_every_ms = 0, or the writes failed)"
    )
    message = f"interrupted; partial summary in {run_dir / 'summary.json'}; {how}"
    return RunStoppedError(message, 128 + (stop.signal or signal.SIGINT))
