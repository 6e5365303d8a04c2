r"""Where does the theory's remaining offset come from (theory §8.2)? The network, then the same neurons with their
recurrent input replaced by independent Poisson trains at the measured presynaptic rates.

For every r: (1) a compare run of the network (``real``); (2) per neuron i and static block b,
Lambda_ib = sum_{j in pre_b(i)} nu_j from the measured rates (same scaffold: same degrees, weights), and a run of
the unconnected populations driven by external input + one Poisson train per block at Lambda_ib with jump J_b
(``surrogate``; :class:`~torchsnn.populations.surrogate.PoissonSurrogateDrive`). Compared with the same
mean-field prediction, the part of the offset that the surrogate removes is due to the statistics of the
recurrent spike trains (regularity, correlations); the part that stays is single-neuron physics. (3) The
single-neuron theory of each surrogate neuron at its own input (mu_i, sigma_i, Lambda_i, s3_i), for the
transfer functions ``siegert`` and ``finite_jump``: the error of the transfer function alone, no self-consistency.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from torchsnn.analysis.report import write_report
from torchsnn.config.builder import Seeds, build_populations, build_scaffold
from torchsnn.config.theory_builder import drive_jumps
from torchsnn.meanfield.transfers import make_transfer
from torchsnn.network import Network
from torchsnn.outputs import write_json
from torchsnn.pipeline import run_comparison, run_theory
from torchsnn.populations.surrogate import PoissonSurrogateDrive, PrecomputedDrive, gamma_renewal_input
from torchsnn.simulation import simulate
from torchsnn.studies.base import Study
from torchsnn.validation import require

MAX_PRECOMPUTED = 2 * 10**8  # steps x neurons of a precomputed renewal input (float64 while summed: 1.6 GB)


def measured_rates(folder: Path, column: str = "rate_hz") -> dict[str, np.ndarray]:
    """Per population the ``column`` (rate_hz, cv_isi) of ``neurons.csv`` (replica 0), in neuron order."""
    out: dict[str, list[tuple[int, float]]] = {}
    with (folder / "neurons.csv").open() as fh:
        for row in csv.DictReader(fh):
            if int(row["replica"]) == 0:
                out.setdefault(row["population"], []).append((int(row["neuron"]), float(row[column])))
    return {name: np.array([r for _, r in sorted(rows)]) for name, rows in out.items()}


def presynaptic_sums(cfg: dict[str, Any], scaffold: Any, rates: dict[str, np.ndarray]) -> dict[str, Any]:
    """Per population: Lambda (P, N) summed presynaptic rates of its static blocks and their signed jumps J_b."""
    populations, _ = build_populations(cfg)
    out: dict[str, dict[str, Any]] = {}
    for name, p in cfg["network"]["projections"].items():
        block = scaffold.block(p["post"], p["pre"])
        pre = torch.as_tensor(rates[p["pre"]], dtype=torch.float64)
        lam = torch.zeros(block.n_post, dtype=torch.float64)
        lam.index_add_(0, block.post_index.long(), pre[block.pre_index().long()])
        entry = out.setdefault(p["post"], {"rates_hz": [], "jumps_mv": [], "blocks": []})
        entry["rates_hz"].append(lam)
        entry["jumps_mv"].append(populations[p["pre"]].sign * float(p["weight_mv"]))
        entry["blocks"].append(name)
    for entry in out.values():
        entry["rates_hz"] = torch.stack(entry["rates_hz"])
    return out


class PoissonSurrogate(Study):
    """The network and its Poisson surrogate at every r of ``r_values`` (static projections only). With
    ``renewal_surrogate`` also a surrogate of independent gamma renewal trains per edge at each presynaptic
    neuron's measured rate and ISI CV (regularity without correlations; the input is precomputed, so small
    networks only: steps x neurons <= MAX_PRECOMPUTED)."""

    def __init__(self, r_values: list[float] = (0.0,), renewal_surrogate: bool = False) -> None:
        self.r_values = [float(r) for r in r_values]
        self.renewal_surrogate = bool(renewal_surrogate)

    def run(self, cfg: Any, run_dir: Path) -> dict[str, Any]:
        run_dir.mkdir(parents=True, exist_ok=True)
        rows, timings = [], {}
        for r in self.r_values:
            plain = self.variant(cfg, scaffold__r=r)
            require(not (plain.get("plasticity") or {}).get("projections"), "plasticity", "plastic", "static only")
            t0 = time.perf_counter()
            real = self.sub_run(plain, run_dir / f"real_r{r:+.1f}")
            t1 = time.perf_counter()
            surrogate, single = self.surrogate_run(plain, run_dir / f"real_r{r:+.1f}", run_dir / f"surr_r{r:+.1f}")
            timings[f"r{r:+.1f}"] = {"real_s": t1 - t0, "surrogate_s": time.perf_counter() - t1}
            renewal = None
            if self.renewal_surrogate:
                t2 = time.perf_counter()
                renewal = self.renewal_run(plain, run_dir / f"real_r{r:+.1f}", run_dir / f"renewal_r{r:+.1f}")
                timings[f"r{r:+.1f}"]["renewal_surrogate_s"] = time.perf_counter() - t2
            for pop, th in real["theory"].items():
                c_real, c_sur = real["comparison"][pop], surrogate["comparison"][pop]
                err_real, err_sur = c_real["mean_rel_error"], c_sur["mean_rel_error"]
                rows.append(
                    {
                        "r": r,
                        "population": pop,
                        "theory_mean_hz": th["rate_mean_hz"],
                        "real_mean_hz": real["simulation"][pop]["rate_mean_hz"],
                        "surrogate_mean_hz": surrogate["simulation"][pop]["rate_mean_hz"],
                        "real_mean_error": err_real,
                        "surrogate_mean_error": err_sur,
                        "offset_removed": 1.0 - err_sur / err_real if err_real else float("nan"),
                        "real_ks": c_real["ks"],
                        "surrogate_ks": c_sur["ks"],
                        "real_std_error": c_real["std_rel_error"],
                        "surrogate_std_error": c_sur["std_rel_error"],
                        "real_cv_isi": real["simulation"][pop]["cv_isi_mean"],
                        "surrogate_cv_isi": surrogate["simulation"][pop]["cv_isi_mean"],
                        "real_chi": real["simulation"][pop]["chi"],
                        "surrogate_chi": surrogate["simulation"][pop]["chi"],
                        **{f"single_{k}": v for k, v in single[pop].items()},
                    }
                )
                if renewal is not None:
                    c_ren, s_ren = renewal["comparison"][pop], renewal["simulation"][pop]
                    rows[-1].update(
                        renewal_mean_hz=s_ren["rate_mean_hz"],
                        renewal_mean_error=c_ren["mean_rel_error"],
                        renewal_ks=c_ren["ks"],
                        renewal_cv_isi=s_ren["cv_isi_mean"],
                        renewal_chi=s_ren["chi"],
                    )
        summary = {"study": "poisson_surrogate", "rows": rows, "timings_s": timings}
        write_json(run_dir / "summary.json", summary)
        write_report(
            run_dir / "report.md",
            "Poisson surrogate of the recurrent input",
            [
                (
                    "Question",
                    "How much of the theory-vs-simulation offset disappears when each neuron's recurrent input is "
                    "replaced by independent Poisson trains at its presynaptic neurons' measured rates?",
                ),
                ("Network vs surrogate against the same prediction", rows),
                ("Wall time per run (s)", [{"r": k, **v} for k, v in timings.items()]),
            ],
        )
        return summary

    def surrogate_run(self, cfg: dict[str, Any], real_dir: Path, folder: Path) -> tuple[dict[str, Any], dict]:
        """Simulate the surrogate of the network of ``cfg`` measured in ``real_dir``; compare with the theory."""
        folder.mkdir(parents=True, exist_ok=True)
        seeds = Seeds.from_seed(int(cfg["seed"]))
        scaffold = build_scaffold(cfg, seeds.scaffold)
        rates = measured_rates(real_dir)
        summary: dict[str, Any] = {"run": {"mode": "surrogate"}}
        theory = run_theory(cfg, summary, scaffold)
        sums = presynaptic_sums(cfg, scaffold, rates)
        populations, drives = build_populations(cfg)
        surrogate = {
            name: PoissonSurrogateDrive(sums[name]["rates_hz"], sums[name]["jumps_mv"], drives.get(name))
            for name in populations
        }
        sim = simulate_unconnected(cfg, populations, surrogate, seeds.dynamics + 1)
        summary["simulation"] = sim.summary()
        run_comparison(cfg, summary, sim, theory)
        single = {}
        for name, pop in populations.items():
            simulated = sim.rates_hz(name)[0].numpy()
            single[name] = self.single_neuron(cfg, pop, drives.get(name), surrogate[name], simulated)
            single[name]["mf_neuron_vs_real_corr"] = float(np.corrcoef(theory.neuron_rates_hz[name], rates[name])[0, 1])
        summary["single_neuron"] = single
        write_json(folder / "summary.json", summary)
        np.savez(
            folder / "rates.npz",
            **{f"surrogate_{n}": sim.rates_hz(n)[0].numpy() for n in populations},
            **{f"real_{n}": rates[n] for n in populations},
            **{f"theory_{n}": theory.neuron_rates_hz[n] for n in populations},
        )
        return summary, single

    def renewal_run(self, cfg: dict[str, Any], real_dir: Path, folder: Path) -> dict[str, Any]:
        """Independent gamma trains per edge at the measured rates and CVs (NaN CV: 1); compare with the theory."""
        folder.mkdir(parents=True, exist_ok=True)
        seeds = Seeds.from_seed(int(cfg["seed"]))
        scaffold = build_scaffold(cfg, seeds.scaffold)
        rates, cvs = measured_rates(real_dir), measured_rates(real_dir, "cv_isi")
        summary: dict[str, Any] = {"run": {"mode": "renewal_surrogate"}}
        theory = run_theory(cfg, summary, scaffold)
        populations, drives = build_populations(cfg)
        sim_cfg = cfg["simulation"]
        dt = float(sim_cfg["dt_ms"])
        n_steps = round(float(sim_cfg["duration_ms"]) / dt)
        rng = np.random.default_rng(int(cfg["seed"]) + 2)
        inputs = {}
        for p in cfg["network"]["projections"].values():
            post, pre = p["post"], p["pre"]
            require(n_steps * populations[post].size <= MAX_PRECOMPUTED, "renewal_surrogate", True, "small networks")
            block = scaffold.block(post, pre)
            cv = np.where(np.isfinite(cvs[pre]), cvs[pre], 1.0)
            w = populations[pre].sign * float(p["weight_mv"])
            part = gamma_renewal_input(
                block.pre_index().numpy(), block.post_index.numpy(), rates[pre], cv, w, block.n_post, n_steps, dt, rng
            )
            inputs[post] = part if post not in inputs else inputs[post] + part
        net_drives = {name: PrecomputedDrive(inputs[name], drives.get(name)) for name in populations}
        sim = simulate_unconnected(cfg, populations, net_drives, seeds.dynamics + 2)
        summary["simulation"] = sim.summary()
        run_comparison(cfg, summary, sim, theory)
        write_json(folder / "summary.json", summary)
        np.savez(folder / "rates.npz", **{f"renewal_{n}": sim.rates_hz(n)[0].numpy() for n in populations})
        return summary

    @staticmethod
    def single_neuron(cfg: dict[str, Any], pop: Any, base: Any, drive: PoissonSurrogateDrive, simulated: np.ndarray):
        """Mean over the population of each neuron's single-neuron prediction at its own surrogate input, per
        transfer function, and its relative error against the surrogate simulation."""
        m = drive.neuron_moments(pop.tau_m_ms)
        lam_ext, s3_ext, mu_g, sigma_g = drive_jumps(base, pop.tau_m_ms)
        out: dict[str, float] = {"simulated_mean_hz": float(simulated.mean())}
        for kind in ("siegert", "finite_jump"):
            transfer = make_transfer(kind, pop.transfer_parameters(), float(cfg["simulation"]["dt_ms"]), mu_g, sigma_g)
            with torch.no_grad():
                nu = transfer(m["mu_mv"], m["sigma_mv"], m["lam_hz"] + lam_ext, m["s3_mv3"] + s3_ext).numpy()
            out[f"{kind}_mean_hz"] = float(nu.mean())
            out[f"{kind}_mean_error"] = float(simulated.mean() / nu.mean() - 1.0)
        return out


def simulate_unconnected(cfg: dict[str, Any], populations: dict, drives: dict, seed: int) -> Any:
    """The populations without recurrent projections, each under its (surrogate) drive, one replica, for the
    config's duration and transient (seeded with ``seed``): the surrogate runs' simulation."""
    sim_cfg = cfg["simulation"]
    net = Network(populations, drives, {}, float(sim_cfg["dt_ms"]), backend=sim_cfg.get("backend", "auto"))
    generator = torch.Generator()
    generator.manual_seed(seed)
    net.reset(1, generator)
    return simulate(
        net,
        duration_ms=sim_cfg["duration_ms"],
        transient_ms=sim_cfg["transient_ms"],
        generator=generator,
        progress=False,
    )
