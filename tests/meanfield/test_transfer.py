"""Tests of the Siegert transfer function against an independent adaptive-quadrature reference (scipy, cross-checked
with mpmath), its analytic derivatives, its limits and its behaviour on shapes, dtypes and extreme inputs."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import torch
from scipy import integrate, special

from torchsnn.meanfield.transfer import SIGMA_MIN_MV, deterministic_rate_hz, log_siegert_rate, siegert_rate_hz

BRUNEL = {"tau_m_ms": 20.0, "theta_mv": 20.0, "v_reset_mv": 10.0}
TAU_REFS_MS = (2.0, 0.0)
F64 = torch.float64
# torch registers its forward-AD decompositions with torch.jit.script on first use (jacfwd), which now warns
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
# (mu_mv, sigma_mv) across regimes: strongly sub-, sub-, near-, supra-threshold, tiny and large noise
REGIME_POINTS = [(-20.0, 2.0), (0.0, 5.0), (18.0, 3.0), (19.9, 0.4), (30.0, 2.0), (60.0, 0.3), (10.0, 25.0)]


# ----------------------------------------------------------------------------------------------- reference
def _h(u: float) -> float:
    """log erfcx(-u), from scipy's erfcx (u <= 0) or log_ndtr (u > 0)."""
    if u <= 0.0:
        return math.log(special.erfcx(-u))
    return u * u + math.log(2.0) + float(special.log_ndtr(math.sqrt(2.0) * u))


def _ref_log_integral(a: float, b: float) -> float:
    """log Integral_a^b erfcx(-u) du by scipy.integrate.quad of exp(h(u) - h(b)), split at 0."""
    h_top = _h(b)

    def integrand(u: float) -> float:
        return math.exp(_h(u) - h_top)

    total = 0.0
    if a < 0.0:
        hi = min(b, 0.0)
        pts = [p for p in (-1.0, -10.0, -100.0, -1000.0) if a < p < hi] or None
        total += integrate.quad(integrand, a, hi, points=pts, epsabs=0.0, epsrel=1e-13, limit=500)[0]
    if b > 0.0:
        lo = max(a, 0.0)
        scale = 1.0 / max(b, 1.0)  # the integrand decays like exp(-2 b (b - u)) below the top
        pts = [b - k * scale for k in (0.5, 1, 2, 4, 8, 16, 32, 64) if lo < b - k * scale < b] or None
        total += integrate.quad(integrand, lo, b, points=pts, epsabs=0.0, epsrel=1e-13, limit=500)[0]
    return h_top + math.log(total)


def _ref_log_rate(mu: float, sigma: float, tau_ref_ms: float) -> float:
    y_th = (BRUNEL["theta_mv"] - mu) / sigma
    y_r = (BRUNEL["v_reset_mv"] - mu) / sigma
    log_term = math.log(BRUNEL["tau_m_ms"] / 1000.0) + 0.5 * math.log(math.pi) + _ref_log_integral(y_r, y_th)
    log_ref = math.log(tau_ref_ms / 1000.0) if tau_ref_ms > 0 else -math.inf
    return -float(np.logaddexp(log_ref, log_term))


def _mp_log_rate(mu: float, sigma: float, tau_ref_ms: float) -> float:
    """The same quantity with mpmath at 30 digits (integrand e^{u^2} erfc(-u) directly, no log tricks)."""
    with mpmath.workdps(30):
        y_th = (mpmath.mpf(BRUNEL["theta_mv"]) - mu) / sigma
        y_r = (mpmath.mpf(BRUNEL["v_reset_mv"]) - mu) / sigma
        pts = [y_r] + [p for p in (-100, -10, -1, 0) if y_r < p < y_th]
        if y_th > 1:
            pts += [p for p in (y_th - 64 / y_th, y_th - 8 / y_th, y_th - 1 / y_th) if pts[-1] < p < y_th]
        integral = mpmath.quad(lambda u: mpmath.exp(u * u) * mpmath.erfc(-u), [*pts, y_th])
        tau_m_s = mpmath.mpf(BRUNEL["tau_m_ms"]) / 1000
        period = mpmath.mpf(tau_ref_ms) / 1000 + tau_m_s * mpmath.sqrt(mpmath.pi) * integral
        return float(-mpmath.log(period))


def _log_rate(mu, sigma, tau_ref_ms=2.0):
    return log_siegert_rate(mu, sigma, tau_ref_ms=tau_ref_ms, **BRUNEL)


def _rate(mu, sigma, tau_ref_ms=2.0):
    return siegert_rate_hz(mu, sigma, tau_ref_ms=tau_ref_ms, **BRUNEL)


