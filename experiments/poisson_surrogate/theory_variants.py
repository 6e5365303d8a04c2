"""Several theories against one finished simulation (its neurons.csv), without simulating again.

    python experiments/poisson_surrogate/theory_variants.py RUN_DIR OVERRIDE... [--open-loop | --open-loop-only]
        [--only=STATS]

RUN_DIR holds the neurons.csv of a run made with the Hydra OVERRIDEs given (e.g. ``+experiment=hetero_static
scaffold.r=0.5``); the scaffold is rewired from the same seed (its in-degrees are checked against neurons.csv).
For each theory (transfer function x input statistics) the mean field is solved on the realised scaffold and
compared with the simulated rates as the run itself does (prediction through the window's Poisson counting
noise: KS, relative mean/std errors). ``--open-loop`` (static networks) adds each neuron's single-neuron
prediction at its measured input: mu_i, sigma_i^2 from its presynaptic neurons' measured rates, sigma^2 with each
presynaptic neuron's renewal factor F_j from its own measured input (``renewal``) or F = 1 (``poisson``), no
self-consistency. Writes theory_variants.json into RUN_DIR and prints a table.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from torchsnn.analysis.metrics import compare_samples
from torchsnn.config.builder import Seeds, build_populations, build_scaffold
from torchsnn.config.theory_builder import drive_jumps, transfer_of
from torchsnn.outputs import write_json
from torchsnn.pipeline import run_theory
from torchsnn.studies.poisson_surrogate import measured_rates, presynaptic_sums

CONF = Path(__file__).resolve().parents[2] / "conf"
VARIANTS = [
    ("siegert", "poisson"),
    ("finite_jump", "poisson"),
    ("finite_jump", "renewal"),
    ("finite_jump", "renewal_adiabatic"),
]


def config(overrides: list[str]) -> dict:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return OmegaConf.to_container(compose("config", overrides=overrides), resolve=True)


def closed_loop(cfg: dict, scaffold, rates: dict[str, np.ndarray], only: str | None = None) -> list[dict]:
    window_s = (cfg["simulation"]["duration_ms"] - cfg["simulation"]["transient_ms"]) * 1e-3
    rows = []
    for transfer, stats in VARIANTS:
        if only is not None and stats != only:
            continue
        variant = {**cfg, "neuron": {**cfg["neuron"], "transfer": transfer}}
        variant["meanfield"] = {**cfg["meanfield"], "input_statistics": stats}
        t0 = time.perf_counter()
        theory = run_theory(variant, {}, scaffold)
        wall = time.perf_counter() - t0
        rng = np.random.default_rng(int(cfg["seed"]) + 1)
        for name, d in theory.rates.items():
            bad = int(np.count_nonzero(~np.isfinite(d.samples)))
            if bad:  # reported, not hidden: the comparison runs on the finite samples
                print(f"{transfer}/{stats} {name}: {bad} non-finite predicted rate samples", file=sys.stderr)
                d.samples = d.samples[np.isfinite(d.samples)]
            matched = d.with_counting_noise(window_s, rng)
            m = compare_samples(rates[name], matched, d.mean, float(np.sqrt(d.std**2 + d.mean / window_s)))
            rows.append(
                {
                    "theory": f"{transfer}/{stats}",
                    "population": name,
                    "theory_mean_hz": d.mean,
                    "sim_mean_hz": float(rates[name].mean()),
                    "mean_error": m["mean_rel_error"],
                    "std_error": m["std_rel_error"],
                    "ks": m["ks"],
                    "solve_wall_s": wall,
                    "non_finite_samples": bad,
                }
            )
    return rows


def open_loop(cfg: dict, scaffold, rates: dict[str, np.ndarray]) -> list[dict]:
    """Single-neuron predictions at the measured input (module docstring)."""
    populations, drives = build_populations(cfg)
    sums = presynaptic_sums(cfg, scaffold, rates)
    inputs, transfers = {}, {}
    for name, pop in populations.items():
        tau_s = pop.tau_m_ms * 1e-3
        lam_ext, s3_ext, _, _ = drive_jumps(drives.get(name), pop.tau_m_ms)
        mu0, sigma0 = drives[name].moments(pop.tau_m_ms)
        j = torch.tensor(sums[name]["jumps_mv"], dtype=torch.float64)[:, None]
        lam = sums[name]["rates_hz"]
        inputs[name] = (
            mu0 + tau_s * (j * lam).sum(0),
            sigma0**2,
            lam_ext + lam.sum(0),
            s3_ext + tau_s * (j**3 * lam).sum(0),
        )
        renewal_cfg = {**cfg, "meanfield": {**cfg["meanfield"], "input_statistics": "renewal"}}
        transfers[name] = transfer_of(renewal_cfg, name, pop, drives.get(name))
    # F_j of every neuron at its own (Poisson-variance) input, then each neuron's sigma^2 with its inputs' F_j
    factor = {}
    with torch.no_grad():
        for name in populations:
            mu, s2_ext, lam, s3 = inputs[name]
            sigma = (s2_ext + poisson_variance(cfg, name, scaffold, rates, None)).sqrt()
            nu = transfers[name](mu, sigma, lam, s3)
            factor[name] = transfers[name].variance_factor(nu, mu, sigma, lam, s3)
        rows = []
        for name in populations:
            mu, s2_ext, lam, s3 = inputs[name]
            s2_poisson = s2_ext + poisson_variance(cfg, name, scaffold, rates, None)
            s2_renewal = s2_ext + poisson_variance(cfg, name, scaffold, rates, factor)
            for stats in ("poisson", "renewal", "renewal_quasi_static"):
                if stats == "renewal_quasi_static":  # renewal_adiabatic's rule (regularity.py) at this input
                    deficit = s2_renewal - s2_poisson
                    nu = transfers[name].adiabatic_rate_hz(mu, s2_poisson.sqrt(), deficit, lam, s3).numpy()
                else:
                    s2 = s2_renewal if stats == "renewal" else s2_poisson
                    nu = transfers[name](mu, s2.sqrt(), lam, s3).numpy()
                sim = rates[name]
                rows.append(
                    {
                        "open_loop": stats,
                        "population": name,
                        "predicted_mean_hz": float(nu.mean()),
                        "sim_mean_hz": float(sim.mean()),
                        "mean_error": float(sim.mean() / nu.mean() - 1.0),
                        "per_neuron_median_abs_rel_error": float(np.median(np.abs(sim - nu) / np.maximum(nu, 0.1))),
                        "mean_F_of_outputs": float(factor[name].mean()),
                    }
                )
    return rows


def poisson_variance(cfg: dict, post: str, scaffold, rates: dict[str, np.ndarray], factor: dict | None):
    """tau_m sum_j w^2 nu_j F_j over each post neuron's recurrent inputs (F = 1 when ``factor`` is None)."""
    populations, _ = build_populations(cfg)
    tau_s = populations[post].tau_m_ms * 1e-3
    out = torch.zeros(populations[post].size, dtype=torch.float64)
    for p in cfg["network"]["projections"].values():
        if p["post"] != post:
            continue
        block = scaffold.block(post, p["pre"])
        pre = torch.as_tensor(rates[p["pre"]], dtype=torch.float64)
        if factor is not None:
            pre = pre * factor[p["pre"]]
        out.index_add_(0, block.post_index.long(), float(p["weight_mv"]) ** 2 * pre[block.pre_index().long()])
    return tau_s * out


