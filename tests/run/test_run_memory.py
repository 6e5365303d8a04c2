"""The memory estimate: it tracks what a network really holds, and too large a network is refused up front."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from torchsnn.config import build_network
from torchsnn.config.builder import Seeds, build_scaffold
from torchsnn.errors import ConfigError
from torchsnn.memory import check_memory, estimate_bytes, expected_edges, wiring_peak_bytes
from torchsnn.scaffold.edges import CHUNK_EDGES

ROOT = Path(__file__).resolve().parents[2]


def _cfg(overrides):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return OmegaConf.to_container(compose("config", overrides=overrides), resolve=True)


def test_estimate_covers_the_tensors_the_network_holds():
    cfg = _cfg(
        [
            "+experiment=brunel_ai",
            "network.populations.E.size=4000",
            "network.populations.I.size=1000",
            "network.projections.EE.connectivity.indegree=400",
            "network.projections.IE.connectivity.indegree=400",
            "network.projections.EI.connectivity.indegree=100",
            "network.projections.II.connectivity.indegree=100",
            "simulation.replicas=2",
        ]
    )
    net = build_network(cfg).network
    held = sum(b.numel() * b.element_size() for b in net.buffers())
    estimate = estimate_bytes(cfg)
    parts_in_buffers = estimate["scaffold (CSR, int32 targets)"] + estimate["neuron state and ring buffers"]
    # the buffers are the scaffold, neuron state and rings; the estimate's other parts are run-time work arrays
    assert 0.7 * held <= parts_in_buffers <= 1.5 * held, (held, parts_in_buffers)
    assert estimate["total"] > held


def test_a_network_too_large_for_the_device_is_refused_with_numbers():
    cfg = _cfg(
        [
            "+experiment=brunel_ai",
            "network.populations.E.size=8000000",
            "network.populations.I.size=2000000",
            "simulation.replicas=16",
        ]
    )
    with pytest.raises(ConfigError) as err:
        check_memory(cfg, torch.device("cpu"))
    message = str(err.value)
    assert "GiB on cpu" in message and "are free" in message and "replicas" in message


def test_refusal_lists_parts_that_add_up_to_the_total_wiring_included():
    cfg = _cfg(
        [
            "+experiment=hetero_static",
            "network.populations.E.size=8000000",
            "network.populations.I.size=2000000",
            "simulation.replicas=16",
        ]
    )
    parts = estimate_bytes(cfg, "cpu")
    assert sum(v for k, v in parts.items() if k != "total") == pytest.approx(parts["total"], rel=1e-12)
    with pytest.raises(ConfigError) as err:
        check_memory(cfg, torch.device("cpu"))
    message = str(err.value)
    need = float(re.search(r"needs about ([0-9.]+) GiB", message).group(1))
    listed = [float(x) for x in re.findall(r" ([0-9.]+)(?:,| GiB\))", message.split("(estimate: ")[1])]
    assert need == pytest.approx(sum(listed), abs=0.01 * len(listed))  # the printed parts add up (2 decimals)


def test_wiring_peak_follows_the_device_wiring_layout():
    """Fixed in-degree: int32 local keys + int32 targets = 8 B per edge plus row_ptr and one chunk's work arrays;
    the configuration model shuffles int64 stubs: 16 B per edge. Blocks wired earlier stay (4 B per edge).
    The CPU wiring kernels (scaffold/host_wiring.py): 8 B per edge of the block being wired, no chunk arrays."""
    from torchsnn import kernels

    cfg = _cfg(["+experiment=brunel_ai"])
    e = expected_edges(cfg)
    first = e["EE"]
    hetero = _cfg(["+experiment=hetero_static"])
    previous = kernels.set_cpu_kernels(False)  # the torch path (the CUDA path's layout)
    try:
        peak = wiring_peak_bytes(cfg, "cpu")
        assert 8 * first <= peak <= 8 * first + 4 * sum(e.values()) + 48 * CHUNK_EDGES["cpu"] + 8 * 12_501 * 4
        assert wiring_peak_bytes(hetero, "cpu") >= 16 * expected_edges(hetero)["EE"]
    finally:
        kernels.set_cpu_kernels(previous)
    if kernels.cpu_kernels_enabled():
        for c in (cfg, hetero):
            peak, edges = wiring_peak_bytes(c, "cpu"), expected_edges(c)
            assert 8 * max(edges.values()) <= peak <= 8 * sum(edges.values()) + 24 * 12_501 * 4


@pytest.mark.slow
@pytest.mark.xfail(
    torch.version.cuda is not None,
    reason="known gap (issue 11): on torch's CUDA builds the build phase's peak RSS holds ~650 MB more than the "
    "estimate (measured 1347 MB against 73 MB at 6.2 M synapses, torch 2.14.1+cu130 on a CPU machine; within 5 % "
    "on the CPU build 2.13.0); not yet explained",
    strict=False,
)
def test_estimate_matches_the_measured_peak_rss_within_20_percent():
    """A fresh process builds and runs hetero_static at N = 12,500 (6.2e6 synapses): its peak RSS above the RSS
    after imports and kernel compilation (benchmarks/memory_probe.py) is within 20 % of the estimate."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.memory_probe",
            "+experiment=hetero_static",
            "simulation.duration_ms=300",
            "simulation.transient_ms=100",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"},
    )
    record = json.loads(out.stdout.strip().splitlines()[-1])
    assert record["estimate_mb"]["total"] == pytest.approx(record["run_peak_mb"], rel=0.2), record


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_wiring_peak_matches_max_memory_allocated():
    """On CUDA the wiring peak is the device's: torch.cuda.max_memory_allocated over build_scaffold, within 20 %
    of the estimate (N = 100,000, 1e8 synapses, int64 local keys)."""
    overrides = [
        "+experiment=brunel_ai",
        "simulation.device=cuda",
        "network.populations.E.size=80000",
        "network.populations.I.size=20000",
    ] + [
        f"network.projections.{p}.connectivity.indegree={k}"
        for p, k in (("EE", 800), ("IE", 800), ("EI", 200), ("II", 200))
    ]
    cfg = _cfg(overrides)
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    scaffold = build_scaffold(cfg, Seeds.from_seed(0).scaffold)
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    held = torch.cuda.memory_allocated() - base
    n_syn = sum(b.n_edges for b in scaffold.blocks.values())
    assert scaffold.block("E", "E").post_index.device.type == "cuda"
    assert held / n_syn <= 6.0  # int32 targets + int64 row_ptr per neuron
    assert wiring_peak_bytes(cfg, "cuda") == pytest.approx(peak, rel=0.2)
