"""Safe by construction (issue 13): no code runs from a config or a checkpoint, a bad checkpoint or run folder is
exit 2, a failed write loses no finished simulation, a signal stops every mode with 128 + signal."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from testkit import REPO, compose_config, run_cli

from torchsnn.checkpoint import FORMAT, config_fingerprint, latest_checkpoint, load_checkpoint, restore
from torchsnn.config import build_network
from torchsnn.errors import CheckpointError
from torchsnn.run import execute
from torchsnn.runguard import read_status

TINY = [
    "network=brunel",
    "drive=poisson",
    "network.populations.E.size=400",
    "network.populations.I.size=100",
    "network.projections.EE.connectivity.indegree=40",
    "network.projections.IE.connectivity.indegree=40",
    "network.projections.EI.connectivity.indegree=10",
    "network.projections.II.connectivity.indegree=10",
    "drive.k_ext=500",
    "drive.nu_ext_hz=10.0",
    "drive.j_ext_mv=0.2",
    "simulation.duration_ms=1000",
    "simulation.transient_ms=200",
    "simulation.device=cpu",
    "simulation.checkpoint_every_ms=200",
    "logging.progress=false",
    "logging.figures=false",
    "logging.tensorboard=false",
]
SIMULATE = ["mode=simulate", *TINY]


def in_process(overrides: list[str], run_dir: Path, caplog) -> tuple[int, str]:
    """The entry point's ``execute`` on the composed overrides (what ``python -m torchsnn.run`` does)."""
    cfg = compose_config(overrides)
    caplog.clear()
    err = io.StringIO()
    with caplog.at_level(logging.INFO, logger="torchsnn"), contextlib.redirect_stderr(err):
        code = execute(cfg, run_dir, overrides)
    return code, caplog.text + err.getvalue()


