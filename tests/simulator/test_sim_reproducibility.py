"""Reproducibility (architecture contract 2: randomness only through explicit generators from the run's seed) and
independence of batched replicas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from sim_helpers import LIF, TINY_OVERRIDES, compose_config

from torchsnn.config import build_network
from torchsnn.network import Network
from torchsnn.populations import GaussianDrive, LIFPopulation
from torchsnn.simulation import simulate


def _run(seed: int, replicas: int = 2, duration_ms: float = 400.0):
    built = build_network(compose_config([*TINY_OVERRIDES, f"seed={seed}", f"simulation.replicas={replicas}"]))
    result = simulate(
        built.network,
        duration_ms=duration_ms,
        transient_ms=100.0,
        generator=built.generator,
        raster_neurons=200,
        raster_ms=duration_ms,
        progress=False,
    )
    return built, result


def _fingerprint(built, result) -> dict[str, torch.Tensor]:
    out = {}
    for name in ("E", "I"):
        out[f"counts_{name}"] = result.spike_stats[name]["counts"]
        out[f"cv_{name}"] = result.spike_stats[name]["cv_isi"]
        out[f"raster_step_{name}"] = result.raster[name]["step"]
        out[f"raster_neuron_{name}"] = result.raster[name]["neuron"]
        out[f"pop_{name}"] = result.population_rate.counts[name]
    for (post, pre), block in built.scaffold.blocks.items():
        out[f"row_ptr_{post}{pre}"] = block.row_ptr
        out[f"post_index_{post}{pre}"] = block.post_index
    return out


def test_same_seed_same_scaffold_and_spikes():
    a = _fingerprint(*_run(seed=11))
    b = _fingerprint(*_run(seed=11))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, equal_nan=True, msg=key)
    assert a["counts_E"].sum() > 1000


def test_different_seeds_differ():
    a = _fingerprint(*_run(seed=11))
    b = _fingerprint(*_run(seed=12))
    assert not torch.equal(a["counts_E"], b["counts_E"])
    assert not torch.equal(a["raster_step_E"][:50], b["raster_step_E"][:50])
    assert not torch.equal(a["post_index_EE"], b["post_index_EE"])


def test_dynamics_noise_does_not_depend_on_the_scaffold_draw():
    """The scaffold and the dynamics use separate streams of the seed: wiring the same seed's network from a given
    scaffold gives the same spikes as wiring it from the seed; another seed on the same scaffold gives others."""
    built, result = _run(seed=11)
    again = build_network(built.config, scaffold=built.scaffold)
    res2 = simulate(again.network, duration_ms=400.0, transient_ms=100.0, generator=again.generator, progress=False)
    assert torch.equal(result.spike_stats["E"]["counts"], res2.spike_stats["E"]["counts"])
    # and on that same scaffold another seed gives other dynamics (the noise stream follows the seed)
    other = build_network({**built.config, "seed": 12}, scaffold=built.scaffold)
    res3 = simulate(other.network, duration_ms=400.0, transient_ms=100.0, generator=other.generator, progress=False)
    assert not torch.equal(result.spike_stats["E"]["counts"], res3.spike_stats["E"]["counts"])


def _bartlett_se(x: np.ndarray, y: np.ndarray, max_lag: int) -> float:
    """Std of the sample correlation of two independent stationary series (Bartlett 1946):
    Var r = (1 / n) sum_k rho_x(k) rho_y(k), summed over |k| <= max_lag."""
    n = x.size

    def acf(z):
        z = z - z.mean()
        return np.array([np.dot(z[: n - k], z[k:]) / np.dot(z, z) for k in range(max_lag + 1)])

    ax, ay = acf(x), acf(y)
    return math.sqrt(max((ax[0] * ay[0] + 2 * np.sum(ax[1:] * ay[1:])) / n, 1.0 / n))


def test_replicas_of_a_network_are_independent_and_alike():
    """4 replicas of the tiny E/I network, 2 s after a 100 ms transient.

    Independence: population-rate time series (5 ms bins, 400 bins) of two replicas are uncorrelated: |r| < 4 SE with
    the Bartlett SE estimated from the series' own autocorrelations (up to 100 ms). Replicas sharing their noise
    would give r = 1.
    Alike: the replicas' mean E rates agree within 4 SE of their difference (SE from 50 ms bins, longer than the
    correlation time of the population rate), and their per-neuron rate distributions pass a two-sample KS test
    (p > 1e-3).
    """
    _, result = _run(seed=3, replicas=4, duration_ms=2100.0)
    rate5 = result.population_rate.binned_rate_hz("E", 5.0)[20:].numpy()  # drop the 100 ms transient
    rate50 = result.population_rate.binned_rate_hz("E", 50.0)[2:].numpy()
    assert rate5.shape == (400, 4)
    means = rate50.mean(0)
    ses = rate50.std(0, ddof=1) / math.sqrt(rate50.shape[0])
    rates = result.spike_stats["E"]["rates_hz"].numpy()
    assert 5.0 < means.mean() < 60.0
    for a in range(4):
        for b in range(a + 1, 4):
            r = np.corrcoef(rate5[:, a], rate5[:, b])[0, 1]
            se = _bartlett_se(rate5[:, a], rate5[:, b], max_lag=20)
            assert abs(r) < 4 * se, (a, b, r, se)
            assert abs(means[a] - means[b]) < 4 * math.hypot(ses[a], ses[b]), (means, ses)
            assert stats.ks_2samp(rates[a], rates[b]).pvalue > 1e-3
    # the spike counts of the window, replica by replica, are not copies
    counts = result.spike_stats["E"]["counts"]
    assert not torch.equal(counts[0], counts[1])


def test_replicas_of_isolated_neurons_are_independent():
    """Isolated neurons (GaussianDrive 18 / 3 mV), 4 replicas x 2000 neurons, 1 s: per-neuron spike counts of two
    replicas are uncorrelated across neurons (|r| < 4 / sqrt(N) = 0.089 for independent pairs), and every replica's
    mean rate agrees with the pooled mean within 4 SE (SE = per-neuron std / sqrt(N))."""
    dt, n, b = 0.1, 2000, 4
    pop = LIFPopulation("P", n, dt, **LIF)
    net = Network({"P": pop}, {"P": GaussianDrive(18.0, 3.0)}, {}, dt)
    gen = torch.Generator().manual_seed(9)
    net.reset(b, gen)
    assert not torch.equal(pop.v_mv[0], pop.v_mv[1])  # independent initial voltages too
    res = simulate(net, duration_ms=1200.0, transient_ms=200.0, generator=gen, progress=False, voltage_every_ms=0)
    counts = res.spike_stats["P"]["counts"].double().numpy()
    pooled = counts.mean()
    for a in range(b):
        se = counts[a].std(ddof=1) / math.sqrt(n)
        assert abs(counts[a].mean() - pooled) < 4 * se
        for c in range(a + 1, b):
            assert abs(np.corrcoef(counts[a], counts[c])[0, 1]) < 4 / math.sqrt(n)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_same_seed_on_cuda_is_reproducible():
    cfg = compose_config([*TINY_OVERRIDES, "simulation.device=cuda", "simulation.replicas=2"])
    runs = []
    for _ in range(2):
        built = build_network(cfg)
        res = simulate(built.network, duration_ms=400.0, transient_ms=100.0, generator=built.generator, progress=False)
        runs.append(res.spike_stats["E"]["counts"])
    assert torch.equal(runs[0], runs[1])
