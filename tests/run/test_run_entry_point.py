"""The Hydra entry point ``python -m torchsnn.run`` as a user runs it (subprocess), on a tiny network: the run folder
and its contents, ``--cfg job``, and bad overrides."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import yaml
from testkit import brunel_size_overrides, run_cli

N_E, N_I, K_E, K_I = 200, 50, 20, 5
DURATION_MS, TRANSIENT_MS = 300.0, 100.0
TINY = [
    "network=brunel",
    "drive=poisson",
    *brunel_size_overrides(N_E, N_I, K_E, K_I),
    "drive.k_ext=500",
    "drive.nu_ext_hz=10.0",
    "drive.j_ext_mv=0.2",
    f"simulation.duration_ms={DURATION_MS}",
    f"simulation.transient_ms={TRANSIENT_MS}",
    "simulation.device=cpu",
    "simulation.raster_neurons=20",
    "logging.progress=false",
    "logging.log_every_ms=50.0",
]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "tiny"
    proc = run_cli(*TINY, f"hydra.run.dir={out}")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


def test_run_folder_has_every_output(run_dir):
    for name in (
        "config.yaml",
        ".hydra/config.yaml",
        ".hydra/overrides.yaml",
        "summary.json",
        "neurons.csv",
        "rates.png",
        "activity.png",
    ):
        assert (run_dir / name).is_file(), name
        assert (run_dir / name).stat().st_size > 0, name
    for png in ("rates.png", "activity.png"):
        assert (run_dir / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    events = list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert events, "no TensorBoard event file"


def test_saved_config_is_the_composed_one(run_dir):
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    hydra_saved = yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text())
    assert saved == hydra_saved  # brunel.yaml has no interpolations, so resolved == unresolved
    assert saved["network"]["populations"]["E"]["size"] == N_E
    assert saved["network"]["projections"]["EI"]["connectivity"]["indegree"] == K_I
    assert saved["simulation"]["duration_ms"] == DURATION_MS
    overrides = yaml.safe_load((run_dir / ".hydra" / "overrides.yaml").read_text())
    assert f"network.populations.E.size={N_E}" in overrides


def test_summary_json(run_dir):
    summary = json.loads((run_dir / "summary.json").read_text())
    sim = summary["simulation"]
    assert set(sim) == {"E", "I"}
    for name, n in (("E", N_E), ("I", N_I)):
        s = sim[name]
        for key in ("rate_mean_hz", "rate_std_hz", "rate_median_hz", "cv_isi_mean", "n_neurons"):
            assert key in s, key
        assert s["n_neurons"] == n
        assert 1.0 < s["rate_mean_hz"] < 100.0  # a running network (tiny config: about 18 Hz)
        assert s["rate_std_hz"] >= 0 and s["rate_median_hz"] >= 0
        assert 0.0 < s["cv_isi_mean"] < 2.0
    blocks = summary["scaffold"]
    assert blocks["E<-E"]["n_edges"] == N_E * K_E and blocks["I<-E"]["n_edges"] == N_I * K_E
    assert blocks["E<-I"]["n_edges"] == N_E * K_I and blocks["I<-I"]["n_edges"] == N_I * K_I
    assert summary["run"]["seed"] == 1234 and summary["run"]["replicas"] == 1


def test_neuron_table_matches_scaffold_and_summary(run_dir):
    """One row per neuron; in-degrees are the fixed in-degrees; each block's out-degrees sum to its edge count
    (N_post x K); the mean rate per population is the summary's; every rate is a whole spike count over the
    200 ms window."""
    with (run_dir / "neurons.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    summary = json.loads((run_dir / "summary.json").read_text())["simulation"]
    assert len(rows) == N_E + N_I
    assert {
        "population",
        "neuron",
        "replica",
        "rate_hz",
        "cv_isi",
        "in_degree_from_E",
        "in_degree_from_I",
        "out_degree_to_E",
        "out_degree_to_I",
    } <= set(rows[0])
    by_pop = defaultdict(list)
    for row in rows:
        by_pop[row["population"]].append(row)
    window_s = (DURATION_MS - TRANSIENT_MS) * 1e-3
    for name, n in (("E", N_E), ("I", N_I)):
        pop = by_pop[name]
        assert sorted(int(r["neuron"]) for r in pop) == list(range(n))
        assert all(int(r["in_degree_from_E"]) == K_E and int(r["in_degree_from_I"]) == K_I for r in pop)
        rates = np.array([float(r["rate_hz"]) for r in pop])
        np.testing.assert_allclose(rates * window_s, np.round(rates * window_s), atol=1e-4)
        assert rates.mean() == pytest.approx(summary[name]["rate_mean_hz"], rel=1e-5)
    assert sum(int(r["out_degree_to_E"]) for r in by_pop["E"]) == N_E * K_E
    assert sum(int(r["out_degree_to_I"]) for r in by_pop["E"]) == N_I * K_E
    assert sum(int(r["out_degree_to_E"]) for r in by_pop["I"]) == N_E * K_I
    assert sum(int(r["out_degree_to_I"]) for r in by_pop["I"]) == N_I * K_I


def test_tensorboard_has_population_rates(run_dir):
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    acc = event_accumulator.EventAccumulator(str(run_dir / "tensorboard"))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    assert "population_rate_hz/E" in tags and "population_rate_hz/I" in tags
    # 10 ms bins over the whole 300 ms run
    assert len(acc.Scalars("population_rate_hz/E")) == round(DURATION_MS / 10.0)


def test_cfg_job_prints_the_config_and_runs_nothing(tmp_path):
    out = tmp_path / "cfg"
    proc = run_cli(*TINY, f"hydra.run.dir={out}", "--cfg", "job", timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    cfg = yaml.safe_load(proc.stdout)
    assert cfg["network"]["populations"]["E"]["size"] == N_E
    assert cfg["seed"] == 1234 and "simulation" in cfg
    assert not (out / "summary.json").exists()


@pytest.mark.parametrize(
    ("override", "code", "message"),
    [
        # a value the package rejects: ConfigError, logged, exit status 2
        ("simulation.dt_ms=-0.1", 2, "simulation.dt_ms = -0.1: must be > 0"),
        ("network.populations.E.size=-5", 2, "network.populations.E.size = -5: must be an integer >= 1"),
        # overrides Hydra rejects: the same one-line message, exit status 2 (issue 13)
        ("simulation.no_such_key=1", 2, "invalid configuration: simulation.no_such_key = '1': unknown key"),
        ("network=no_such_network", 2, "invalid configuration: network = 'no_such_network': no such config"),
    ],
)
def test_bad_override_exits_nonzero_with_the_message(tmp_path, override, code, message):
    out = tmp_path / "bad"
    proc = run_cli(*TINY, override, f"hydra.run.dir={out}", timeout=120)
    assert proc.returncode == code, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    assert message in proc.stdout + proc.stderr
    assert not (out / "summary.json").exists()
