"""Health checks stop a bad run with a diagnosis and keep what was gathered."""

from __future__ import annotations

import math

import pytest
import torch
from reliability_helpers import SMALL_PLASTIC, compose_plain

from torchsnn.config import build_network
from torchsnn.errors import SimulationAbortedError
from torchsnn.simulation import simulate

TINY_BRUNEL = [
    "+experiment=brunel_ai",
    "network.populations.E.size=2000",
    "network.populations.I.size=500",
    "network.projections.EE.connectivity.indegree=200",
    "network.projections.IE.connectivity.indegree=200",
    "network.projections.EI.connectivity.indegree=50",
    "network.projections.II.connectivity.indegree=50",
    "simulation.device=cpu",
]


def test_runaway_excitation_is_stopped():
    # no inhibition (g = 0) and strong drive: every neuron fires regularly near its refractory ceiling
    cfg = compose_plain(
        [*TINY_BRUNEL, "network.projections.EI.weight_mv=0", "network.projections.II.weight_mv=0", "drive.nu_ext_hz=40"]
    )
    built = build_network(cfg)
    with pytest.raises(SimulationAbortedError, match="runaway activity: population E fires at") as err:
        simulate(
            built.network,
            duration_ms=2000,
            transient_ms=0,
            generator=built.generator,
            progress=False,
            health_every_ms=100,
        )
    assert err.value.time_ms == pytest.approx(100.5, abs=2)  # at the first check
    assert err.value.partial.spike_stats["E"]["rates_hz"].mean() > 250  # gathered so far, over the window so far


def test_a_healthy_network_is_not_stopped():
    cfg = compose_plain(TINY_BRUNEL)
    built = build_network(cfg)
    simulate(built.network, duration_ms=500, generator=built.generator, progress=False, health_every_ms=50)


@pytest.mark.parametrize("where", ["weights", "voltage"])
def test_a_planted_nan_is_found(where):
    cfg = compose_plain([*SMALL_PLASTIC, "plasticity.initial_traces=constant", "plasticity.initial_weights=constant"])
    net = build_network(cfg).network
    if where == "weights":
        net.projections["EE"].weight_mv.view(-1)[123] = math.nan
        expected = "non-finite weights in plastic projection EE"
    else:
        net.populations["I"].v_mv[0, 7] = math.nan
        expected = "non-finite membrane potential in population I"
    with pytest.raises(SimulationAbortedError, match=expected):
        simulate(net, duration_ms=1000, generator=torch.Generator().manual_seed(0), progress=False, health_every_ms=100)


def test_weights_outside_their_bounds_are_found():
    cfg = compose_plain([*SMALL_PLASTIC, "plasticity.initial_traces=constant", "plasticity.initial_weights=constant"])
    net = build_network(cfg).network
    net.projections["EE"].weight_mv.view(-1)[0] = 5.0  # the rule's bound is 0.75 mV
    with pytest.raises(SimulationAbortedError, match="left their bounds"):
        net.projections["EE"].rule.update = lambda w, *a: w  # a rule that does not clip
        simulate(net, duration_ms=500, generator=torch.Generator().manual_seed(0), progress=False, health_every_ms=100)
