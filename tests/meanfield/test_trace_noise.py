"""The finite-alpha weight law (torchsnn/meanfield/trace_noise.py) against the simulator's own trace and weight
code, Monte Carlo, closed forms, and its alpha -> infinity limit."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from torchsnn.config.theory_builder import plastic_block, trace_law_of
from torchsnn.errors import ConfigError
from torchsnn.estimators import RateEstimator
from torchsnn.meanfield.trace_noise import FactorLaw, TraceLaw, gamma_expect, gamma_rule
from torchsnn.plasticity import HomeostaticPreRule, SaturatingPreRule, SeparablePrePostRule

N_NEURONS = 20_000


def simulate(nu_hz: float, r_p_hz: float, rule, dt_ms: float = 0.5, every_ms: float = 5.0, burn_s: float = 3.0):
    """Independent Poisson neurons through the simulator's RateEstimator and the rule's own update, as the
    simulator calls them (traces every step, weights every ``every_ms`` from the current estimates); one snapshot
    of trace estimate and weight per neuron after ``burn_s`` (>= 6 tau_w and 9 / r_p: stationary)."""
    gen = torch.Generator().manual_seed(1234)
    est = RateEstimator(N_NEURONS, r_p_hz, dt_ms, nu_hz)
    est.reset_state(1)
    nu = torch.full((1, N_NEURONS), nu_hz, dtype=torch.float64)
    w = rule.steady_state(nu, torch.zeros_like(nu))
    m = round(every_ms / dt_ms)
    for _ in range(round(burn_s * 1e3 / every_ms)):
        est.update_block((torch.rand(m, 1, N_NEURONS, generator=gen) < nu_hz * dt_ms * 1e-3).float())
        nu_hat = est.rate_hz().double()
        w = rule.update(w, nu_hat, nu_hat, every_ms)
    return est.rate_hz().double().ravel(), w.ravel()


def pre_only_f(rule):
    return lambda nu: rule.steady_state(nu, torch.zeros_like(nu))


@pytest.mark.parametrize("nu_hz, r_p_hz", [(3.0, 3.0), (6.0, 2.0)])
def test_trace_and_weight_law_against_the_simulators_code(nu_hz: float, r_p_hz: float) -> None:
    rule = HomeostaticPreRule(0.2, 3.0, tau_w_ms=500.0)  # strongly convex: a large Jensen shift
    trace, w = simulate(nu_hz, r_p_hz, rule)
    n = trace.numel()
    # the trace: mean nu and variance nu r_p / 2 (the Gamma law's), within 4 standard errors (the variance's SE
    # from the sample's fourth moment: the trace is skewed and heavy-tailed at alpha ~ 1-3)
    dev = trace - trace.mean()
    var = float((dev**2).mean())
    se_var = math.sqrt(float((dev**4).mean() - var**2) / n)
    assert abs(float(trace.mean()) - nu_hz) < 4 * math.sqrt(var / n)
    assert abs(var - nu_hz * r_p_hz / 2) < 4 * se_var
    # the weight: mean E[f(nu_hat)] over the full trace law (the filter keeps means); spread of the filtered trace
    law = FactorLaw(pre_only_f(rule), TraceLaw(r_p_hz), 1e3 / rule.tau_w_ms, (rule.w_min_mv, rule.w_max_mv))
    nu = torch.tensor([nu_hz], dtype=torch.float64)
    f_nu = float(pre_only_f(rule)(nu))
    sim_mean, se = float(w.mean()), float(w.std()) / math.sqrt(n)
    shift = sim_mean - f_nu  # the Jensen shift of the simulation, > 20 SE here
    assert shift > 20 * se
    # the Gamma law is a two-moment model of the shot-noise trace: it recovers >= 85 % of the shift (measured
    # 93-96 %; the literal law of theory 8.3, E[f(y)], recovers about 20-35 % of it at these kappa)
    assert abs(float(law.mean(nu)) - sim_mean) < 0.15 * shift + 3 * se
    literal = float(law.filtered_mean(nu))
    assert abs(literal - sim_mean) > 2 * abs(float(law.mean(nu)) - sim_mean)
    # spread: the linear-noise (kappa-filtered) variance, measured within 4-11 % of the simulation here
    assert abs(float(law.moment("var", nu).sqrt()) / float(w.std()) - 1) < 0.15
    # the whole law: KS between simulated weights and the law's samples (measured 0.024-0.031; the law without
    # trace noise, a point mass at f(nu), has KS >= 0.5)
    samples = law.sample(nu.expand(n), np.random.default_rng(5)).numpy()
    assert stats.ks_2samp(w.numpy(), samples).statistic < 0.05


@pytest.mark.parametrize("shape", [0.01, 0.3, 2.0, 50.0, 1e6])
def test_gamma_rule_is_exact_for_the_laplace_transform(shape: float) -> None:
    # E[exp(-s X)] = (1 + s c)^(-a) for X ~ Gamma(a, c); smooth, so a 20-node Gauss rule is exact to rounding
    scale = 0.7
    mean = torch.tensor([shape * scale], dtype=torch.float64)
    for s in (0.1, 1.0):
        value = float(gamma_expect(lambda x, s=s: torch.exp(-s * x), mean, scale))
        assert value == pytest.approx((1 + s * scale) ** (-shape), rel=1e-11)
    x, w = gamma_rule(mean, scale)
    assert float(w.sum()) == pytest.approx(1.0, abs=1e-13)
    assert float((w * x).sum()) == pytest.approx(float(mean), rel=1e-11)
    assert float((w * x * x).sum() - (w * x).sum() ** 2) == pytest.approx(float(mean) * scale, rel=1e-9)


@pytest.mark.parametrize(
    "rule", [SaturatingPreRule(0.15, 5.0, 2000.0), HomeostaticPreRule(0.2, 3.0, 2000.0)], ids=["sat", "homeo"]
)
def test_weight_moments_against_monte_carlo(rule) -> None:
    rng = np.random.default_rng(7)
    f = pre_only_f(rule)
    trace = TraceLaw(1.5)
    law = FactorLaw(f, trace, 0.5, (rule.w_min_mv, rule.w_max_mv))
    c_full, c_w = trace.full_scale_hz, float(trace.filtered_scale_hz(0.5))
    for nu in (0.2, 2.0, 6.0, 25.0):
        full = f(torch.as_tensor(rng.gamma(nu / c_full, c_full, 1_000_000))).numpy()
        filt = f(torch.as_tensor(rng.gamma(nu / c_w, c_w, 1_000_000))).numpy()
        t = torch.tensor([nu], dtype=torch.float64)
        mean, var = full.mean(), filt.var()
        assert float(law.mean(t)) == pytest.approx(mean, abs=5 * full.std() / 1e3)
        second = mean**2 + var
        se2 = 5 * np.sqrt(np.var((filt - filt.mean()) ** 2) / filt.size) + 2 * mean * 5 * full.std() / 1e3
        assert float(law.second(t)) == pytest.approx(second, abs=se2)
        third = mean**3 + 3 * mean * var + ((filt - filt.mean()) ** 3).mean()
        assert float(law.third(t)) == pytest.approx(third, rel=0.02)


def test_tables_match_the_direct_rule_and_are_differentiable() -> None:
    rule = SaturatingPreRule(0.15, 5.0, 2000.0)
    f = pre_only_f(rule)
    law = FactorLaw(f, TraceLaw(1.07), 0.5)
    nu = torch.linspace(0.0, 80.0, 997, dtype=torch.float64) + 1e-3
    direct = gamma_expect(f, nu, 1.07 / 2, order=60)
    assert torch.allclose(law.mean(nu), direct, rtol=1e-5, atol=1e-9)
    x = torch.tensor([0.5, 3.0, 12.0], dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(law.second(x).sum(), x)
    h = 1e-4
    numeric = (law.second(x.detach() + h) - law.second(x.detach() - h)) / (2 * h)
    assert torch.allclose(grad, numeric, rtol=1e-4)


def test_alpha_to_infinity_gives_back_w_equal_f() -> None:
    rule = SaturatingPreRule(0.15, 5.0, 2000.0)
    nu = torch.linspace(0.05, 40.0, 101, dtype=torch.float64)
    base, info = plastic_block("E", "E", rule, 1.0, 40.0, 40.0, 1e-2)
    assert info["trace_noise"] == "off"
    limit, info_limit = plastic_block("E", "E", rule, 1.0, 40.0, 40.0, 1e-2, TraceLaw(1e-9))
    assert info_limit["trace_noise"] is True
    for a, b in zip(base.features(nu), limit.features(nu), strict=True):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-15)
    assert torch.allclose(base.jump_pre(nu), limit.jump_pre(nu), rtol=1e-9)
    # samples: the filtered Gamma has relative spread sqrt(kappa r_p / (2 nu)) ~ 1e-5 here
    assert torch.allclose(base.weight_mv(nu, nu), limit.weight_mv(nu, nu), rtol=1e-3)
    # separable rules: both factors
    sep = SeparablePrePostRule(0.4, 5.0, 5.0, 2000.0)
    base, _ = plastic_block("E", "E", sep, 1.0, 40.0, 40.0, 1e-2)
    limit, _ = plastic_block("E", "E", sep, 1.0, 40.0, 40.0, 1e-2, TraceLaw(1e-9))
    for fa, fb in zip(base.mu_post + base.sigma_post, limit.mu_post + limit.sigma_post, strict=True):
        assert torch.allclose(fa(nu), fb(nu), rtol=1e-9)
    assert torch.allclose(base.weight_mv(nu, nu.flip(0)), limit.weight_mv(nu, nu.flip(0)), rtol=1e-3)


def test_finite_alpha_separable_block_factorises() -> None:
    sep = SeparablePrePostRule(0.4, 5.0, 5.0, 2000.0)
    block, info = plastic_block("E", "E", sep, 1.0, 40.0, 40.0, 1e-2, TraceLaw(3.0))
    assert info["kind"] == "separable" and info["kappa"] == pytest.approx(0.5 / 3.5)
    nu = torch.tensor([1.0, 4.0, 9.0], dtype=torch.float64)
    pre, post = block.mu_pre[0](nu), block.mu_post[0](nu)
    # E[w] = E[f_pre(nu_hat_pre)] E[f_post(nu_hat_post)] (independent traces), each by the Gamma rule
    assert torch.allclose(pre, gamma_expect(sep.f_pre, nu, 1.5, 40), rtol=1e-5)
    assert torch.allclose(post, gamma_expect(sep.f_post, nu, 1.5, 40), rtol=1e-5)
    samples = block.weight_mv(torch.full((200_000,), 4.0), torch.full((200_000,), 2.0)).numpy()
    expected = float(block.mu_pre[0](nu[1:2]) * block.mu_post[0](torch.tensor([2.0])))
    assert samples.mean() == pytest.approx(expected, rel=3e-3)
    assert samples.min() >= 0 and samples.max() <= sep.w_max_mv


def test_switch_and_per_replica_r_p() -> None:
    assert trace_law_of({"plasticity": {"r_p_hz": 0.5}})[0] == TraceLaw(0.5)
    assert trace_law_of({"plasticity": {"r_p_hz": 0.5, "trace_noise": False}})[0] is None
    law, note = trace_law_of({"plasticity": {"r_p_hz": [0.5, 1.0]}})
    assert law is None and "replicas differ" in note
    assert trace_law_of({"plasticity": {"r_p_hz": [0.5, 0.5]}})[0] == TraceLaw(0.5)


def test_trace_noise_must_be_a_boolean() -> None:
    from torchsnn.config.validate import validate_plasticity

    network = {"projections": {"EE": {"pre": "E", "post": "E"}}}
    with pytest.raises(ConfigError, match=r"plasticity\.trace_noise"):
        validate_plasticity(
            {"projections": ["EE"], "rule": {"_target_": "x"}, "trace_noise": "yes", "r_p_hz": 1.0}, network, 0.1
        )


def test_separable_law_against_the_simulators_code() -> None:
    """Pre-and-post rule: each edge's weight driven by two independent traces (pre, post), updated as the simulator
    does; the law's E[w] = E[f_pre] E[f_post], its spread and its samples against the simulated weights."""
    rule = SeparablePrePostRule(0.4, 5.0, 5.0, tau_w_ms=500.0)
    nu_pre, nu_post, r_p, dt, every = 2.0, 2.0, 3.0, 0.5, 5.0
    gen = torch.Generator().manual_seed(99)
    est = RateEstimator(2 * N_NEURONS, r_p, dt)
    rates = torch.cat([torch.full((N_NEURONS,), nu_pre), torch.full((N_NEURONS,), nu_post)]).double()
    est.reset_state(1, rates)
    pre, post = rates[:N_NEURONS].view(1, -1), rates[N_NEURONS:].view(1, -1)
    w = rule.steady_state(pre, post)
    for _ in range(round(3.0e3 / every)):  # 6 tau_w, 9 / r_p
        est.update_block((torch.rand(round(every / dt), 1, 2 * N_NEURONS, generator=gen) < rates * dt * 1e-3).float())
        nu_hat = est.rate_hz().double()
        w = rule.update(w, nu_hat[:, :N_NEURONS], nu_hat[:, N_NEURONS:], every)
    w = w.ravel()
    block, _ = plastic_block("E", "E", rule, 1.0, 40.0, 40.0, 1e-2, TraceLaw(r_p))
    a, b = torch.tensor([nu_pre], dtype=torch.float64), torch.tensor([nu_post], dtype=torch.float64)
    mean = float(block.mu_pre[0](a) * block.mu_post[0](b))
    std = math.sqrt(float(block.sigma_pre[0](a) * block.sigma_post[0](b)) - mean**2)
    f = float(rule.steady_state(a, b))
    se = float(w.std()) / math.sqrt(w.numel())
    shift = float(w.mean()) - f  # concave pre and convex post factors: a net downward shift, ~30 SE
    assert abs(shift) > 20 * se
    assert abs(mean - float(w.mean())) < 0.25 * abs(shift) + 3 * se  # measured: 85 % of the shift recovered
    assert abs(std / float(w.std()) - 1) < 0.10  # measured 2.5 %
    samples = block.weight_mv(a.expand(N_NEURONS), b.expand(N_NEURONS)).numpy()
    assert stats.ks_2samp(w.numpy(), samples).statistic < 0.06  # measured 0.030 (w = f: 0.6)
