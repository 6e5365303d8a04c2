"""A finished run extended with ``resume=<run> simulation.duration_ms=<longer>`` (issue 13): applied and recorded,
and bit-identical to a run of the longer duration from the start (CPU): the resumed run continues from the last
periodic checkpoint, whose blocks, generator state and monitor state are those of the longer run at that step.
A shorter duration, and any other override, are refused with exit 2."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from test_reliability_safety import SIMULATE, in_process
from testkit import compose_config

from torchsnn.run import execute
from torchsnn.runguard import read_status

T_MS = 600  # checkpoints every 200 ms (at block ends): the short run's last is near 400 ms, none at its end
SHORT = [*SIMULATE, f"simulation.duration_ms={T_MS}"]


def results(run_dir: Path) -> tuple[dict, bytes]:
    summary = json.loads((run_dir / "summary.json").read_text())
    return summary, (run_dir / "neurons.csv").read_bytes()


class _Capture(logging.Handler):
    """The torchsnn log of module-scoped runs (caplog is function-scoped)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record.getMessage())


def _run(overrides: list[str], run_dir: Path, capture: _Capture) -> tuple[int, str]:
    capture.records.clear()
    code = execute(compose_config(overrides), run_dir, overrides)
    return code, "\n".join(capture.records)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(the 2T run from the start, the T run extended to 2T, the T run's own summary, the resume log)."""
    base = tmp_path_factory.mktemp("extend")
    capture, logger = _Capture(), logging.getLogger("torchsnn")
    level = logger.level
    logger.addHandler(capture)
    logger.setLevel(logging.INFO)
    try:
        code, text = _run([*SHORT[:-1], f"simulation.duration_ms={2 * T_MS}"], base / "long", capture)
        assert code == 0, text
        code, text = _run(SHORT, base / "short", capture)
        assert code == 0, text
        short_summary = json.loads((base / "short" / "summary.json").read_text())
        code, text = _run([f"resume={base / 'short'}", f"simulation.duration_ms={2 * T_MS}"], base / "x", capture)
        assert code == 0, text
    finally:
        logger.removeHandler(capture)
        logger.setLevel(level)
    return base / "long", base / "short", short_summary, text


def test_an_extended_run_equals_the_longer_run_bit_for_bit(runs):
    long, extended, _, _ = runs
    (s_long, csv_long), (s_ext, csv_ext) = results(long), results(extended)
    assert s_ext["simulation"] == s_long["simulation"]  # every rate, CV, chi per population, exactly
    assert csv_ext == csv_long  # every neuron's rate and CV, byte for byte
    assert s_ext["run"]["model_time_s"] == pytest.approx(2 * T_MS / 1000)


def test_the_extension_is_recorded_and_the_earlier_summary_kept(runs):
    _, extended, short_summary, text = runs
    summary = json.loads((extended / "summary.json").read_text())
    assert summary["run"]["resumed_with"] == {"simulation.duration_ms": [T_MS, 2 * T_MS]}
    assert T_MS - 200 <= summary["run"]["resumed_from_ms"] < T_MS  # the last periodic checkpoint (block-aligned)
    status = read_status(extended)
    assert status["status"] == "complete" and status["resumed_with"] == summary["run"]["resumed_with"]
    kept = json.loads((extended / f"summary_{T_MS}ms.json").read_text())
    assert kept == short_summary
    assert "extended simulation.duration_ms 600 -> 1200" in text


def test_a_shorter_duration_and_other_overrides_are_refused(runs, tmp_path, caplog):
    long = runs[0]
    before = (long / "summary.json").read_bytes()
    code, text = in_process([f"resume={long}", f"simulation.duration_ms={T_MS}"], tmp_path / "a", caplog)
    assert code == 2 and "can only be extended, not shortened" in text and "Traceback" not in text
    code, text = in_process([f"resume={long}", f"simulation.duration_ms={4 * T_MS}", "seed=5"], tmp_path / "b", caplog)
    assert code == 2 and "'seed=5' given with resume=" in text
    assert (long / "summary.json").read_bytes() == before
