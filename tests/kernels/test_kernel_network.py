"""Whole networks with the compiled CPU kernels and on the torch reference path, from the same seed: identical
spike counts, rates, ISI statistics, rasters, population-rate traces, synchrony measures and final state (voltages,
refractory counters, ring buffers). Small E/I networks from conf/ (Hydra compose), 300 ms, two replicas; one with
equal delays (block = ring = 15 steps) and one with four different delays (blocks of 10 steps, a 30-slot ring)."""

from __future__ import annotations

import pytest
import torch
from kernel_helpers import compose_config
from testkit import brunel_size_overrides

from torchsnn.config import build_network
from torchsnn.simulation import simulate

# 400 E + 100 I, in-degrees 40 / 10, J = 0.4 mV, g = 4 (recurrent input balanced on average), Poisson drive at
# threshold (mu_ext = 20 mV, sigma_ext = 2 mV): fluctuation-driven, irregular firing
SMALL = [
    "+experiment=brunel_ai",
    *brunel_size_overrides(400, 100, 40, 10),
    "network.projections.EE.weight_mv=0.4",
    "network.projections.IE.weight_mv=0.4",
    "network.projections.EI.weight_mv=1.6",
    "network.projections.II.weight_mv=1.6",
    "drive.k_ext=500",
    "drive.nu_ext_hz=10.0",
    "drive.j_ext_mv=0.2",
    "simulation.device=cpu",
    "simulation.replicas=2",
    "seed=77",
]
DELAYS = {
    "equal_delays": [],
    "mixed_delays": [
        "network.projections.EE.delay_ms=1.5",
        "network.projections.EI.delay_ms=2.3",
        "network.projections.IE.delay_ms=1.0",
        "network.projections.II.delay_ms=3.0",
    ],
}


def _simulate(overrides: list[str], enabled: bool):
    cfg = compose_config([*overrides, f"simulation.backend={'numba' if enabled else 'torch'}"])
    built = build_network(cfg)
    assert built.network.backend.name == ("numba_cpu" if enabled else "torch_cpu")
    result = simulate(
        built.network,
        duration_ms=300.0,
        transient_ms=50.0,
        generator=built.generator,
        raster_neurons=60,
        raster_ms=250.0,
        voltage_every_ms=0.5,
        progress=False,
    )
    return built.network, result


@pytest.mark.parametrize("delays", list(DELAYS))
def test_network_runs_identical(delays):
    overrides = SMALL + DELAYS[delays]
    net_c, res_c = _simulate(overrides, True)
    net_r, res_r = _simulate(overrides, False)
    assert net_c.block_steps == (15 if delays == "equal_delays" else 10)
    for name in ("E", "I"):
        a, b = res_c.spike_stats[name], res_r.spike_stats[name]
        assert torch.equal(a["counts"], b["counts"])
        assert torch.equal(a["rates_hz"], b["rates_hz"])
        assert torch.equal(a["cv_isi"].nan_to_num(-1.0), b["cv_isi"].nan_to_num(-1.0))
        assert torch.equal(res_c.raster[name]["step"], res_r.raster[name]["step"])
        assert torch.equal(res_c.raster[name]["neuron"], res_r.raster[name]["neuron"])
        assert torch.equal(res_c.population_rate.counts[name], res_r.population_rate.counts[name])
        assert torch.equal(res_c.synchrony[name]["chi"], res_r.synchrony[name]["chi"])
        assert torch.equal(net_c.populations[name].v_mv, net_r.populations[name].v_mv)
        assert torch.equal(net_c.populations[name].refractory_left, net_r.populations[name].refractory_left)
        assert torch.equal(net_c.ring(name), net_r.ring(name))
    assert res_c.summary() == res_r.summary()
    summary = res_c.summary()
    assert 2.0 < summary["E"]["rate_mean_hz"] < 200.0  # an active network (the comparison means something)
    assert res_c.raster["E"]["step"].numel() > 100
    # the two replicas differ (independent noise), so per-replica state is compared, not just replica 0
    assert not torch.equal(res_c.spike_stats["E"]["counts"][0], res_c.spike_stats["E"]["counts"][1])
