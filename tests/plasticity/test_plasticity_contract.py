"""Contract every registered rule (a file in conf/plasticity/) must meet, in both engines:

1. its drift vanishes at its steady state and is decreasing there (a stable root), for rates across the range;
2. with both neurons replaced by Poisson spike trains at fixed rates, the simulated weights settle at
   f(nu_pre, nu_post) with the spread the trace noise predicts at that alpha.

Spread (linear noise theory): the trace estimate nu_hat has variance r_p nu / 2 (alpha / 2 in units of x) and
correlation time 1 / r_p (an Ornstein–Uhlenbeck process of rate a = r_p); the weight follows it through
dw/dt = g(w, ...), a low-pass of rate b = |dg/dw|, which passes the fraction b / (a + b) of an OU variance, so
Var[w] = sum_sides (df/dnu_side)^2 (r_p nu_side / 2) b / (r_p + b), f' from autograd through the steady state.
Its mean is f plus the curvature bias (1/2) sum f'' Var[nu_hat] (the mean passes the filter unchanged).
"""

from __future__ import annotations

import math

import pytest
import torch
from plasticity_helpers import registered_rules, simulate_poisson_pairs

RULES = registered_rules()
RATES_HZ = [0.5, 2.0, 5.0, 10.0, 25.0, 60.0]


def test_every_shipped_rule_has_a_config_file() -> None:
    assert {"saturating_pre", "homeostatic_pre", "separable_prepost", "covariance"} <= set(RULES)


@pytest.mark.parametrize("name", sorted(RULES))
def test_drift_vanishes_at_a_stable_steady_state(name: str) -> None:
    rule = RULES[name]
    pre, post = (
        torch.tensor(RATES_HZ, dtype=torch.float64)[:, None].expand(6, 6).reshape(-1),
        torch.tensor(RATES_HZ, dtype=torch.float64)[None, :].expand(6, 6).reshape(-1),
    )
    f = rule.steady_state(pre, post)
    assert torch.all(f >= rule.w_min_mv) and torch.all(f <= rule.w_max_mv)
    g = rule.drift(f, pre, post)
    scale = rule.drift(torch.zeros_like(f), pre, post).abs().max()
    assert g.abs().max() <= 1e-9 * scale, (name, g.abs().max())
    h = 1e-6
    slope = (rule.drift(f + h, pre, post) - rule.drift(f - h, pre, post)) / (2 * h)
    assert torch.all(slope < 0), name


def derivatives(rule, nu_pre: float, nu_post: float) -> tuple[float, float, float, float, float]:
    """f, df/dpre, df/dpost, d2f/dpre2, d2f/dpost2 (autograd through the steady state)."""
    x = torch.tensor([nu_pre, nu_post], dtype=torch.float64, requires_grad=True)
    f = rule.steady_state(x[:1], x[1:])
    (g,) = torch.autograd.grad(f.sum(), x, create_graph=True)
    second = [
        torch.autograd.grad(g[i], x, retain_graph=True)[0][i].item() if g[i].requires_grad else 0.0 for i in range(2)
    ]
    return float(f.detach()), float(g[0].detach()), float(g[1].detach()), second[0], second[1]


@pytest.mark.parametrize("name", sorted(RULES))
@pytest.mark.parametrize("alpha", [100.0, 10.0])
def test_poisson_neurons_settle_at_the_steady_state(name: str, alpha: float) -> None:
    rule = RULES[name]
    nu_pre, nu_post, n = 8.0, 6.0, 2000
    r_p = nu_pre / alpha
    w_slope = 1.0 / rule.tau_w_ms if hasattr(rule, "tau_w_ms") else None
    f, d_pre, d_post, dd_pre, dd_post = derivatives(rule, nu_pre, nu_post)
    if w_slope is None:  # general rule: |dg/dw| at the steady state
        w = torch.tensor([f], dtype=torch.float64)
        w_slope = float(
            -(
                rule.drift(w + 1e-7, torch.tensor([nu_pre]), torch.tensor([nu_post]))
                - rule.drift(w - 1e-7, torch.tensor([nu_pre]), torch.tensor([nu_post]))
            )
            / 2e-7
        )
    r_p_per_ms = r_p * 1e-3
    var_pre, var_post = r_p * nu_pre / 2, r_p * nu_post / 2
    filt = w_slope / (r_p_per_ms + w_slope)
    sd_theory = math.sqrt((d_pre**2 * var_pre + d_post**2 * var_post) * filt)
    mean_theory = f + 0.5 * (dd_pre * var_pre + dd_post * var_post)
    duration = 6e3 / r_p + 10 * rule.tau_w_ms if hasattr(rule, "tau_w_ms") else 6e3 / r_p
    w = simulate_poisson_pairs(rule, nu_pre, nu_post, r_p, n, duration, dt_ms=1.0, update_every_ms=5.0, seed=1)
    # n independent edges at one time: the mean is known to sd/sqrt(n); the std to sd/sqrt(2n). 5 standard errors
    # plus the linear-noise approximation's own error (third-order terms, ~1 / alpha relative to the spread) and
    # Bernoulli-vs-Poisson spiking at dt = 1 ms (nu dt <= 0.008)
    assert abs(float(w.mean()) - mean_theory) <= 5 * sd_theory / math.sqrt(n) + 0.02 * sd_theory, (
        name,
        float(w.mean()),
        mean_theory,
        sd_theory,
    )
    assert float(w.std()) == pytest.approx(sd_theory, rel=5 / math.sqrt(2 * n) + 0.1), (name, float(w.std()), sd_theory)
