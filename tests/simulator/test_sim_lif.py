"""LIFPopulation against the analytic solution of theory.md §1: exact exponential relaxation below threshold,
the deterministic firing rate above it, reset and refractoriness (input arriving while refractory is lost), and
the (B, N) state layout."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sim_helpers import LIF, ProjSpec, block_from_pairs, hand_network, run_network

from torchsnn.network import Network
from torchsnn.populations import GaussianDrive, LIFPopulation, NoDrive


def _relaxation(v0: np.ndarray, mu: float, t_ms: np.ndarray, tau_ms: float) -> np.ndarray:
    """V(t) = mu + (V0 - mu) exp(-t / tau), float64, shape (T, N)."""
    return mu + (v0[None, :] - mu) * np.exp(-t_ms[:, None] / tau_ms)


# float32 error bound for the recursion V <- d V + c: the two roundings of a step add at most 1 ulp (2^-19 mV for
# |V| < 32 mV); with a 4x margin, 7.6e-6 mV per step, damped by d per step, the accumulated error stays below
# 7.6e-6 / (1 - d) = 1.5e-3 mV at dt = 0.1 ms (1.6e-4 mV at dt = 1 ms); typical errors are far smaller. The
# first-order Euler update instead of the exact decay would converge to mu (1 - d) / (dt / tau) ~ mu (1 - dt / (2 tau)),
# 0.04 mV off at dt = 0.1 ms, and e^{-t/tau} with a wrong tau fails at the first steps.
def _float32_bound(dt_ms: float, tau_ms: float) -> float:
    return 2 * 2.0**-19 * 2 / (1 - math.exp(-dt_ms / tau_ms))


@pytest.mark.parametrize("dt_ms", [0.1, 1.0])
def test_subthreshold_step_matches_exponential_relaxation(dt_ms):
    tau, mu = LIF["tau_m_ms"], 15.0
    v0 = np.array([-5.0, 0.0, 10.0, 14.0, 15.0, 17.5, 19.9])
    pop = LIFPopulation("E", v0.size, dt_ms, **LIF)
    pop.reset_state(2, v_init_mv=torch.tensor(v0))
    drive = mu * (1.0 - math.exp(-dt_ms / tau))  # constant input that holds the fixed point at mu
    n = round(200.0 / dt_ms)
    traj = np.empty((n, 2, v0.size))
    for k in range(n):
        spikes = pop.step(torch.full((2, v0.size), drive))
        assert not spikes.any()
        traj[k] = pop.v_mv.numpy()
    expected = _relaxation(v0, mu, dt_ms * np.arange(1, n + 1), tau)
    np.testing.assert_allclose(traj[:, 0], expected, rtol=0, atol=_float32_bound(dt_ms, tau))
    np.testing.assert_array_equal(traj[:, 0], traj[:, 1])  # replicas with the same start stay identical


def test_gaussian_drive_without_noise_gives_the_same_trajectory():
    """Through the Network (drive drawn per block, min-delay schedule without projections)."""
    dt, tau, mu = 0.1, LIF["tau_m_ms"], 18.0
    v0 = np.linspace(0.0, 19.5, 9)
    pop = LIFPopulation("E", v0.size, dt, **LIF)
    net = Network({"E": pop}, {"E": GaussianDrive(mu, 0.0)}, {}, dt)
    net.reset(1)
    pop.reset_state(1, v_init_mv=torch.tensor(v0))
    gen = torch.Generator().manual_seed(0)
    traj = []
    while net.step_count < 1000:
        out = net.run_block(gen, voltage_every_steps=1)
        assert not out.spikes["E"].any()
        traj += [v[0].numpy() for v in out.voltage_samples["E"]]
    expected = _relaxation(v0, mu, dt * np.arange(1, 1001), tau)
    np.testing.assert_allclose(np.array(traj), expected, rtol=0, atol=_float32_bound(dt, tau))


@pytest.mark.parametrize("mu", [20.5, 22.0, 25.0, 31.7, 60.0])
@pytest.mark.parametrize("dt_ms", [0.1, 0.25])
def test_deterministic_rate_above_threshold(mu, dt_ms):
    """Constant supra-threshold input: periodic firing with period T = tau_ref + tau_m ln((mu - V_r)/(mu - theta)).

    In discrete time the crossing is detected at the end of the step in which it happens, and the refractory time
    round(tau_ref / dt) dt is exact here, so every ISI lies in [T, T + dt) (up to float32 rounding, +-1e-3 ms:
    a voltage error of 1e-5 mV at a slope (mu - theta) / tau_m >= 0.025 mV/ms). The mean rate over many periods
    therefore lies between 1 / (T + dt) and 1 / T.
    """
    tau, theta, v_r, t_ref = LIF["tau_m_ms"], LIF["theta_mv"], LIF["v_reset_mv"], LIF["tau_ref_ms"]
    period = t_ref + tau * math.log((mu - v_r) / (mu - theta))
    pop = LIFPopulation("E", 1, dt_ms, **LIF)
    pop.reset_state(1, v_init_mv=torch.tensor([v_r]))
    c = mu * (1.0 - math.exp(-dt_ms / tau))
    n = round(30 * period / dt_ms)
    spikes = torch.stack([pop.step(torch.full((1, 1), c))[0, 0] for _ in range(n)]).numpy()
    times = dt_ms * (np.flatnonzero(spikes) + 1)  # end of the step
    assert times.size >= 25
    isi = np.diff(times)
    assert np.all(isi >= period - 1e-3) and np.all(isi < period + dt_ms + 1e-3), (isi.min(), isi.max(), period)
    # the first spike: free evolution from V_r without a preceding refractory period
    assert period - t_ref - 1e-3 <= times[0] < period - t_ref + dt_ms + 1e-3
    rate = (times.size - 1) / (times[-1] - times[0]) * 1e3
    assert 1e3 / (period + dt_ms) <= rate <= 1e3 / period


def test_refractory_period_is_exact_under_huge_input():
    """An input far above threshold every step: the neuron fires, is held round(tau_ref / dt) = 20 steps, and fires
    on the first step after that: period exactly tau_ref + dt; V is V_r during the refractory steps."""
    dt = 0.1
    pop = LIFPopulation("E", 3, dt, **LIF)
    pop.reset_state(1, v_init_mv=torch.zeros(3))
    n_ref = round(LIF["tau_ref_ms"] / dt)
    spikes, volts, left = [], [], []
    for _ in range(200):
        spikes.append(pop.step(torch.full((1, 3), 100.0))[0].clone())
        volts.append(pop.v_mv[0].clone())
        left.append(pop.refractory_left[0].clone())
    spikes, volts, left = torch.stack(spikes), torch.stack(volts), torch.stack(left)
    steps = torch.nonzero(spikes[:, 0]).flatten().numpy()
    np.testing.assert_array_equal(steps, np.arange(0, 200, n_ref + 1))
    assert torch.all(volts == LIF["v_reset_mv"])  # reset at the spike, held while refractory
    # the counter: n_ref right after a spike, counting down to 0 on the step before the next spike
    np.testing.assert_array_equal(left[: n_ref + 1, 0].numpy(), np.arange(n_ref, -1, -1))


def test_input_during_refractoriness_is_lost():
    """A synaptic spike (via the Network's delay line) arriving while the post neuron is refractory leaves V at V_r
    and has no effect afterwards; the same spike arriving after the refractory period moves V by w."""
    dt, w, delay = 0.1, 5.0, 1.0  # delay 10 steps
    n_ref = round(LIF["tau_ref_ms"] / dt)
    d = math.exp(-dt / LIF["tau_m_ms"])

    def run(pre_spike_step: int) -> torch.Tensor:
        # E (pre, 1 neuron) -> P (post, 2 neurons: 0 is targeted, 1 is a control without input)
        block = block_from_pairs("P", "E", 2, 1, [(0, 0)])
        net = hand_network(
            {"E": 1, "P": 2},
            [ProjSpec("PE", block, w, delay)],
            {"E": NoDrive(), "P": NoDrive()},
            dt,
            1,
            {"E": torch.zeros(1), "P": torch.tensor([100.0, 100.0])},  # P fires at step 0
        )
        v_post = []
        for t in range(60):
            if t == pre_spike_step:
                net.populations["E"].v_mv.fill_(1e3)
            out = net.run_block(None, 1, voltage_every_steps=1)
            v_post.append(out.voltage_samples["P"][0][0])
            assert out.spikes["P"].any().item() == (t == 0)
        return torch.stack(v_post)

    # the spike of step 3 arrives at step 13, while P is refractory (steps 1..20)
    v = run(3)
    assert torch.all(v[: n_ref + 1] == LIF["v_reset_mv"])
    free = LIF["v_reset_mv"] * d ** torch.arange(1, 60 - n_ref, dtype=torch.float64)
    np.testing.assert_allclose(v[n_ref + 1 :, 0].numpy(), free.numpy(), rtol=1e-6)
    np.testing.assert_array_equal(v[:, 0].numpy(), v[:, 1].numpy())  # identical to the neuron without input
    # control: the spike of step 25 arrives at step 35, after the refractory period, and adds w there
    v = run(25)
    assert v[35, 0] - v[35, 1] == pytest.approx(w, abs=1e-5)
    assert torch.all(v[:35, 0] == v[:35, 1])


def test_state_is_batched_buffers():
    pop = LIFPopulation("E", 5, 0.1, **LIF)
    gen = torch.Generator().manual_seed(3)
    pop.reset_state(3, gen)
    assert pop.v_mv.shape == (3, 5) and pop.v_mv.dtype == torch.float32
    assert pop.refractory_left.shape == (3, 5) and pop.refractory_left.dtype == torch.int32
    assert pop.batch == 3
    # random initial voltages uniform in [V_r, theta) by default, different per replica
    assert torch.all(pop.v_mv >= LIF["v_reset_mv"]) and torch.all(pop.v_mv < LIF["theta_mv"])
    assert not torch.equal(pop.v_mv[0], pop.v_mv[1])
    # given voltages: scalar, (N,) and (B, N) broadcast to (B, N)
    for v_init in (torch.tensor(12.5), torch.arange(5.0), torch.arange(15.0).view(3, 5)):
        pop.reset_state(3, v_init_mv=v_init)
        assert torch.equal(pop.v_mv, v_init.to(torch.float32).expand(3, 5))
        assert torch.all(pop.refractory_left == 0)
    spikes = pop.step(torch.zeros(3, 5))
    assert spikes.shape == (3, 5) and spikes.dtype == torch.bool
    # state_dict carries the state (so .to(device) and checkpoints see it)
    pop.reset_state(3, v_init_mv=torch.tensor([19.0, 0.0, 0.0, 0.0, 0.0]))
    pop.step(torch.full((3, 5), 2.0))
    sd = pop.state_dict()
    assert set(sd) >= {"v_mv", "refractory_left"}
    assert sd["v_mv"].shape == (3, 5) and sd["refractory_left"].shape == (3, 5)
    assert torch.all(sd["refractory_left"][:, 0] == round(LIF["tau_ref_ms"] / 0.1))
    other = LIFPopulation("E", 5, 0.1, **LIF)
    other.reset_state(3)
    other.load_state_dict(sd)
    assert torch.equal(other.v_mv, pop.v_mv) and torch.equal(other.refractory_left, pop.refractory_left)


def test_batched_replicas_evolve_independently_in_a_network():
    """Replica b of a (B, N) network is the same as a B = 1 network started from replica b's state."""
    dt = 0.1
    block = block_from_pairs("E", "E", 4, 4, [(0, 1), (1, 2), (2, 3), (3, 0), (0, 2)])
    v0 = torch.tensor([[19.9, 5.0, 12.0, 0.0], [0.0, 19.95, 3.0, 15.0]])
    specs = [ProjSpec("EE", block, 6.0, 0.5)]
    drives = {"E": GaussianDrive(22.0, 0.0)}
    both = run_network(hand_network({"E": 4}, specs, drives, dt, 2, {"E": v0}), 2000)["E"]
    assert both.sum() > 20
    for b in range(2):
        alone = run_network(hand_network({"E": 4}, specs, {"E": GaussianDrive(22.0, 0.0)}, dt, 1, {"E": v0[b]}), 2000)
        assert torch.equal(alone["E"][:, 0], both[:, b])
