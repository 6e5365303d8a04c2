"""rho_K against rho*_K for several in/out-degree correlations r (the talk's figure): the theory's laws and a
realised scaffold."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from torchsnn.analysis.figures import degree_densities
from torchsnn.analysis.report import write_report
from torchsnn.config.builder import Seeds, build_rules
from torchsnn.outputs import write_json
from torchsnn.scaffold import SparseScaffold, conditional_out_mean
from torchsnn.studies.base import Study


class InNeighbours(Study):
    """For each r: the in-degree density rho_K of ``projection``'s post population and the in-degree density of
    in-neighbours rho*_K(k) = E[L | K = k] rho_K(k) / E[L], from the laws (copula) and from a wired scaffold."""

    def __init__(self, r_values: list[float] = (-0.5, 0.0, 0.5), projection: str = "EE") -> None:
        self.r_values = [float(r) for r in r_values]
        self.projection = projection

    def run(self, cfg: dict[str, Any], run_dir: Path) -> dict[str, Any]:
        run_dir.mkdir(parents=True, exist_ok=True)
        proj = cfg["network"]["projections"][self.projection]
        post, pre = proj["post"], proj["pre"]
        sizes = {n: int(p["size"]) for n, p in cfg["network"]["populations"].items()}
        curves, empirical, rows = {}, {}, []
        for r in self.r_values:
            sub = self.variant(cfg, scaffold__r=r)
            rule = build_rules(sub)[(post, pre)]
            laws = rule.degree_laws(sizes[pre], sizes[post], post == pre)
            k, rho = laws.in_degree.support()
            cond = conditional_out_mean(laws.in_degree, laws.out_degree, laws.copula_rho or 0.0, k)
            star = np.nan_to_num(cond) * rho / float(laws.out_degree.mean)
            star /= star.sum()
            label = f"r = {r:+.1f}"
            curves[label] = (k, rho, star)
            scaffold = SparseScaffold.build(
                {post: sizes[post]} if post == pre else {post: sizes[post], pre: sizes[pre]},
                {(post, pre): rule},
                Seeds.from_seed(int(cfg["seed"])).scaffold,
            )
            ke, pe = scaffold.empirical_rho(post, pre)
            ks, ps = scaffold.empirical_rho_star(post, pre)
            grid = np.arange(k[0], k[-1] + 1)
            width = max(1, int((k[-1] - k[0]) / 60))
            bins = np.arange(grid[0], grid[-1] + width + 1, width)
            hist_rho = np.histogram(ke, bins=bins, weights=pe)[0] / width
            hist_star = np.histogram(ks, bins=bins, weights=ps)[0] / width
            empirical[label] = (0.5 * (bins[1:] + bins[:-1]), hist_rho, hist_star)
            rows.append(
                {
                    "r": r,
                    "realised_r": scaffold.realised_r(post, pre) if post == pre else None,
                    "mean_K": float(np.dot(k, rho)),
                    "mean_K_in_neighbours_theory": float(np.dot(k, star)),
                    "mean_K_realised": float(np.dot(ke, pe)),
                    "mean_K_in_neighbours_realised": float(np.dot(ks, ps)),
                }
            )
        figure = degree_densities(curves, run_dir / "in_neighbours.png", empirical)
        summary = {"study": "in_neighbours", "projection": self.projection, "rows": rows}
        write_json(run_dir / "summary.json", summary)
        write_report(
            run_dir / "report.md",
            "In-degree of in-neighbours",
            [
                (
                    "Question",
                    "How does the in/out-degree correlation r shift the in-degree density of a neuron's "
                    "in-neighbours (rho*_K) away from the in-degree density (rho_K)?",
                ),
                ("Result", rows),
                ("Figure", figure),
            ],
        )
        return summary
