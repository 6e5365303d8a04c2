"""The shipped plasticity rules side by side: rates and weights, theory against simulation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torchsnn.analysis.report import write_report
from torchsnn.outputs import write_json
from torchsnn.studies.base import Study


class RuleZoo(Study):
    """One compare sub-run per rule (``rules``: name -> rule config with ``_target_``) on ``projections``."""

    def __init__(self, rules: dict[str, dict[str, Any]], projections: list[str] = ("EE",)) -> None:
        self.rules = dict(rules)
        self.projections = list(projections)

    def run(self, cfg: dict[str, Any], run_dir: Path) -> dict[str, Any]:
        run_dir.mkdir(parents=True, exist_ok=True)
        rows, figures = [], []
        for name, rule in self.rules.items():
            plasticity = {**cfg["plasticity"], "rule": rule, "projections": self.projections}
            summary = self.sub_run(self.variant(cfg, plasticity=plasticity), run_dir / name)
            row: dict[str, Any] = {"rule": name}
            for pop, c in summary["comparison"].items():
                row[f"{pop}_sim_hz"] = summary["simulation"][pop]["rate_mean_hz"]
                row[f"{pop}_theory_hz"] = summary["theory"][pop]["rate_mean_hz"]
                row[f"{pop}_ks"] = c["ks"]
            for proj, c in summary.get("comparison_weights", {}).items():
                row[f"{proj}_w_sim_mv"] = summary["simulation_weights"][proj]["weight_mean_mv"]
                row[f"{proj}_w_theory_mv"] = summary["theory_weights"][proj]["weight_mean_mv"]
                row[f"{proj}_w_ks"] = c["ks"]
                row["theory"] = summary["theory_weights"][proj].get("kind")
            rows.append(row)
            figures += [
                (f"{name}: rates", run_dir / name / "rates.png"),
                (f"{name}: weights", run_dir / name / "weights.png"),
            ]
        summary = {"study": "rule_zoo", "rows": rows}
        write_json(run_dir / "summary.json", summary)
        sections: list[tuple[str, Any]] = [
            (
                "Question",
                "How do the shipped rules shape rates and weights, and how well does the theory predict each?",
            ),
            ("Results", rows),
        ]
        sections += [(title, f"![{title}]({path.relative_to(run_dir)})") for title, path in figures]
        write_report(run_dir / "report.md", "Rule zoo", sections)
        return summary
