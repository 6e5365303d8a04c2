"""How the rate distribution changes with the in/out-degree correlation r and the degree heterogeneity (cv),
static and plastic, theory against simulation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from torchsnn.analysis.report import write_report
from torchsnn.errors import SolverError
from torchsnn.outputs import write_json
from torchsnn.studies.base import Study

nan = float("nan")


class RateVsStructure(Study):
    """A grid of sub-runs over ``r_values`` x ``cv_values`` for the static network and, when ``plastic`` is given
    (a plasticity config: rule, projections, r_p_hz, ...), for the plastic one (run ``plastic_duration_ms`` with
    ``plastic_transient_ms``)."""

    def __init__(
        self,
        r_values: list[float] = (-0.5, 0.0, 0.5),
        cv_values: list[float] = (0.2, 0.4),
        plastic: dict[str, Any] | None = None,
        plastic_duration_ms: float = 30000.0,
        plastic_transient_ms: float = 25000.0,
    ) -> None:
        self.r_values = [float(r) for r in r_values]
        self.cv_values = [float(c) for c in cv_values]
        self.plastic = plastic
        self.plastic_duration_ms, self.plastic_transient_ms = plastic_duration_ms, plastic_transient_ms

    def run(self, cfg: dict[str, Any], run_dir: Path) -> dict[str, Any]:
        run_dir.mkdir(parents=True, exist_ok=True)
        rows = []
        kinds = [("static", None)] + ([("plastic", self.plastic)] if self.plastic else [])
        for kind, plasticity in kinds:
            for cv in self.cv_values:
                for r in self.r_values:
                    changes: dict[str, Any] = {"scaffold__r": r, "scaffold__cv": cv}
                    if plasticity is not None:
                        changes["plasticity"] = {**cfg["plasticity"], **plasticity}
                        changes["simulation__duration_ms"] = self.plastic_duration_ms
                        changes["simulation__transient_ms"] = self.plastic_transient_ms
                    summary, note = self.one_run(cfg, changes, run_dir / f"{kind}_cv{cv}_r{r:+.1f}")
                    for pop, s in summary["simulation"].items():
                        t = summary.get("theory", {}).get(pop, {})
                        c = summary.get("comparison", {}).get(pop, {})
                        rows.append(
                            {
                                "kind": kind,
                                "cv": cv,
                                "r": r,
                                "population": pop,
                                "sim_mean_hz": s["rate_mean_hz"],
                                "theory_mean_hz": t.get("rate_mean_hz", nan),
                                "sim_std_hz": s["rate_std_hz"],
                                "theory_std_hz": t.get("rate_std_hz", nan),
                                "sim_median_hz": s["rate_median_hz"],
                                "ks": c.get("ks", nan),
                                "mean_rel_error": c.get("mean_rel_error", nan),
                                "note": note,
                            }
                        )
        shifts = self.shifts(rows)
        figure = self.figure(rows, run_dir / "rate_vs_structure.png")
        summary = {"study": "rate_vs_structure", "rows": rows, "shifts": shifts}
        write_json(run_dir / "summary.json", summary)
        write_report(
            run_dir / "report.md",
            "Rate distribution against structure",
            [
                (
                    "Question",
                    "How do the in/out-degree correlation r and the degree heterogeneity shift the E rate "
                    "distribution, and does the theory track the shift?",
                ),
                ("Shift of the E mean rate from the lowest to the highest r", shifts),
                ("All runs", rows),
                ("Figure", figure),
            ],
        )
        return summary

    def one_run(self, cfg: Any, changes: dict[str, Any], folder: Path) -> tuple[dict[str, Any], str]:
        """A compare sub-run; where the theory predicts no stable state, the simulation alone (to see what the
        network does instead), with the solver's diagnosis as the note."""
        try:
            return self.sub_run(self.variant(cfg, **changes), folder), ""
        except SolverError as err:
            plain = self.variant(cfg, **changes)
            plain["mode"] = "simulate"
            plain["plasticity"] = {**plain["plasticity"], "initial_traces": "constant", "initial_weights": "constant"}
            return self.sub_run(plain, folder), f"no stable fixed point predicted: {err.diagnostics}"

    def shifts(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        lo, hi = min(self.r_values), max(self.r_values)
        for kind in sorted({row["kind"] for row in rows}):
            for cv in self.cv_values:
                pick = {
                    row["r"]: row
                    for row in rows
                    if row["kind"] == kind and row["cv"] == cv and row["population"] == "E"
                }
                if lo in pick and hi in pick:
                    sim = pick[hi]["sim_mean_hz"] - pick[lo]["sim_mean_hz"]
                    th = pick[hi]["theory_mean_hz"] - pick[lo]["theory_mean_hz"]
                    out.append(
                        {
                            "kind": kind,
                            "cv": cv,
                            "sim_shift_hz": sim,
                            "theory_shift_hz": th,
                            "theory_over_sim": th / sim if sim else float("nan"),
                        }
                    )
        return out

    def figure(self, rows: list[dict[str, Any]], path: Path) -> Path:
        kinds = sorted({row["kind"] for row in rows})
        fig, axes = plt.subplots(1, len(kinds), figsize=(5 * len(kinds), 3.8), squeeze=False)
        for ax, kind in zip(axes[0], kinds, strict=True):
            for k, cv in enumerate(self.cv_values):
                sel = sorted(
                    (row for row in rows if row["kind"] == kind and row["cv"] == cv and row["population"] == "E"),
                    key=lambda row: row["r"],
                )
                r = np.array([row["r"] for row in sel])
                ax.plot(r, [row["sim_mean_hz"] for row in sel], "o", color=f"C{k}", label=f"simulation, cv {cv}")
                ax.plot(r, [row["theory_mean_hz"] for row in sel], "-", color=f"C{k}", label=f"theory, cv {cv}")
            ax.set_xlabel("in/out-degree correlation r (E<-E)")
            ax.set_ylabel("mean E rate (Hz)")
            ax.set_title(kind)
            ax.legend(frameon=False, fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
        return path
