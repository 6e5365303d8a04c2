"""The memory estimate: it tracks what a network really holds, and too large a network is refused up front."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from torchsnn.config import build_network
from torchsnn.errors import ConfigError
from torchsnn.memory import check_memory, estimate_bytes

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
