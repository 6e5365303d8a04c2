"""A run refused at validation leaves no TensorBoard file, and the collector names its folder as skipped, with the
error from its run.log, instead of passing over it in silence."""

from __future__ import annotations

from pathlib import Path

from testkit import run_cli

from torchsnn.collect import collect
from torchsnn.monitors.tensorboard import TensorBoardLogger


def test_a_logger_that_wrote_nothing_leaves_no_event_file(tmp_path: Path):
    logger = TensorBoardLogger(tmp_path / "tensorboard")
    logger.close()
    assert not (tmp_path / "tensorboard").exists()
    logger = TensorBoardLogger(tmp_path / "tensorboard")
    logger.log_rates({"E": [1.0, 2.0]})
    logger.close()
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_refused_run_leaves_no_tensorboard_and_is_listed_as_skipped(tmp_path: Path, capsys):
    job = tmp_path / "sweep" / "0"
    done = run_cli("scaffold.r=2", f"hydra.run.dir={job}")
    assert done.returncode == 2, done.stderr[-2000:]
    assert not (job / "tensorboard").exists() and not (job / "summary.json").exists()
    assert (job / ".hydra").is_dir()  # Hydra's own record of the job is kept, with its run.log
    capsys.readouterr()
    assert collect(tmp_path / "sweep") == []
    out = capsys.readouterr().out
    assert f"skipped {job}" in out and "scaffold.r = 2.0" in out, out
