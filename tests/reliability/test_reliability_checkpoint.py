"""Checkpoint and resume: a run stopped and resumed ends exactly (bit for bit, on the CPU) where an uninterrupted
run of the same config ends; SIGKILL loses at most the work since the last checkpoint; SIGTERM checkpoints."""

from __future__ import annotations

import filecmp
import json
import signal
import time

import pytest
import torch
from reliability_helpers import SMALL_PLASTIC, cli, compose_plain

from torchsnn.checkpoint import CheckpointWriter, load_checkpoint, restore
from torchsnn.config.builder import Seeds, build_network, build_scaffold
from torchsnn.monitors.weights import WeightMonitor
from torchsnn.simulation import SimulationInterruptedError, simulate


@pytest.fixture(autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _run(cfg, tmp_path, stop_after_blocks=None, resume=None):
    scaffold = build_scaffold(cfg, Seeds.from_seed(cfg["seed"]).scaffold)
    built = build_network(cfg, scaffold=scaffold)
    net = built.network
    if resume is not None:
        restore(resume, net, built.generator)
    writer = CheckpointWriter(tmp_path / "checkpoints", 3000, net, built.generator, cfg)
    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        return stop_after_blocks is not None and calls["n"] >= stop_after_blocks

    weights = WeightMonitor(1000)
    return simulate(
        net,
        duration_ms=2000,
        transient_ms=500,
        generator=built.generator,
        raster_neurons=30,
        progress=False,
        extra_monitors=[weights],
        health_every_ms=100,
        checkpoints=writer,
        resume=resume["simulation"] if resume else None,
        stop_requested=stop,
    ), weights


def test_stop_and_resume_is_bit_identical_on_the_cpu(tmp_path):
    cfg = compose_plain([*SMALL_PLASTIC, "plasticity.initial_traces=constant", "plasticity.initial_weights=random"])
    full, w_full = _run(cfg, tmp_path / "full")
    with pytest.raises(SimulationInterruptedError) as stopped:
        _run(cfg, tmp_path / "part", stop_after_blocks=500)  # 500 blocks of 1.5 ms: stopped at t = 750 ms
    payload = load_checkpoint(stopped.value.checkpoint)
    assert payload["time_ms"] == pytest.approx(750.0)
    resumed, w_resumed = _run(cfg, tmp_path / "part", resume=payload)
    for name in full.spike_stats:
        for key in ("counts", "rates_hz", "cv_isi"):
            assert torch.equal(
                full.spike_stats[name][key].nan_to_num(-1), resumed.spike_stats[name][key].nan_to_num(-1)
            )
        assert torch.equal(full.raster[name]["step"], resumed.raster[name]["step"])
        assert torch.equal(full.population_rate.counts[name], resumed.population_rate.counts[name])
        assert torch.equal(full.synchrony[name]["chi"], resumed.synchrony[name]["chi"])
    assert torch.equal(w_full.result()["final_weights_mv"]["EE"], w_resumed.result()["final_weights_mv"]["EE"])
    assert w_full.result()["series"] == w_resumed.result()["series"]


def test_a_checkpoint_is_refused_by_a_different_network(tmp_path):
    cfg = compose_plain([*SMALL_PLASTIC, "plasticity.initial_traces=constant", "plasticity.initial_weights=constant"])
    with pytest.raises(SimulationInterruptedError) as stopped:
        _run(cfg, tmp_path, stop_after_blocks=50)
    other = compose_plain(
        [*SMALL_PLASTIC, "plasticity.initial_traces=constant", "plasticity.initial_weights=constant", "seed=99"]
    )
    built = build_network(other)
    with pytest.raises(ValueError, match="different network"):
        restore(load_checkpoint(stopped.value.checkpoint), built.network, built.generator)


def _wait_for(path, proc, timeout=240.0):
    t0 = time.time()
    while not path.exists():
        assert proc.poll() is None, proc.stdout.read()
        assert time.time() - t0 < timeout, "no checkpoint appeared"
        time.sleep(0.1)


@pytest.mark.slow
def test_sigkill_then_resume_gives_the_uninterrupted_results(tmp_path):
    full = cli([*SMALL_PLASTIC, f"hydra.run.dir={tmp_path / 'full'}"])
    assert full.wait(timeout=600) == 0, full.stdout.read()
    killed = cli([*SMALL_PLASTIC, f"hydra.run.dir={tmp_path / 'killed'}"])
    _wait_for(tmp_path / "killed" / "checkpoints" / "checkpoint_000000009000.pt", killed)  # t = 900 ms
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=60)
    resumed = cli([f"resume={tmp_path / 'killed'}", f"hydra.run.dir={tmp_path / 'resume_log'}"])
    out = resumed.stdout.read()
    assert resumed.wait(timeout=600) == 0, out
    assert "resuming" in out
    a = json.loads((tmp_path / "full" / "summary.json").read_text())
    b = json.loads((tmp_path / "killed" / "summary.json").read_text())
    for section in ("simulation", "simulation_weights", "convergence", "alpha"):
        assert a[section] == b[section], section
    assert filecmp.cmp(tmp_path / "full" / "neurons.csv", tmp_path / "killed" / "neurons.csv", shallow=False)


@pytest.mark.slow
def test_sigterm_leaves_a_valid_checkpoint_and_a_partial_summary(tmp_path):
    proc = cli([*SMALL_PLASTIC, "simulation.duration_ms=20000", f"hydra.run.dir={tmp_path}"])
    _wait_for(tmp_path / "checkpoints" / "checkpoint_000000003000.pt", proc)
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=120)
    out = proc.stdout.read()
    assert code == 128 + signal.SIGTERM, out
    assert "resume with: python -m torchsnn.run resume=" in out
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["interrupted"]["signal"] == "SIGTERM"
    payload = load_checkpoint(tmp_path)
    assert payload["time_ms"] >= 300.0 and payload["config"]["seed"] == summary["run"]["seed"]
    assert summary["interrupted"]["checkpoint"].endswith(".pt")
