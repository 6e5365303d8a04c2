"""What a small compare run writes for people, read back: TensorBoard's event files (series in Scalars, one-value
numbers as text and HParams, HParams written without any override), the comparison's counting-noise note and the
stability sentence in summary.json and report.md."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from testkit import brunel_size_overrides, compose_plain

from torchsnn.pipeline import run

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")

SMALL = [
    "+experiment=brunel_ai",
    *brunel_size_overrides(400, 100, 40, 10),
    "simulation.duration_ms=600",
    "simulation.transient_ms=100",
    "logging.progress=false",
    "meanfield.samples=20000",
]


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("run")
    summary = run(compose_plain(*SMALL), folder)  # no hparams given: the default run's case
    return folder, summary


def read_events(folder: Path) -> list:
    accumulators = []
    for events in sorted((folder / "tensorboard").glob("events.out.tfevents.*")):
        acc = event_accumulator.EventAccumulator(str(events), size_guidance={"scalars": 0, "tensors": 0})
        acc.Reload()
        accumulators.append(acc)
    return accumulators


def plugin_content(acc, plugin: str) -> dict[str, bytes]:
    try:
        return acc.PluginTagToContent(plugin)
    except KeyError:  # no summary of that plugin in this file
        return {}


def test_tensorboard_scalars_are_series_and_hparams_are_written(small_run):
    folder, _ = small_run
    accumulators = read_events(folder)
    scalars = {tag: len(acc.Scalars(tag)) for acc in accumulators for tag in acc.Tags()["scalars"]}
    series = {tag: n for tag, n in scalars.items() if not tag.startswith("hparam/")}
    assert {"population_rate_hz/E", "population_rate_hz/I"} <= set(series)
    assert min(series.values()) > 1, {tag: n for tag, n in series.items() if n <= 1}  # no single-point scalars
    hparams = {tag: content for acc in accumulators for tag, content in plugin_content(acc, "hparams").items()}
    assert {"_hparams_/experiment", "_hparams_/session_start_info"} <= set(hparams)
    start = hparams["_hparams_/session_start_info"]
    assert b"n_neurons_E" in start and b"seed" in start  # the run's parameters, with no override given
    assert {tag for tag in scalars if tag.startswith("hparam/")} >= {"hparam/comparison/E/ks"}
    texts = {tag for acc in accumulators for tag in acc.Tags()["tensors"]}
    assert {"summary/simulation/text_summary", "summary/comparison/text_summary"} <= texts


def test_comparison_note_and_stability_sentence(small_run):
    folder, summary = small_run
    written = json.loads((folder / "summary.json").read_text())
    assert written["comparison"] == json.loads(json.dumps(summary["comparison"]))
    for pop in ("E", "I"):
        comparison = written["comparison"][pop]
        assert comparison["counting_noise"].startswith("renewal")
        assert "counting noise" in comparison["note"]
        assert 0.0 < written["theory"][pop]["cv_isi_mean"] < 1.0  # irregular, sub-Poisson AI firing
        assert np.isfinite(comparison["ks_poisson"]) and np.isfinite(comparison["ks_with_simulated_cv"])
    solver = written["theory_solver"]
    largest = max(re for re, _ in solver["leading_eigenvalues"])
    assert solver["stable"] == (largest < 1.0)
    assert solver["stability"].startswith("stable" if solver["stable"] else "unstable")
    assert f"{largest:.3g}" in solver["stability"]
    report = (folder / "report.md").read_text()
    assert "## Stability of the predicted state" in report and "## What the comparison means" in report
