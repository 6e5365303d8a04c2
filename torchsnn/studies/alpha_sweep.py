"""Accuracy of the theory against the reliability of the rate estimates, alpha = nu / r_p. With the finite-alpha
weight law (``plasticity.trace_noise``, the default) the prediction depends on r_p: one run per alpha (its seeds as
replicas, the same scaffold), each compared with its own prediction. With ``trace_noise=false`` (w = f(nu)): one
run whose replicas differ in r_p (seeds x alphas), each compared with the same prediction."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from torchsnn.analysis.report import write_report
from torchsnn.config.theory_builder import model_from_config, solve_options
from torchsnn.meanfield.solver import solve
from torchsnn.outputs import write_json
from torchsnn.studies.base import Study

METRICS = ("ks", "mean_rel_error", "std_rel_error", "wasserstein")


class AlphaSweep(Study):
    """``alphas`` targeted at the predicted mean E rate (r_p = nu_E / alpha), ``seeds`` replicas each."""

    def __init__(self, alphas: list[float] = (1, 3, 10, 30, 100), seeds: int = 2, population: str = "E") -> None:
        self.alphas = [float(a) for a in alphas]
        self.seeds = int(seeds)
        self.population = population

    def run(self, cfg: dict[str, Any], run_dir: Path) -> dict[str, Any]:
        run_dir.mkdir(parents=True, exist_ok=True)
        plain = self.variant(cfg)
        reference = self.variant(cfg, plasticity__trace_noise=False)  # the alpha -> infinity rate sets r_p
        model = model_from_config(reference)
        result = solve(model, **solve_options(reference))
        rate = float((model.node_rates(result.x, self.population).nu_hz * model.node_weights(self.population)).sum())
        if (plain.get("plasticity") or {}).get("trace_noise", True):
            replicas = []
            for alpha in self.alphas:
                sub = self.variant(cfg, plasticity__r_p_hz=rate / alpha, simulation__replicas=self.seeds)
                replicas.append(self.pooled(self.sub_run(sub, run_dir / f"alpha_{alpha:g}"), rate / alpha))
            rows = self.aggregate(replicas, per_alpha=1)
        else:
            r_p = [rate / a for a in self.alphas for _ in range(self.seeds)]
            sub = self.variant(cfg, plasticity__r_p_hz=r_p, simulation__replicas=len(r_p))
            summary = self.sub_run(sub, run_dir / "replicas")
            rows = self.aggregate(summary["comparison_by_replica"])
        onset = self.onset(rows)
        figure = self.figure(rows, run_dir / "alpha_sweep.png")
        out = {"study": "alpha_sweep", "predicted_mean_rate_hz": rate, "rows": rows, "error_onset_alpha": onset}
        write_json(run_dir / "summary.json", out)
        write_report(
            run_dir / "report.md",
            "Accuracy against alpha = nu / r_p",
            [
                (
                    "Question",
                    "How does the theory's accuracy depend on the reliability of the trace estimates "
                    "(alpha = nu / r_p), and below which alpha does it clearly degrade?",
                ),
                ("Error against alpha (mean ± std over seeds)", rows),
                ("Alpha below which the error rises above its large-alpha level", onset),
                ("Figure", figure),
            ],
        )
        return out

    @staticmethod
    def pooled(summary: dict[str, Any], r_p_hz: float) -> dict[str, Any]:
        """One run's comparison (its seeds pooled) as a row like those of ``comparison_by_replica``."""
        row: dict[str, Any] = {"r_p_hz": r_p_hz}
        for name, metrics in summary["comparison"].items():  # the counting-noise-matched metrics, as per replica
            row[name] = {k: v for k, v in metrics.items() if isinstance(v, float) and not k.endswith("_raw")}
        row.update({f"alpha_mean_{name}": a["alpha_mean"] for name, a in summary.get("alpha", {}).items()})
        row.update({f"weights_{name}": m for name, m in summary.get("comparison_weights", {}).items()})
        return row

    def aggregate(self, replicas: list[dict[str, Any]], per_alpha: int | None = None) -> list[dict[str, Any]]:
        """Rows per alpha: mean and spread over the ``per_alpha`` rows of each alpha (default: the seeds; 1 when
        each alpha is one run whose seeds are pooled, the spread then 0)."""
        per_alpha = self.seeds if per_alpha is None else per_alpha
        rows = []
        for k, alpha in enumerate(self.alphas):
            group = replicas[k * per_alpha : (k + 1) * per_alpha]
            row: dict[str, Any] = {
                "alpha_target": alpha,
                "r_p_hz": group[0]["r_p_hz"],
                "alpha_measured": float(np.mean([g[f"alpha_mean_{self.population}"] for g in group])),
            }
            for what in [p for p in group[0] if isinstance(group[0][p], dict)]:
                for metric in METRICS:
                    values = [g[what][key] for g in group for key in g[what] if key.startswith(metric)]
                    if values:
                        row[f"{what}_{metric}"] = float(np.mean(values))
                        row[f"{what}_{metric}_sd"] = float(np.std(values))
            rows.append(row)
        return rows

    def onset(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Per compared quantity: the largest alpha whose |error| exceeds the largest-alpha level by more than
        twice the seed spread plus 25%."""
        out = []
        ordered = sorted(rows, key=lambda row: row["alpha_target"])
        for key in [k for k in ordered[-1] if k.endswith("_ks") or k.endswith("mean_rel_error")]:
            ref = abs(ordered[-1][key])
            noise = ordered[-1].get(f"{key}_sd", 0.0)
            worse = [
                row["alpha_target"]
                for row in ordered
                if abs(row[key]) > 1.25 * ref + 2 * max(noise, row.get(f"{key}_sd", 0.0))
            ]
            out.append(
                {"quantity": key, "large_alpha_level": ref, "degrades_below_alpha": max(worse) if worse else None}
            )
        return out

    def figure(self, rows: list[dict[str, Any]], path: Path) -> Path:
        alpha = np.array([row["alpha_measured"] for row in rows])
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        for ax, metric in zip(axes, ("ks", "mean_rel_error"), strict=True):
            for k, key in enumerate(sorted(k for k in rows[0] if k.endswith(f"_{metric}"))):
                y = np.array([row[key] for row in rows])
                sd = np.array([row.get(f"{key}_sd", 0.0) for row in rows])
                ax.errorbar(alpha, y, yerr=sd, marker="o", color=f"C{k}", label=key.replace(f"_{metric}", ""))
            ax.set_xscale("log")
            ax.set_xlabel("alpha = nu / r_p (mean over neurons)")
            ax.set_ylabel(metric.replace("_", " "))
            ax.axhline(0, color="grey", lw=0.5)
            ax.legend(frameon=False, fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
        return path
