"""Every experiment config composes and runs end to end at a tiny size (what its README command does, small),
and a sweep runs through the joblib launcher (and submitit's local executor) into one collected table."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest
from testkit import REPO as ROOT
from testkit import brunel_size_overrides

EXPERIMENTS = sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml"))
HETERO_TINY = [
    "network.populations.E.size=400",
    "network.populations.I.size=100",
    "network.projections.EE.connectivity.in_degree.mean=40",
    "network.projections.IE.connectivity.in_degree.mean=40",
    "network.projections.EI.connectivity.in_degree.mean=10",
    "network.projections.II.connectivity.in_degree.mean=10",
    "simulation.duration_ms=600",
    "simulation.transient_ms=200",
    "meanfield.samples=2000",
    "meanfield.qmc_points=64",
    "meanfield.gh_order_mu=6",
    "meanfield.gh_order_sigma=2",
    "meanfield.degree_order=6",
]
BRUNEL_TINY = [*brunel_size_overrides(400, 100, 40, 10), "simulation.duration_ms=400"]
TINY = {
    "brunel_ai": BRUNEL_TINY,
    "brunel_a_plastic": BRUNEL_TINY,
    "hetero_static": HETERO_TINY,
    "plastic_pre": [*HETERO_TINY, "plasticity.r_p_hz=2.0"],
    "plastic_prepost": [*HETERO_TINY, "plasticity.r_p_hz=2.0"],
    "in_neighbours": HETERO_TINY,
    "quickstart": HETERO_TINY,
    "rate_vs_structure": [
        *HETERO_TINY,
        "study.r_values=[0.0]",
        "study.cv_values=[0.4]",
        "study.plastic_duration_ms=600",
        "study.plastic_transient_ms=200",
        "study.plastic.r_p_hz=2.0",
    ],
    "alpha_sweep": [*HETERO_TINY, "study.alphas=[3,30]", "study.seeds=1"],
    "rule_zoo": [*HETERO_TINY, "plasticity.r_p_hz=2.0", "meanfield.lowrank_tol=0.05"],
    "poisson_surrogate": [*HETERO_TINY, "study.r_values=[0.0]", "+study.renewal_surrogate=true"],
}
FIGURES = {
    "in_neighbours": ["in_neighbours.png"],
    "rate_vs_structure": ["rate_vs_structure.png"],
    "alpha_sweep": ["alpha_sweep.png"],
    "rule_zoo": [],
    "poisson_surrogate": [],
    "plastic_pre": ["rates.png", "weights.png", "alpha.png", "weights_over_time.png"],
    "plastic_prepost": ["rates.png", "weights.png"],
    "hetero_static": ["rates.png", "activity.png"],
    "quickstart": ["rates.png", "activity.png"],
    "brunel_ai": ["rates.png", "activity.png"],
    "brunel_a_plastic": ["rates.png", "weights.png"],
}


def cli(args: list[str], timeout: float = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "torchsnn.run", *args, "logging.progress=false"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_every_experiment_has_tiny_overrides_and_a_write_up():
    assert set(TINY) == set(EXPERIMENTS), "add the new experiment to TINY"
    for name in EXPERIMENTS:
        assert (ROOT / "experiments" / name / "README.md").exists(), f"experiments/{name}/README.md is missing"


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_runs_at_a_tiny_size(name, tmp_path):
    out = cli([f"+experiment={name}", *TINY[name], f"hydra.run.dir={tmp_path}"])
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (tmp_path / "report.md").exists()
    for figure in FIGURES[name]:
        assert (tmp_path / figure).exists(), figure
    if "study" in summary:
        assert summary["rows"], summary
    else:
        assert {"simulation", "theory", "comparison"} <= set(summary)


@pytest.mark.slow
def test_a_sweep_of_eight_jobs_through_joblib_is_collected(tmp_path):
    out = cli(
        [
            "-m",
            "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=2",
            "+experiment=hetero_static",
            *HETERO_TINY,
            "scaffold.r=-0.5,0.5",
            "scaffold.cv=0.2,0.4",
            "seed=1,2",
            f"hydra.sweep.dir={tmp_path}",
        ]
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    collected = subprocess.run(
        [
            sys.executable,
            "-m",
            "torchsnn.collect",
            str(tmp_path),
            "--x",
            "override.scaffold.r",
            "--y",
            "comparison.E.ks",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert collected.returncode == 0, collected.stderr
    rows = list(csv.DictReader((tmp_path / "collected.csv").open()))
    assert len(rows) == 8
    assert {(r["override.scaffold.r"], r["override.scaffold.cv"], r["override.seed"]) for r in rows} == {
        (r, c, s) for r in ("-0.5", "0.5") for c in ("0.2", "0.4") for s in ("1", "2")
    }
    assert all(float(r["comparison.E.ks"]) >= 0 for r in rows)
    assert (tmp_path / "collected.png").exists()


@pytest.mark.slow
def test_the_submitit_launcher_runs_a_sweep_with_its_local_executor(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    out = cli(
        [
            "-m",
            "hydra/launcher=submitit_local",
            "+experiment=hetero_static",
            *HETERO_TINY,
            "mode=theory",
            "scaffold.r=-0.5,0.5",
            f"hydra.sweep.dir={tmp_path}",
        ]
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    summaries = sorted(tmp_path.rglob("summary.json"))
    assert len(summaries) == 2
    means = [json.loads(p.read_text())["theory"]["E"]["rate_mean_hz"] for p in summaries]
    assert means[0] != means[1]  # r changed the prediction