def main(argv: list[str]) -> None:
    run_dir, rest = Path(argv[0]), argv[1:]
    only = next((a.split("=", 1)[1] for a in rest if a.startswith("--only=")), None)
    overrides = [a for a in rest if not a.startswith("--")]
    cfg = config(overrides)
    scaffold = build_scaffold(cfg, Seeds.from_seed(int(cfg["seed"])).scaffold)
    rates = measured_rates(run_dir)
    with (run_dir / "neurons.csv").open() as fh:
        header = fh.readline().strip().split(",")
    table = np.genfromtxt(run_dir / "neurons.csv", delimiter=",", skip_header=1, usecols=range(1, len(header)))
    for name in rates:  # same scaffold as the run: in-degrees per block
        for pre, k in scaffold.in_degrees(name).items():
            col = header.index(f"in_degree_from_{pre}") - 1
            pops = np.genfromtxt(run_dir / "neurons.csv", delimiter=",", skip_header=1, usecols=0, dtype=str)
            assert np.array_equal(table[pops == name, col].astype(int), k.numpy()), f"scaffold differs ({name}<-{pre})"
    out = {"overrides": overrides}
    if "--open-loop-only" not in rest:
        out["closed_loop"] = closed_loop(cfg, scaffold, rates, only)
    if any(a.startswith("--open-loop") for a in rest):
        out["open_loop"] = open_loop(cfg, scaffold, rates)
    write_json(run_dir / ("theory_variants.json" if only is None else f"theory_variants_{only}.json"), out)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
