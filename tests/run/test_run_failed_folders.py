"""A run refused at validation leaves no TensorBoard file, and the collector names its folder as skipped, with the
error from its run.log, instead of passing over it in silence."""

from __future__ import annotations

from pathlib import Path

from testkit import brunel_size_overrides, run_cli

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


def test_a_failed_job_does_not_stop_the_sweep(tmp_path: Path, capsys):
    """Hydra's basic launcher runs the jobs one after the other in one process: the first one's invalid value must
    leave the second one running (exit 2 of a single run, logged and skipped within a sweep)."""
    sweep = tmp_path / "sweep"
    done = run_cli(
        "-m",
        "+experiment=brunel_ai",
        *brunel_size_overrides(400, 100, 40, 10),
        "mode=theory",
        "meanfield.samples=2000",
        "simulation.transient_ms=-1,100",
        f"hydra.sweep.dir={sweep}",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ended with exit code 2; the sweep goes on" in done.stderr + done.stdout
    assert not (sweep / "0" / "summary.json").exists() and (sweep / "1" / "summary.json").exists()
    capsys.readouterr()
    rows = collect(sweep)
    assert [row["job"] for row in rows] == ["1"]
    assert "simulation.transient_ms = -1.0" in capsys.readouterr().out
