"""Monitors against direct computations from a full spike record of the same run (an extra monitor that keeps every
spike of every replica), and the synchrony measure chi in its two limits."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sim_helpers import LIF, TINY_OVERRIDES, compose_config

from torchsnn.config import build_network
from torchsnn.monitors import Monitor
from torchsnn.network import BlockOutput, Network
from torchsnn.populations import GaussianDrive, LIFPopulation
from torchsnn.simulation import simulate

DT = 0.1


class FullRecord(Monitor):
    """Every spike (T, B, N) of the run, kept as given (no window)."""

    def setup(self, network: Network, start_step: int, total_steps: int) -> None:
        self.blocks: dict[str, list[tuple[int, torch.Tensor]]] = {name: [] for name in network.populations}

    def on_block(self, out: BlockOutput) -> None:
        for name, sp in out.spikes.items():
            self.blocks[name].append((out.start_step, sp.clone()))

    def result(self) -> dict[str, tuple[int, torch.Tensor]]:
        return {name: (b[0][0], torch.cat([sp for _, sp in b])) for name, b in self.blocks.items()}


def _reference_stats(spikes: np.ndarray, first_step: int, window_start: int, min_isi: int = 3):
    """Counts, rates and ISI CV per (replica, neuron) from a (T, B, N) raster whose row 0 is ``first_step``: spikes
    at steps >= window_start; ISIs between consecutive spikes that both lie in the window; CV = std / mean
    (population std) where there are at least ``min_isi`` ISIs, else NaN."""
    t, b, n = spikes.shape
    steps = first_step + np.arange(t)
    in_window = steps >= window_start
    counts = spikes[in_window].sum(0)
    cv = np.full((b, n), np.nan)
    for r in range(b):
        for i in range(n):
            s = steps[in_window][spikes[in_window, r, i]]
            isi = np.diff(s).astype(float)
            if isi.size >= min_isi:
                cv[r, i] = isi.std() / isi.mean()
    window_s = (first_step + t - window_start) * DT * 1e-3
    return counts, counts / window_s, cv


def _tiny_run(transient_ms: float, duration_ms: float, raster_neurons: int, replicas: int = 2):
    built = build_network(compose_config([*TINY_OVERRIDES, "seed=21", f"simulation.replicas={replicas}"]))
    rec = FullRecord()
    result = simulate(
        built.network,
        duration_ms=duration_ms,
        transient_ms=transient_ms,
        generator=built.generator,
        raster_neurons=raster_neurons,
        raster_ms=duration_ms,
        progress=False,
        extra_monitors=[rec],
    )
    return built, result, rec.result()


def test_spike_stats_equal_a_direct_computation_from_the_full_raster():
    """Window start 100.7 ms = step 1007, inside a 15-step block: counts, rates, ISI CVs (all replicas), the raster
    of replica 0 and the per-step population counts all equal the direct computation; the transient's spikes (and
    ISIs straddling the window start) are excluded."""
    built, result, rec = _tiny_run(transient_ms=100.7, duration_ms=600.0, raster_neurons=1000)
    window_start = round(100.7 / DT)
    assert window_start % built.network.block_steps != 0
    for name, n in (("E", 200), ("I", 50)):
        first, spikes = rec[name]
        sp = spikes.numpy()
        assert first == 0 and sp.shape == (6000, 2, n)
        counts, rates, cv = _reference_stats(sp, first, window_start)
        st = result.spike_stats[name]
        np.testing.assert_array_equal(st["counts"].numpy(), counts)
        np.testing.assert_allclose(st["rates_hz"].numpy(), rates, rtol=1e-12)
        np.testing.assert_allclose(st["cv_isi"].numpy(), cv, rtol=1e-9, equal_nan=True)
        assert np.isfinite(cv).mean() > 0.9
        # the transient is excluded: it held spikes, and an all-time count would differ
        assert sp[:window_start].sum() > 0 and not np.array_equal(sp.sum(0), counts)
        # raster: replica 0, every neuron (raster_neurons > N), steps from the window start on
        steps, neurons = np.nonzero(sp[window_start:, 0, :])
        order = np.lexsort((neurons, steps))
        raster = result.raster[name]
        r_order = np.lexsort((raster["neuron"].numpy(), raster["step"].numpy()))
        np.testing.assert_array_equal(raster["step"].numpy()[r_order], steps[order] + window_start)
        np.testing.assert_array_equal(raster["neuron"].numpy()[r_order], neurons[order])
        # population rate monitor: the count of every step (transient included)
        np.testing.assert_array_equal(result.population_rate.counts[name].numpy(), sp.sum(-1))
        binned = result.population_rate.binned_rate_hz(name, 10.0).numpy()
        np.testing.assert_allclose(binned, sp.reshape(60, 100, 2, n).sum((1, 3)) / (n * 10e-3), rtol=1e-12)
        # the summary pools replicas
        s = result.summary()[name]
        assert s["rate_mean_hz"] == pytest.approx(rates.mean(), rel=1e-12)
        assert s["rate_std_hz"] == pytest.approx(rates.std(), rel=1e-12)
        assert s["rate_median_hz"] == pytest.approx(np.median(rates), rel=1e-12)
        assert s["cv_isi_mean"] == pytest.approx(np.nanmean(cv), rel=1e-9)
        assert s["n_neurons"] == n and s["replicas"] == 2
        assert s["fraction_silent"] == pytest.approx((counts == 0).mean())


def test_raster_subset_and_duration():
    """raster_neurons = 30, raster_ms = 100: only neurons 0..29 of replica 0, only the first 100 ms of the window."""
    built = build_network(compose_config([*TINY_OVERRIDES, "seed=22"]))
    rec = FullRecord()
    result = simulate(
        built.network,
        duration_ms=400.0,
        transient_ms=50.0,
        generator=built.generator,
        raster_neurons=30,
        raster_ms=100.0,
        progress=False,
        extra_monitors=[rec],
    )
    _, sp = rec.result()["E"]
    steps, neurons = np.nonzero(sp.numpy()[500:1500, 0, :30])
    got = result.raster["E"]
    assert sorted(zip(got["step"].tolist(), got["neuron"].tolist(), strict=True)) == sorted(
        zip((steps + 500).tolist(), neurons.tolist(), strict=True)
    )
    assert len(steps) > 20


def test_a_second_simulate_call_measures_its_own_window():
    """simulate() on a network already advanced: the window is [start + transient, start + duration)."""
    built = build_network(compose_config([*TINY_OVERRIDES, "seed=23"]))
    simulate(built.network, duration_ms=200.0, transient_ms=0.0, generator=built.generator, progress=False)
    start = built.network.step_count
    assert start == 2000
    rec = FullRecord()
    result = simulate(
        built.network,
        duration_ms=300.0,
        transient_ms=50.0,
        generator=built.generator,
        raster_neurons=200,
        raster_ms=300.0,
        progress=False,
        extra_monitors=[rec],
    )
    first, spikes = rec.result()["E"]
    assert first == start
    counts, rates, cv = _reference_stats(spikes.numpy(), first, start + 500)
    np.testing.assert_array_equal(result.spike_stats["E"]["counts"].numpy(), counts)
    np.testing.assert_allclose(result.spike_stats["E"]["rates_hz"].numpy(), rates, rtol=1e-12)
    np.testing.assert_allclose(result.spike_stats["E"]["cv_isi"].numpy(), cv, rtol=1e-9, equal_nan=True)
    assert result.raster["E"]["step"].min() >= start + 500
    # the rate monitor counts from this run's start
    np.testing.assert_array_equal(result.population_rate.counts["E"].numpy(), spikes.numpy().sum(-1))


def _isolated_sim(mu, sigma, n, v_init, seed, duration_ms=2200.0):
    pop = LIFPopulation("P", n, DT, **LIF)
    net = Network({"P": pop}, {"P": GaussianDrive(mu, sigma)}, {}, DT)
    gen = torch.Generator().manual_seed(seed)
    net.reset(1, gen)
    if v_init is not None:
        pop.reset_state(1, v_init_mv=v_init)
    return simulate(
        net, duration_ms=duration_ms, transient_ms=200.0, generator=gen, progress=False, voltage_every_ms=1.0
    )


def test_synchrony_is_one_for_identical_neurons():
    """Identical neurons, identical input (sigma = 0, mu = 25 mV: periodic firing) and identical start: V_bar(t) =
    V_i(t), so chi = 1 up to float64 rounding of the accumulated moments."""
    res = _isolated_sim(25.0, 0.0, 50, torch.tensor(12.0), seed=0, duration_ms=1200.0)
    chi = res.synchrony["P"]["chi"]
    assert chi.shape == (1,)
    assert float(chi[0]) == pytest.approx(1.0, abs=1e-6)
    assert res.synchrony["P"]["n_samples"] == 1000  # one sample per ms of the 1 s window


@pytest.mark.parametrize("n", [100, 400])
def test_synchrony_scales_as_one_over_sqrt_n_for_independent_neurons(n):
    """Independent neurons: E Var_t(V_bar) = mean Var_t(V_i) / N, so chi ~ 1 / sqrt(N). Sampling error: the time
    variances come from a 2 s window with V correlated over ~tau_m = 20 ms, i.e. ~50 independent samples, giving a
    relative SD of chi^2 of ~sqrt(2 / 50) = 0.2 and of chi ~0.1; accepted chi sqrt(N) in [0.7, 1.35] (>3 SD)."""
    res = _isolated_sim(18.0, 3.0, n, None, seed=n)
    chi = float(res.synchrony["P"]["chi"][0])
    assert 0.7 < chi * math.sqrt(n) < 1.35, chi * math.sqrt(n)
