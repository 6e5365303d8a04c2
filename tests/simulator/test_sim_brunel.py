"""Full-size Brunel (2000) model A (conf/network/brunel.yaml with the default Poisson drive, eta = 2, g = 5):
N_E = 10,000, N_I = 2,500, C_E = 1,000, C_I = 250, J = 0.1 mV, D = 1.5 ms, dt = 0.1 ms.

Reference: the diffusion-approximation self-consistent rate 37.95 Hz (shared/performance.md; NEST measured
37.8 Hz and Brian2 36.6 Hz on the same model). Tolerance 1.5 % (the bar is 5 %): the theory neglects the finite-size and
finite-C corrections and the weak fast oscillation of this state, and the rate of one 1 s window of one network
fluctuates by much less (12,500 neurons x 38 spikes).

ISI CV: this network is not in the Poisson-like irregular regime. Its inputs are strongly supra-threshold on
average (mu_ext = 40 mV, recurrent inhibition brings mu to about 23 mV) and it shows weak global oscillations at
~130-140 Hz (synchrony chi = 0.23 here); neurons fire fairly regularly. The mean ISI CV was measured 0.40 in
torchsnn and 0.40 in Brian2 for this network. Accepted band 0.3-0.6: well away from 1 (Poisson) and from ~0.1
(clock-like firing), which would mean a different dynamical state.

Measured by this test (seed 1234, CPU): E 37.84 Hz, CV 0.403; I 37.86 Hz, CV 0.405; about 22 s on one core.
"""

from __future__ import annotations

import pytest
import torch
from sim_helpers import compose_config

from torchsnn.config import build_network
from torchsnn.simulation import simulate

REFERENCE_RATE_HZ = 37.95


def _brunel(device: str):
    built = build_network(compose_config(["+experiment=brunel_ai", f"simulation.device={device}"]))
    result = simulate(
        built.network,
        duration_ms=1200.0,
        transient_ms=200.0,
        generator=built.generator,
        progress=False,
        voltage_every_ms=1.0,
    )
    return built, result.summary()


def _check(summary) -> None:
    for name, n in (("E", 10000), ("I", 2500)):
        s = summary[name]
        assert s["n_neurons"] == n
        # the bar is 5 %; measured -0.3 to -0.6 %, so 1.5 % still fails on a one-step refractory error
        assert s["rate_mean_hz"] == pytest.approx(REFERENCE_RATE_HZ, rel=0.015), (name, s)
        assert 0.3 < s["cv_isi_mean"] < 0.6, (name, s)
        assert s["fraction_silent"] < 0.01


@pytest.mark.slow
def test_brunel_model_a_rate_and_irregularity():
    built, summary = _brunel("cpu")
    assert built.network.block_steps == 15
    assert built.network.projections["EE"].n_edges == 10000 * 1000
    _check(summary)


@pytest.mark.slow
@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_brunel_model_a_on_cuda():
    _, summary = _brunel("cuda")
    _check(summary)