# ----------------------------------------------------------------------------------------------- accuracy
@pytest.fixture(scope="module")
def grid():
    mus = np.linspace(-40.0, 60.0, 26)
    sigmas = np.geomspace(0.1, 30.0, 16)
    mu, sigma = np.meshgrid(mus, sigmas, indexing="ij")
    pairs = list(zip(mu.ravel(), sigma.ravel(), strict=True))
    refs = {t: np.array([_ref_log_rate(m, s, t) for m, s in pairs]) for t in TAU_REFS_MS}
    return mu, sigma, refs


def test_reference_agrees_with_mpmath():
    points = [(-40.0, 0.1), (0.0, 1.0), (15.0, 5.0), (20.0, 0.1), (60.0, 0.1), (10.0, 30.0)]
    for mu, sigma in points:
        assert _ref_log_rate(mu, sigma, 2.0) == pytest.approx(_mp_log_rate(mu, sigma, 2.0), rel=1e-15, abs=1e-9)


@pytest.mark.parametrize("tau_ref_ms", TAU_REFS_MS)
def test_log_rate_matches_reference_on_grid(grid, tau_ref_ms):
    mu, sigma, refs = grid
    got = _log_rate(torch.tensor(mu, dtype=F64), torch.tensor(sigma, dtype=F64), tau_ref_ms).numpy().ravel()
    ref = refs[tau_ref_ms]
    assert np.all(np.isfinite(got))
    assert ref.min() < -3e5 and ref.max() > math.log(150.0)  # the grid reaches underflow and supra-threshold
    err = np.abs(got - ref)
    assert err.max() <= 1e-8, f"max |log phi - ref| = {err.max():.2e} at mu, sigma = {mu.ravel()[err.argmax()]}, "
    rate = _rate(torch.tensor(mu, dtype=F64), torch.tensor(sigma, dtype=F64), tau_ref_ms).numpy().ravel()
    finite = ref > -700.0
    np.testing.assert_allclose(rate[finite], np.exp(ref[finite]), rtol=1e-8, atol=0.0)


def test_rate_matches_mpmath_directly():
    for mu, sigma in [(-40.0, 0.1), (15.0, 5.0), (20.0, 0.1), (60.0, 0.1)]:
        for tau_ref_ms in TAU_REFS_MS:
            got = _log_rate(torch.tensor(mu, dtype=F64), torch.tensor(sigma, dtype=F64), tau_ref_ms).item()
            assert got == pytest.approx(_mp_log_rate(mu, sigma, tau_ref_ms), rel=1e-15, abs=1e-8)


# ----------------------------------------------------------------------------------------------- gradients
def _regime_tensors():
    mu = torch.tensor([p[0] for p in REGIME_POINTS], dtype=F64, requires_grad=True)
    sigma = torch.tensor([p[1] for p in REGIME_POINTS], dtype=F64, requires_grad=True)
    return mu, sigma


@pytest.mark.parametrize("tau_ref_ms", TAU_REFS_MS)
def test_gradcheck(tau_ref_ms):
    mu, sigma = _regime_tensors()
    assert torch.autograd.gradcheck(lambda m, s: _log_rate(m, s, tau_ref_ms), (mu, sigma))
    assert torch.autograd.gradcheck(lambda m, s: _rate(m, s, tau_ref_ms), (mu, sigma))
    assert torch.autograd.gradgradcheck(lambda m, s: _log_rate(m, s, tau_ref_ms), (mu, sigma))


@pytest.mark.parametrize("mu_mv", [10.0, 20.0])  # y_r = 0 and y_th = 0 exactly: the branch point of log f
def test_second_derivative_at_branch_point(mu_mv):
    # autograd's d^2 log phi / dmu^2 against central differences of the (exact, first-order) gradient on both sides
    # of the branch point; on torch 2.14 a clamp-based log f gave a derivative of 0 exactly at u = 0
    def grad_mu(m: float) -> float:
        mu = torch.tensor(m, dtype=F64, requires_grad=True)
        return torch.autograd.grad(_log_rate(mu, torch.tensor(25.0, dtype=F64)), mu)[0].item()

    mu = torch.tensor(mu_mv, dtype=F64, requires_grad=True)
    (g,) = torch.autograd.grad(_log_rate(mu, torch.tensor(25.0, dtype=F64)), mu, create_graph=True)
    (gg,) = torch.autograd.grad(g, mu)
    step = 1e-4
    fd = (grad_mu(mu_mv + step) - grad_mu(mu_mv - step)) / (2 * step)
    assert gg.item() == pytest.approx(fd, rel=1e-5)


