"""Renewal input statistics (meanfield/regularity.py): the variance factor F against free membranes driven by gamma
renewal trains, the closed-form ISI transform f^(1/tau_m) and the ISI CV against an independent single-neuron
simulation (numpy, white noise) at 3 operating points, and the Poisson limit (F = 1: the Poisson theory exactly)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from mf_helpers import compose_plain, one_torch_thread  # noqa: F401 (autouse fixture)
from scipy import special
from scipy.signal import lfilter

from torchsnn.errors import ConfigError
from torchsnn.meanfield import regularity
from torchsnn.meanfield.regularity import (
    cv_isi,
    gamma_laplace,
    isi_laplace_at_tau_m,
    poisson_laplace,
    renewal_variance_factor,
)
from torchsnn.meanfield.transfers import RHO_OVERSHOOT

TAU, THETA, V_R, REF = 20.0, 20.0, 10.0, 2.0
f64 = torch.float64


def test_poisson_trains_give_factor_one_exactly():
    """Exponential ISIs (and gamma ISIs with CV = 1): F = 1 at every rate, to rounding."""
    nu = torch.logspace(-3, 3, 61, dtype=f64)
    torch.testing.assert_close(gamma_laplace(nu, 1.0, TAU), poisson_laplace(nu, TAU), rtol=1e-14, atol=0)
    torch.testing.assert_close(renewal_variance_factor(nu, poisson_laplace(nu, TAU), TAU), torch.ones_like(nu))


def test_closed_form_transform_is_the_parabolic_cylinder_solution():
    """Without dead time f^(p) = e^{(y_r^2 - y_th^2)/2} D_{-p tau}(-sqrt2 y_r) / D_{-p tau}(-sqrt2 y_th), here at
    p tau = 1 by scipy's D_v (an independent evaluation of the backward equation's bounded solution)."""
    mu = torch.tensor([5.0, 12.0, 18.0, 20.0, 26.0], dtype=f64)
    sigma = torch.tensor([3.0, 5.0, 2.0, 6.0, 1.5], dtype=f64)
    got = isi_laplace_at_tau_m(mu, sigma, THETA, V_R, 0.0, TAU).numpy()
    y_th, y_r = ((THETA - mu) / sigma).numpy(), ((V_R - mu) / sigma).numpy()
    d = lambda z: special.pbdv(-1.0, z)[0]  # noqa: E731
    ref = np.exp((y_r**2 - y_th**2) / 2) * d(-math.sqrt(2) * y_r) / d(-math.sqrt(2) * y_th)
    np.testing.assert_allclose(got, ref, rtol=1e-10)


def gamma_filtered_factor(nu_hz: float, cv: float, n_trains: int, duration_s: float, seed: int) -> float:
    """Var V of a free membrane (dt 0.1 ms, exact decay) driven by n_trains independent stationary gamma trains,
    over the same for Poisson trains at the same total rate (lambda dt / (1 - d^2))."""
    rng = np.random.default_rng(seed)
    dt, shape = 0.1, 1.0 / cv**2
    counts = np.zeros(int(duration_s * 1e4))
    for _ in range(n_trains):
        t = np.cumsum(rng.gamma(shape, 1.0 / (shape * nu_hz), int(nu_hz * (duration_s + 20) * 1.3 + 100))) - 20.0
        t = t[(t >= 0) & (t < duration_s)]  # 20 s burn-in: the train is stationary from t = 0
        np.add.at(counts, (t * 1e4).astype(np.int64), 1)
    d = math.exp(-dt / TAU)
    v = lfilter([1.0], [1.0, -d], counts)[10_000:]
    return float(v.var() / (n_trains * nu_hz * dt * 1e-3 / (1 - d * d)))


@pytest.mark.parametrize(("nu_hz", "cv"), [(10.0, 0.5), (5.0, 0.7), (20.0, 0.4), (10.0, 1.5)])
def test_variance_factor_against_filtered_gamma_trains(nu_hz, cv):
    """50 trains, 400 s: Var V has about T / (2 tau_m) = 1e4 independent samples, a relative standard error near
    1.4 % (measured within 2 % of the formula); tolerance 5 %, far below the effects tested (F = 0.48-1.58)."""
    nu = torch.tensor(nu_hz, dtype=f64)
    expected = float(renewal_variance_factor(nu, gamma_laplace(nu, cv, TAU), TAU))
    assert abs(expected - 1.0) > 0.14
    assert gamma_filtered_factor(nu_hz, cv, 50, 400.0, seed=1) == pytest.approx(expected, rel=0.05)


def white_noise_isis(mu: float, sigma: float, n: int, duration_s: float, dt: float, seed: int) -> np.ndarray:
    """ISIs (ms) of n LIF neurons under white noise, exact OU steps (drive.GaussianDrive's scheme), numpy."""
    rng = np.random.default_rng(seed)
    d = math.exp(-dt / TAU)
    scale, offset = sigma * math.sqrt((1 - d * d) / 2), mu * (1 - d)
    v, hold, last = rng.uniform(V_R, THETA, n), np.zeros(n, np.int64), np.full(n, -1.0)
    n_ref, out = round(REF / dt), []
    for step in range(int(duration_s * 1e3 / dt)):
        free = hold == 0
        v = np.where(free, v * d + offset + scale * rng.standard_normal(n), V_R)
        hold = np.where(free, 0, hold - 1)
        idx = np.nonzero(free & (v >= THETA))[0]
        if idx.size:
            seen = last[idx] >= 0
            out.append(step * dt - last[idx][seen])
            last[idx], v[idx], hold[idx] = step * dt, V_R, n_ref
    return np.concatenate(out)


@pytest.mark.slow
@pytest.mark.parametrize(("mu", "sigma"), [(15.0, 6.0), (18.0, 4.0), (24.0, 3.0)])  # 12, 16, 39 Hz
def test_transform_and_cv_against_single_neuron_simulation(mu, sigma):
    """400 neurons for 2 s at dt = 0.05 ms (10^4 ISIs and more). The theory takes the time grid's threshold
    shift rho sigma sqrt(dt / tau_m) (theory §8.1, Gaussian input). Tolerances: f^ within 0.003 + 3 standard
    errors (without the shift it is off by 0.005-0.007; measured with it: within 0.001); CV within 3 %
    (measured within 0.9 %; its standard error is about 0.7 %)."""
    dt = 0.05
    isi = white_noise_isis(mu, sigma, 400, 2.0, dt, seed=5)
    assert isi.size > 8000
    theta = THETA + RHO_OVERSHOOT * sigma * math.sqrt(dt / TAU)
    m, s = torch.tensor(mu, dtype=f64), torch.tensor(sigma, dtype=f64)
    laplace = float(isi_laplace_at_tau_m(m, s, theta, V_R, REF, TAU))
    e = np.exp(-isi / TAU)
    assert abs(e.mean() - laplace) <= 0.003 + 3 * e.std() / math.sqrt(e.size), (e.mean(), laplace)
    cv_sim = isi.std() / isi.mean()
    assert cv_isi(mu, sigma, theta, V_R, REF, TAU) == pytest.approx(cv_sim, rel=0.03)


def small_network(*extra: str) -> dict:
    return compose_plain(
        "+experiment=hetero_static",
        "network.populations.E.size=2000",
        "network.populations.I.size=500",
        "meanfield.degrees=laws",
        "meanfield.degree_order=4",
        *extra,
    )


@pytest.mark.parametrize("kind", ["renewal", "renewal_adiabatic"])
def test_poisson_limit_gives_back_the_poisson_theory(monkeypatch, kind):
    """With every output train's F forced to the Poisson value (F from f^ = nu / (nu + 1/tau_m), i.e. CV -> 1),
    the renewal model's map F(x) is the Poisson model's, to rounding (renewal_adiabatic: its extra moment per
    block, E*[w^2 nu (F - 1)], is then 0 and the other entries equal); with the LIF's own F it differs."""
    from torchsnn.config.theory_builder import model_from_config

    poisson = model_from_config(small_network())
    renewal = model_from_config(small_network(f"meanfield.input_statistics={kind}"))
    x_p = poisson.moments_at_rates({"E": 5.0, "I": 15.0})
    x_r = renewal.moments_at_rates({"E": 5.0, "I": 15.0})
    keep = torch.cat(
        [
            torch.arange(sl.start, sl.start + (p.stop - p.start))
            for sl, p in zip(renewal.block_slices, poisson.block_slices, strict=True)
        ]
    )
    torch.testing.assert_close(x_r[keep], x_p)
    with torch.no_grad():
        f_poisson, f_renewal = poisson.F(x_p), renewal.F(x_r)
        extra = torch.ones_like(f_renewal, dtype=torch.bool)
        extra[keep] = False
        changed = torch.cat([(f_renewal[keep] - f_poisson) / renewal.scales()[keep], f_renewal[extra]])
        assert float(changed.abs().max()) > 1e-3
        monkeypatch.setattr(
            regularity.RenewalTransfer,
            "variance_factor",
            lambda self, nu, mu, sigma, *a: renewal_variance_factor(nu, poisson_laplace(nu, self.tau_m_ms), TAU),
        )
        f_limit = renewal.F(x_r)
        torch.testing.assert_close(f_limit[keep], f_poisson, rtol=1e-12, atol=1e-15)
        assert float(f_limit[extra].abs().max()) < 1e-14 if extra.any() else True  # F - 1 = 0 to rounding


def test_adiabatic_rule_is_the_second_order_expansion():
    """phi + (1/2) phi_mumu v (autograd's second derivative) for small slow variances v = D / 2 of either sign,
    exactly phi at D = 0, and positive for a strongly sub-threshold neuron where phi + (1/2) phi_mumu v < 0."""
    from torchsnn.meanfield.transfers import make_transfer

    lif = {"tau_m_ms": TAU, "theta_mv": THETA, "v_reset_mv": V_R, "tau_ref_ms": REF}
    t = regularity.RenewalTransfer(make_transfer("siegert", lif, 0.1), adiabatic=True)
    mu = torch.tensor([12.0, 15.0, 19.0], dtype=f64, requires_grad=True)
    sigma = torch.tensor([4.0, 3.0, 5.0], dtype=f64)
    phi = t.base.rate_hz(mu, sigma)
    (g,) = torch.autograd.grad(phi.sum(), mu, create_graph=True)
    (g2,) = torch.autograd.grad(g.sum(), mu)
    with torch.no_grad():
        assert torch.equal(t.adiabatic_rate_hz(mu, sigma, torch.zeros(3, dtype=f64)), t.base.rate_hz(mu, sigma))
        for d in (-0.02, 0.02):
            got = t.adiabatic_rate_hz(mu, sigma, torch.full((3,), d, dtype=f64)) - phi
            torch.testing.assert_close(got, 0.5 * g2 * d / 2, rtol=2e-3, atol=0)
        low = (torch.tensor([12.0], dtype=f64), torch.tensor([3.0], dtype=f64), torch.tensor([-2.0], dtype=f64))
        assert 0.0 < float(t.adiabatic_rate_hz(*low)) < float(t.base.rate_hz(*low[:2]))


def test_renewal_model_solves_and_lowers_the_rates():
    """The renewal closure solves by the same Newton solver; regular trains (CV < 1) lower the input variance,
    so in this fluctuation-driven network both populations' predicted rates come out lower."""
    from torchsnn.config.theory_builder import solve_from_config

    rates = {}
    for kind in ("poisson", "renewal"):
        model, result = solve_from_config(small_network(f"meanfield.input_statistics={kind}"))
        assert result.converged
        rates[kind] = model.mean_rates_hz(result.x)
    for name in ("E", "I"):
        assert rates["renewal"][name] < 0.99 * rates["poisson"][name], rates


def test_bad_input_statistics_is_refused_with_the_field():
    from torchsnn.config.validate import validate_run_config

    with pytest.raises(ConfigError, match=r"meanfield\.input_statistics"):
        validate_run_config(small_network("meanfield.input_statistics=gamma"))
    from torchsnn.config.validate import INPUT_STATISTICS

    assert INPUT_STATISTICS == regularity.INPUT_STATISTICS


@pytest.mark.parametrize("kind", ["renewal", "renewal_adiabatic"])
def test_solver_jacobian_of_renewal_models_is_autograds(kind):
    """The chain rule of jacobian.py covers Poisson inputs only (F of the pre points, the deficit moment and the
    adiabatic rate are not in it): the solver must take autograd for renewal models. Its dG/dz equals
    I - diag(1/s) dF/dx diag(s) from one reverse pass per row (rel 1e-8; both exact, they differ by rounding),
    and that autograd matches central differences of F (so the hooks are differentiable as written); the chain
    rule refuses these models."""
    from torchsnn.config.theory_builder import model_from_config
    from torchsnn.meanfield.jacobian import chain_rule_applies, value_and_jacobian
    from torchsnn.meanfield.solver import FixedPointProblem

    model = model_from_config(small_network(f"meanfield.input_statistics={kind}"))
    assert not chain_rule_applies(model)
    scale = model.scales()
    problem = FixedPointProblem(model, scale)
    assert not problem.analytic
    x0 = model.moments_at_rates({"E": 4.0, "I": 4.0})
    with torch.no_grad():
        x = model.project(0.5 * x0 + 0.5 * model.F(x0))  # off the fixed point, non-zero covariances
    _, jac = problem.residual_and_jacobian(x / scale)
    xv = x.clone().requires_grad_(True)
    with torch.enable_grad():
        f = model.F(xv)
        rows = [torch.autograd.grad(f[r], xv, retain_graph=True)[0] for r in range(f.numel())]
    d_f = torch.stack(rows)
    expected = torch.eye(f.numel(), dtype=f64) - d_f * scale[None, :] / scale[:, None]
    assert float((jac - expected).abs().max()) <= 1e-8 * float(expected.abs().max())
    scaled = d_f * scale[None, :] / scale[:, None]
    # central differences, step 1e-6 of each unknown's scale (1e-4 can cross the clamp of a rank-one covariance's
    # Cholesky factor): measured error <= 2e-9 against a largest entry ~3-5; a missing hook errs by O(F - 1) ~ 0.1
    with torch.no_grad():
        for col in range(x.numel()):
            h = 1e-6 * float(scale[col])
            e = torch.zeros_like(x)
            e[col] = h
            fd = (model.F(x + e) - model.F(x - e)) / (2 * h) * scale[col] / scale
            assert float((fd - scaled[:, col]).abs().max()) <= 1e-6 * float(scaled.abs().max()), col
    with pytest.raises(ValueError, match="Poisson inputs"):
        value_and_jacobian(model, x)


@pytest.mark.parametrize("kind", ["renewal", "renewal_adiabatic"])
def test_counting_noise_comparison_runs_on_renewal_models(kind):
    """The compare mode's counting-noise model (analysis/counts.py) evaluates the theory's neurons through a
    capturing wrapper of the transfer function; with renewal input statistics it must give the model's own rates
    (the wrapper changes nothing) and a LIF ISI CV per neuron (from the transfer inside the renewal wrapper)."""
    from torchsnn.analysis.counts import theory_rates_and_cv
    from torchsnn.config.theory_builder import model_from_config
    from torchsnn.meanfield.solver import solve

    model = model_from_config(small_network(f"meanfield.input_statistics={kind}"))
    x = solve(model).x
    nu, cv = theory_rates_and_cv(model, x, "E", 2000, np.random.default_rng(0))
    assert cv is not None and cv.shape == nu.shape
    assert np.all(np.isfinite(nu)) and np.all(nu >= 0)
    assert np.all((cv > 0) & (cv <= 1.0 + 1e-9))  # LIF under white noise: CV <= 1
    mean_field = model.mean_rates_hz(x)["E"]
    assert nu.mean() == pytest.approx(mean_field, rel=0.05)  # 2000 Monte Carlo neurons of a wide distribution