def popen(args: list[str], **kwargs) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs
    )


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished tiny simulate run with checkpoints (one subprocess, a few seconds)."""
    out = tmp_path_factory.mktemp("done") / "run"
    proc = run_cli(*SIMULATE, f"hydra.run.dir={out}")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return out


# ---------------------------------------------------------------- the two exploits
def test_popen_through_target_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    proc = run_cli(
        f"network.populations.E.drive={{_target_:subprocess.Popen,args:[touch,{marker}]}}",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    text = proc.stdout + proc.stderr
    assert proc.returncode == 2, text
    assert "invalid configuration: network.populations.E.drive._target_ = 'subprocess.Popen'" in text
    assert "Traceback" not in text
    assert not marker.exists()


class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_code_in_a_checkpoint_is_refused_and_nothing_runs(tmp_path, caplog):
    marker = tmp_path / "pwned"
    folder = tmp_path / "victim" / "checkpoints"
    folder.mkdir(parents=True)
    torch.save({"format": FORMAT, "config": {}, "payload": _RunsCode(marker)}, folder / "checkpoint_000000001000.pt")
    with pytest.raises(CheckpointError, match="objects other than plain tensors"):
        load_checkpoint(folder.parent)
    code, text = in_process([f"resume={folder.parent}"], tmp_path / "log", caplog)
    assert code == 2, text
    assert "cannot resume:" in text and "Traceback" not in text
    assert not marker.exists()
    # the object is live: plain unpickling runs the command (so the checks above can fail)
    pickle.loads(pickle.dumps(_RunsCode(marker)))
    assert marker.exists()


# ---------------------------------------------------------------- bad checkpoints
def _variants(good: dict) -> dict[str, object]:
    other_format = {**good, "format": FORMAT + 1}
    other_code = {**good, "code_version": "0.0.0-other"}
    edited = {**good, "config": {**good["config"], "seed": good["config"]["seed"] + 1}}
    return {"format": other_format, "code version": other_code, "edited config": edited, "plain dict": {"a": 1}}


@pytest.mark.parametrize(
    "kind", ["truncated", "empty", "garbage", "passwd", "format", "code version", "edited config", "plain dict"]
)
def test_a_bad_checkpoint_is_refused_with_exit_2(kind, finished, tmp_path, caplog):
    good_path = latest_checkpoint(finished)
    good = load_checkpoint(good_path)
    victim = tmp_path / "victim"
    (victim / "checkpoints").mkdir(parents=True)
    path = victim / "checkpoints" / "checkpoint_000000001000.pt"
    raw = good_path.read_bytes()
    if kind == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "garbage":
        path.write_bytes(os.urandom(4096))
    elif kind == "passwd":
        path = Path("/etc/passwd")
    else:
        torch.save(_variants(good)[kind], path)
    with pytest.raises(CheckpointError):
        load_checkpoint(path)
    code, text = in_process([f"resume={path}"], tmp_path / "log", caplog)
    assert code == 2, text
    assert "cannot resume:" in text and "Traceback" not in text


def test_a_checkpoint_missing_a_buffer_is_refused(finished):
    payload = load_checkpoint(finished)
    built = build_network(payload["config"])
    buffers = payload["network"]["buffers"]
    buffers.pop(next(k for k in buffers if k.endswith("v_mv")))
    with pytest.raises(CheckpointError, match="missing"):
        restore(payload, built.network, built.generator)


def test_the_config_fingerprint_ignores_only_logging_and_resume(finished):
    cfg = load_checkpoint(finished)["config"]
    assert config_fingerprint({**cfg, "logging": {}, "resume": "x"}) == config_fingerprint(cfg)
    assert config_fingerprint({**cfg, "seed": cfg["seed"] + 1}) != config_fingerprint(cfg)


# ---------------------------------------------------------------- run folders and resume
def test_a_finished_run_is_not_rewritten(finished, tmp_path, caplog):
    before = {p.name: p.read_bytes() for p in finished.iterdir() if p.is_file() and p.name != ".lock"}
    code, text = in_process([f"resume={finished}"], tmp_path / "log", caplog)
    assert code == 2 and "holds a finished run" in text, text
    code, text = in_process([*SIMULATE], finished, caplog)  # a new run into the same folder
    assert code == 2 and "already holds a run with status 'complete'" in text, text
    after = {p.name: p.read_bytes() for p in finished.iterdir() if p.is_file() and p.name != ".lock"}
    assert after == before
    assert read_status(finished)["status"] == "complete"


def test_overrides_given_with_resume_are_refused(finished, tmp_path, caplog):
    code, text = in_process([f"resume={finished}", "seed=5"], tmp_path / "log", caplog)
    assert code == 2, text
    assert "'seed=5' given with resume=" in text and "logging.progress" in text


def test_a_second_run_into_a_locked_folder_is_refused(tmp_path, caplog):
    folder = tmp_path / "busy"
    holder = popen(
        [
            sys.executable,
            "-c",
            "import sys,time; from torchsnn.runguard import RunFolder; f = RunFolder(sys.argv[1]); f.acquire(); "
            "print('locked', flush=True); time.sleep(120)",
            str(folder),
        ]
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        code, text = in_process([*SIMULATE], folder, caplog)
        assert code == 2, text
        assert f"another run (pid {holder.pid}) is writing into {folder}" in text
    finally:
        holder.kill()
        holder.wait()


# ---------------------------------------------------------------- failed writes
def test_an_unwritable_checkpoint_folder_loses_no_simulation(tmp_path, caplog):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "checkpoints").write_text("not a folder")  # every checkpoint write fails with an OSError
    code, text = in_process([*SIMULATE, "simulation.duration_ms=600"], run_dir, caplog)
    assert code == 0, text
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["simulation"]["E"]["rate_mean_hz"] > 0
    assert len(summary["run"]["checkpoint_failures"]) == 2  # t = 200 and 400 ms
    assert (run_dir / "neurons.csv").exists()
    assert read_status(run_dir)["status"] == "complete"


def test_a_full_disk_loses_no_simulation(tmp_path):
    """``ulimit -f 300``: files above 300 KiB cannot be written (the later checkpoints are larger)."""
    run_dir = tmp_path / "run"
    args = " ".join([*SIMULATE, f"hydra.run.dir={run_dir}"])
    proc = popen(["bash", "-c", f"ulimit -f 300; exec {sys.executable} -m torchsnn.run {args}"])
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode == 0, out
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["simulation"]["I"]["rate_mean_hz"] > 0
    assert summary["run"]["checkpoint_failures"], summary["run"]
    assert "not written" in summary["run"]["checkpoint_failures"][0]
    assert "Traceback" not in out


# ---------------------------------------------------------------- signals
def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    t0 = time.time()
    while not (list(path.parent.glob(path.name)) if "*" in path.name else path.exists()):
        assert proc.poll() is None, proc.stdout.read()
        assert time.time() - t0 < timeout, f"{path} did not appear"
        time.sleep(0.05)


def test_sigterm_stops_a_theory_solve_with_143_and_a_partial_summary(tmp_path):
    # fine quadrature grids: the solve takes tens of seconds on a 2-core CPU
    slow = ["meanfield.degree_order=128", "meanfield.gh_order_mu=128", "meanfield.gh_order_sigma=32"]
    proc = popen([sys.executable, "-m", "torchsnn.run", "mode=theory", *slow, f"hydra.run.dir={tmp_path}"])
    _wait_for(tmp_path / "status.json", proc)  # written when the folder is taken, just before the theory
    time.sleep(1.0)
    t0 = time.time()
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 128 + signal.SIGTERM, out
    assert time.time() - t0 < 20  # at once, not after the solve
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["interrupted"] == {"signal": "SIGTERM", "phase": "theory"}
    assert "theory" not in summary
    status = read_status(tmp_path)
    assert status["status"] == "interrupted" and status["exit_code"] == 143
    assert "Traceback" not in out


def test_a_second_ctrl_c_exits_at_once_and_keeps_the_last_checkpoint(tmp_path):
    proc = popen(
        [sys.executable, "-m", "torchsnn.run", *SIMULATE, "simulation.duration_ms=100000", f"hydra.run.dir={tmp_path}"]
    )
    _wait_for(tmp_path / "checkpoints" / "checkpoint_*.pt", proc)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 128 + signal.SIGINT, out
    assert "Traceback" not in out
    payload = load_checkpoint(tmp_path)  # the newest complete checkpoint reads
    assert payload["time_ms"] >= 200.0
    assert read_status(tmp_path)["status"] == "interrupted"


# ---------------------------------------------------------------- small ones
def test_the_theory_is_bit_reproducible():
    """Two solves of the same model give the same bits (the Newton step's least squares once differed at 1e-16
    from call to call)."""
    from testkit import compose_plain

    from torchsnn.config.theory_builder import model_from_config, solve_options
    from torchsnn.meanfield.solver import solve

    cfg = compose_plain("mode=theory")
    first, second = (solve(model_from_config(cfg), **solve_options(cfg)) for _ in range(2))
    assert first.iterations > 1
    assert torch.equal(first.x, second.x)


def test_a_silent_network_reports_no_synchrony(tmp_path, caplog):
    code, text = in_process([*SIMULATE, "drive.nu_ext_hz=0.0", "simulation.duration_ms=300"], tmp_path / "run", caplog)
    assert code == 0, text
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    for name in ("E", "I"):
        assert summary["simulation"][name]["fraction_silent"] == 1.0
        assert summary["simulation"][name]["chi"] is None


def test_the_collector_skips_runs_that_did_not_finish(tmp_path):
    from torchsnn.collect import collect

    for job, status in (("0", "complete"), ("1", "interrupted"), ("2", "failed"), ("3", None)):
        (tmp_path / job).mkdir()
        (tmp_path / job / "summary.json").write_text(json.dumps({"comparison": {"E": {"ks": 0.1}}}))
        if status:
            (tmp_path / job / "status.json").write_text(json.dumps({"status": status}))
    assert [row["job"] for row in collect(tmp_path)] == ["0", "3"]  # "3": an older run without a status file


def test_a_run_folder_that_cannot_be_created_is_exit_2(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    proc = run_cli("mode=theory", f"hydra.run.dir={blocker / 'run'}")
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "run folder refused" in proc.stderr and "Traceback" not in proc.stdout + proc.stderr


def test_resume_applies_an_allowed_override_records_it_and_reproduces_the_run(finished, tmp_path, caplog):
    """A copy of the finished run, as if it had been killed after its last checkpoint: resumed with an allowed
    override, it ends exactly where the original ended."""
    import shutil

    copy = tmp_path / "killed"
    shutil.copytree(finished, copy)
    (copy / "summary.json").unlink()
    (copy / "status.json").write_text(json.dumps({"status": "running"}))
    code, text = in_process([f"resume={copy}", "drive.nu_ext_hz=11"], tmp_path / "log1", caplog)
    assert code == 2 and "'drive.nu_ext_hz=11' given with resume=" in text, text
    code, text = in_process([f"resume={copy}", "logging.progress=true"], tmp_path / "log2", caplog)
    assert code == 0, text
    a = json.loads((finished / "summary.json").read_text())
    b = json.loads((copy / "summary.json").read_text())
    assert a["simulation"] == b["simulation"]
    assert b["run"]["resume"]["applied_overrides"] == {"logging.progress": True}
    assert b["run"]["resumed_from_ms"] > 0
    assert read_status(copy)["status"] == "complete"


def test_an_output_that_cannot_be_written_is_exit_5_with_the_rest_kept(tmp_path, caplog, monkeypatch):
    import errno

    import torchsnn.pipeline as pipeline

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pipeline, "write_figures", full)
    run_dir = tmp_path / "run"
    code, text = in_process([*SIMULATE, "logging.figures=true", "simulation.duration_ms=300"], run_dir, caplog)
    assert code == 5, text
    assert "figures not written" in text and "Traceback" not in text
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["simulation"]["E"]["rate_mean_hz"] > 0
    assert summary["run"]["io_errors"] == ["figures not written ([Errno 28] No space left on device)"]
    assert read_status(run_dir)["status"] == "failed" and read_status(run_dir)["exit_code"] == 5