def test_gradient_matches_finite_differences_of_reference():
    mu, sigma = _regime_tensors()
    grad_mu, grad_sigma = torch.autograd.grad(_log_rate(mu, sigma).sum(), (mu, sigma))
    for i, (m, s) in enumerate(REGIME_POINTS):
        step = 1e-4 * s
        fd_mu = (_ref_log_rate(m + step, s, 2.0) - _ref_log_rate(m - step, s, 2.0)) / (2 * step)
        fd_sigma = (_ref_log_rate(m, s + step, 2.0) - _ref_log_rate(m, s - step, 2.0)) / (2 * step)
        assert grad_mu[i].item() == pytest.approx(fd_mu, rel=1e-6, abs=1e-9)
        assert grad_sigma[i].item() == pytest.approx(fd_sigma, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("fn", [_log_rate, _rate])
def test_functorch_transforms_agree_with_backward(fn):
    mu, sigma = _regime_tensors()
    grad_mu, grad_sigma = torch.autograd.grad(fn(mu, sigma).sum(), (mu, sigma))
    mu, sigma = mu.detach(), sigma.detach()
    for jac in (torch.func.jacrev, torch.func.jacfwd):  # forward mode sums the chain rule in another order
        j_mu, j_sigma = jac(fn, argnums=(0, 1))(mu, sigma)
        torch.testing.assert_close(j_mu, torch.diag(grad_mu), rtol=1e-9, atol=1e-300)
        torch.testing.assert_close(j_sigma, torch.diag(grad_sigma), rtol=1e-9, atol=1e-300)
    v_mu, v_sigma = torch.func.vmap(torch.func.grad(fn, argnums=(0, 1)))(mu, sigma)
    torch.testing.assert_close(v_mu, grad_mu, rtol=1e-12, atol=0.0)
    torch.testing.assert_close(v_sigma, grad_sigma, rtol=1e-12, atol=0.0)
    torch.testing.assert_close(torch.func.vmap(fn)(mu, sigma), fn(mu, sigma), rtol=0.0, atol=0.0)


# ----------------------------------------------------------------------------------------------- limits
@pytest.mark.parametrize("tau_ref_ms", TAU_REFS_MS)
def test_small_sigma_tends_to_deterministic_rate(tau_ref_ms):
    mu = torch.tensor([20.5, 21.0, 25.0, 30.0, 45.0, 60.0], dtype=F64)
    det = deterministic_rate_hz(mu, tau_ref_ms=tau_ref_ms, **BRUNEL)
    torch.testing.assert_close(_rate(mu, torch.full_like(mu, 0.01), tau_ref_ms), det, rtol=1e-3, atol=0.0)
    # sqrt(pi) I -> log(y_r / y_th) with O((sigma / (mu - theta))^2) corrections: the identity becomes exact
    errors = [((_rate(mu, torch.full_like(mu, s), tau_ref_ms) / det - 1).abs().max().item()) for s in (1e-2, 1e-3)]
    assert errors[1] < 0.02 * errors[0]
    torch.testing.assert_close(_rate(mu, torch.full_like(mu, 1e-5), tau_ref_ms), det, rtol=1e-9, atol=0.0)


def test_deterministic_rate_formula():
    mu = torch.tensor([-5.0, 20.0, 30.0], dtype=F64)
    expected = [0.0, 0.0, 1.0 / (0.002 + 0.020 * math.log(20.0 / 10.0))]
    torch.testing.assert_close(deterministic_rate_hz(mu, tau_ref_ms=2.0, **BRUNEL), torch.tensor(expected, dtype=F64))


def test_large_mu_saturates_at_inverse_refractory_period():
    mu = torch.tensor([1e2, 1e3, 1e4, 1e6], dtype=F64)
    rate = _rate(mu, torch.full_like(mu, 5.0), 2.0)
    assert torch.all(rate.diff() > 0) and torch.all(rate < 500.0)
    assert rate[-1].item() == pytest.approx(500.0, rel=1e-4)


def test_supra_threshold_asymptotics():
    # erfcx(x) ~ (1 - 1/(2 x^2)) / (x sqrt(pi)) gives sqrt(pi) I = log(y_r / y_th) - (1/y_th^2 - 1/y_r^2) / 4 + ...,
    # i.e. at tau_ref = 0 the deterministic period times 1 + correction, with relative error O(1/y^2) on it
    mu = torch.tensor([200.0, 1e3, 1e4], dtype=F64)
    sigma = 5.0
    y_th, y_r = (BRUNEL["theta_mv"] - mu) / sigma, (BRUNEL["v_reset_mv"] - mu) / sigma
    correction = -(1 / y_th**2 - 1 / y_r**2) / 4 / torch.log(y_r / y_th)
    ratio = deterministic_rate_hz(mu, tau_ref_ms=0.0, **BRUNEL) / _rate(mu, torch.full_like(mu, sigma), 0.0)
    torch.testing.assert_close(ratio - 1, correction, rtol=0.01, atol=0.0)


def test_rate_increases_with_mu(grid):
    mu, sigma, _ = grid
    log_rate = _log_rate(torch.tensor(mu, dtype=F64), torch.tensor(sigma, dtype=F64))
    assert torch.all(log_rate.diff(dim=0) > 0)


def test_nonpositive_sigma_is_clamped():
    mu = torch.tensor([30.0, 30.0, 30.0, 10.0], dtype=F64)
    sigma = torch.tensor([0.0, -1.0, SIGMA_MIN_MV, 0.0], dtype=F64)
    log_rate = _log_rate(mu, sigma)
    assert torch.all(torch.isfinite(log_rate)) and log_rate[0] == log_rate[1] == log_rate[2]
    torch.testing.assert_close(log_rate.exp(), deterministic_rate_hz(mu, tau_ref_ms=2.0, **BRUNEL), rtol=1e-9, atol=0.0)


# ------------------------------------------------------------------------------------ shapes, dtypes, extremes
def test_broadcasting_and_parameter_types():
    mu = torch.linspace(-10.0, 40.0, 3, dtype=F64).reshape(3, 1)
    sigma = torch.tensor([0.5, 2.0, 5.0, 20.0], dtype=F64)
    out = _rate(mu, sigma)
    assert out.shape == (3, 4) and out.dtype == F64
    for i in range(3):
        for j in range(4):
            assert out[i, j] == _rate(mu[i, 0], sigma[j])
    params = {k: torch.tensor(v, dtype=F64) for k, v in {**BRUNEL, "tau_ref_ms": 2.0}.items()}
    torch.testing.assert_close(siegert_rate_hz(mu, sigma, **params), out, rtol=0.0, atol=0.0)
    assert _rate(25.0, 3.0).shape == ()


def test_float32_in_float32_out():
    mu = torch.tensor([-30.0, 5.0, 19.5, 35.0], dtype=torch.float32)
    sigma = torch.tensor([1.0, 4.0, 2.5, 0.7], dtype=torch.float32)
    for fn in (_rate, _log_rate):
        out = fn(mu, sigma)
        assert out.dtype == torch.float32
        torch.testing.assert_close(out, fn(mu.double(), sigma.double()).float(), rtol=1e-6, atol=0.0)
    assert deterministic_rate_hz(mu, tau_ref_ms=2.0, **BRUNEL).dtype == torch.float32


def test_extreme_inputs_stay_finite():
    mu_values = [-1e3, -40.0, 10.0, 20.0, 60.0, 1e3]
    sigma_values = [1e-6, 1e-3, 1.0, 1e3]
    mu = torch.tensor([m for m in mu_values for _ in sigma_values], dtype=F64, requires_grad=True)
    sigma = torch.tensor([s for _ in mu_values for s in sigma_values], dtype=F64, requires_grad=True)
    for tau_ref_ms in TAU_REFS_MS:
        log_rate = _log_rate(mu, sigma, tau_ref_ms)
        rate = _rate(mu, sigma, tau_ref_ms)
        assert torch.all(torch.isfinite(log_rate)) and torch.all(rate >= 0)
        if tau_ref_ms > 0:
            assert torch.all(rate <= 1000.0 / tau_ref_ms)
        for out in (log_rate, rate):
            grads = torch.autograd.grad(out.sum(), (mu, sigma))
            assert all(torch.all(torch.isfinite(g)) for g in grads)
    assert _log_rate(-1e3, 1e-6).item() < -1e17  # e^{-y_th^2} with y_th ~ 1e9: finite in log space


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    mu, sigma = _regime_tensors()
    mu_c = mu.detach().cuda().requires_grad_(True)
    sigma_c = sigma.detach().cuda().requires_grad_(True)
    out, out_c = _log_rate(mu, sigma), _log_rate(mu_c, sigma_c)
    torch.testing.assert_close(out_c.cpu(), out.detach(), rtol=1e-12, atol=1e-12)
    grads = torch.autograd.grad(out.sum(), (mu, sigma))
    grads_c = torch.autograd.grad(out_c.sum(), (mu_c, sigma_c))
    for g, g_c in zip(grads, grads_c, strict=True):
        torch.testing.assert_close(g_c.cpu(), g, rtol=1e-10, atol=0.0)
