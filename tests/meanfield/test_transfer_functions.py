"""The pluggable transfer functions (transfers.py, markov.py, siegert_numba.py) against references: the torch
Siegert implementation, autograd, and an independent single-neuron simulation (lif_reference.py) at 6 operating
points from 0.6 to 45 Hz with the jump sizes of the hetero_static network (theory §8.1)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from lif_reference import simulated_rate_hz
from mf_helpers import one_torch_thread  # noqa: F401 (autouse fixture)

from torchsnn.meanfield.markov import markov_rate_hz
from torchsnn.meanfield.siegert_numba import siegert_rate_hz_fast
from torchsnn.meanfield.transfer import siegert_rate_hz
from torchsnn.meanfield.transfers import first_order_transfers, make_transfer

LIF = {"tau_m_ms": 20.0, "theta_mv": 20.0, "v_reset_mv": 10.0, "tau_ref_ms": 2.0}
DT_MS = 0.1
# external E rate (Hz per source) of an E neuron of hetero_static: 1000 ext E sources of 0.1 mV, 1000 ext I of
# -0.1 mV at 26.6 Hz, 400 recurrent E at 5 Hz (0.1 mV), 100 recurrent I at 16 Hz (-0.4 mV)
OPERATING_POINTS = (36.6, 37.2, 37.8, 39.3, 40.8, 43.5)  # 0.6, 1.5, 3.3, 11.5, 23, 45 Hz


def sources(nu_ext_hz: float) -> list[tuple[float, float]]:
    return [(1000 * nu_ext_hz, 0.1), (1000 * 26.6, -0.1), (400 * 5.0, 0.1), (100 * 16.0, -0.4)]


def transfer_rate_hz(kind: str, src: list[tuple[float, float]]) -> float:
    tau_s = LIF["tau_m_ms"] * 1e-3
    mu = tau_s * sum(lam * j for lam, j in src)
    sigma = math.sqrt(tau_s * sum(lam * j * j for lam, j in src))
    lam = sum(lam for lam, _ in src)
    s3 = tau_s * sum(lam * j**3 for lam, j in src)
    t = make_transfer(kind, LIF, DT_MS)
    args = [torch.tensor([v], dtype=torch.float64) for v in (mu, sigma, lam, s3)]
    with torch.no_grad():
        return float(t(*args))


def test_compiled_siegert_equals_torch_siegert():
    g = torch.Generator().manual_seed(0)
    mu = -40 + 100 * torch.rand(50_000, dtype=torch.float64, generator=g)
    sigma = 0.05 + 30 * torch.rand(50_000, dtype=torch.float64, generator=g)
    with torch.no_grad():
        ref = siegert_rate_hz(mu, sigma, **LIF)
        fast = siegert_rate_hz_fast(mu, sigma, **LIF)
    ok = ref > 1e-300
    assert ok.sum() > 40_000
    assert float(((fast - ref).abs() / ref)[ok].max()) < 1e-12  # same scheme, rounding only (measured 1.1e-13)


@pytest.mark.parametrize("kind", ["siegert", "finite_jump"])
def test_first_order_path_has_the_exact_gradient(kind):
    """Inside first_order_transfers the compiled kernel serves traced evaluations: same values and the same first
    derivatives (w.r.t. mu, sigma, and through the threshold shift) as the torch implementation."""
    t = make_transfer(kind, LIF, DT_MS)
    mu = torch.linspace(8.0, 24.0, 17, dtype=torch.float64)
    sigma = torch.linspace(1.0, 6.0, 17, dtype=torch.float64)
    lam = torch.full_like(mu, 6e4)
    s3 = torch.full_like(mu, -1.8)
    grads = []
    for first_order in (False, True):
        m, s = mu.clone().requires_grad_(True), sigma.clone().requires_grad_(True)
        if first_order:
            with first_order_transfers():
                nu = t(m, s, lam, s3)
        else:
            nu = t(m, s, lam, s3)
        nu.sum().backward()
        grads.append((nu.detach(), m.grad, s.grad))
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-9, atol=1e-12)


def test_finite_jump_shift_matches_the_formula():
    """delta = rho sqrt(E[X^2]) + (s3 - 3 s1 s2 / Lambda) / (6 s2) written out by hand for two sources."""
    t = make_transfer("finite_jump", LIF, DT_MS)
    src = [(3e4, 0.2), (1e4, -0.5)]
    lam = sum(r for r, _ in src)
    s1, s2, s3 = (sum(r * j**n for r, j in src) for n in (1, 2, 3))
    ex2 = s2 * DT_MS * 1e-3 / (1 - math.exp(-lam * DT_MS * 1e-3))
    c, ej2, ej3 = s1 / lam, s2 / lam, s3 / lam
    expected = 0.5826 * math.sqrt(ex2) + (ej3 - 3 * c * ej2) / (6 * ej2)
    tau = 0.02
    got = t.threshold_shift_mv(
        torch.tensor(tau * s1), torch.tensor(math.sqrt(tau * s2)), torch.tensor(lam), torch.tensor(tau * s3)
    )
    assert float(got) == pytest.approx(expected, rel=2e-4)  # rho quoted to 4 digits


@pytest.mark.slow
@pytest.mark.parametrize("nu_ext_hz", OPERATING_POINTS)
def test_transfer_functions_against_single_neuron_simulation(nu_ext_hz):
    """500 neurons, about 8000 spikes (20 s at most) per point, fixed seed. Tolerances: the Markov chain (exact
    up to the extrapolated lattice error) within 1 % + 3 standard errors; finite_jump within 2 % + 3 SE above
    1 Hz and 5 % + 3 SE below (theory §8.1: about 2 %, 4 % at 0.5 Hz); Siegert between 0 and 25 % above the
    simulation (the diffusion approximation's known bias for these jumps, 5-19 %)."""
    src = sources(nu_ext_hz)
    exact = markov_rate_hz(src, dt_ms=DT_MS, **LIF)
    duration = min(20.0, max(0.5, 8000 / (500 * exact)))
    sim, se = simulated_rate_hz(src, dt_ms=DT_MS, h_mv=0.1, n=500, duration_s=duration, seed=7, **LIF)
    assert se / sim < 0.015
    assert abs(exact - sim) <= 0.01 * sim + 3 * se, (exact, sim, se)
    fj = transfer_rate_hz("finite_jump", src)
    tol = 0.02 if sim > 1.0 else 0.05
    assert abs(fj - sim) <= tol * sim + 3 * se, (fj, sim, se)
    phi = transfer_rate_hz("siegert", src)
    assert sim - 3 * se < phi < 1.25 * sim, (phi, sim)


def test_markov_chain_is_exact_for_a_deterministic_drift_limit():
    """With one source of tiny jumps at a high rate (mu = 30 mV, sigma -> small), the rate approaches the
    deterministic LIF rate 1 / (tau_ref + tau_m log((mu - V_r) / (mu - theta))) (grid: within 2 %)."""
    src = [(1.5e6, 0.001)]  # mu = 30 mV, sigma = 0.17 mV
    rate = markov_rate_hz(src, dt_ms=DT_MS, max_step_mv=0.004, extrapolate=False, **LIF)
    det = 1.0 / (2e-3 + 20e-3 * np.log((30.0 - 10.0) / (30.0 - 20.0)))
    assert rate == pytest.approx(det, rel=0.02)


def test_config_validation_knows_every_transfer_function():
    """The light-weight config check (no meanfield import) lists exactly the transfer functions the theory has."""
    from torchsnn.config.validate import TRANSFER_KINDS
    from torchsnn.meanfield.transfers import DEFAULT_TRANSFER, TRANSFERS

    assert TRANSFER_KINDS == TRANSFERS
    assert DEFAULT_TRANSFER in TRANSFERS
