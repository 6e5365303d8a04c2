"""Rules one by one: closed forms against the base class, exact updates against fine integration, bounds, signs,
separable factors, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from plasticity_helpers import one_to_one_block, registered_rules, simulate_poisson_pairs

from torchsnn.errors import ConfigError
from torchsnn.plasticity import (
    CovarianceRule,
    HomeostaticPreRule,
    PlasticityRule,
    SaturatingPreRule,
    SeparablePrePostRule,
)
from torchsnn.projection import Projection

RULES = registered_rules()
GRID = torch.tensor([0.0, 0.3, 1.0, 3.0, 7.0, 15.0, 40.0, 120.0], dtype=torch.float64)
PRE, POST = GRID[:, None].expand(8, 8).reshape(-1), GRID[None, :].expand(8, 8).reshape(-1)


@pytest.mark.parametrize("name", sorted(RULES))
def test_closed_form_steady_state_equals_the_stable_root_of_the_drift(name: str) -> None:
    rule = RULES[name]
    closed = rule.steady_state(PRE, POST)
    generic = PlasticityRule.steady_state(rule, PRE, POST)  # the base class's root finder on the same drift
    np.testing.assert_allclose(generic.numpy(), closed.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", sorted(RULES))
def test_exact_relaxation_update_equals_fine_integration(name: str) -> None:
    rule = RULES[name]
    w0 = rule.clip(torch.linspace(0.0, 0.3, PRE.numel(), dtype=torch.float64))  # start inside the bounds
    exact = rule.update(w0, PRE, POST, 700.0)
    fine = PlasticityRule.update(rule, w0, PRE, POST, 700.0)  # midpoint substeps of max_step_ms = 1 ms
    # midpoint error per unit time ~ (h / tau_w)^2 / 6 relative: (1 / 2000)^2 -> 1e-7 of the change
    np.testing.assert_allclose(fine.numpy(), exact.numpy(), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", sorted(RULES))
def test_weights_stay_within_bounds(name: str) -> None:
    rule = RULES[name]
    w = torch.full_like(PRE, 10.0)
    assert torch.all(rule.update(w, PRE, POST, 5.0) <= rule.w_max_mv)
    assert torch.all(rule.update(torch.zeros_like(PRE), PRE, POST, 5.0) >= rule.w_min_mv)


def test_closed_forms() -> None:
    nu = torch.tensor([0.0, 5.0, 15.0], dtype=torch.float64)
    zero = torch.zeros_like(nu)
    assert SaturatingPreRule(0.2, 5.0).steady_state(nu, zero).tolist() == pytest.approx([0.0, 0.1, 0.15])
    assert HomeostaticPreRule(0.3, 5.0).steady_state(nu, zero).tolist() == pytest.approx(
        [0.3, 0.3 * math.exp(-1), 0.3 * math.exp(-3)]
    )
    rule = SeparablePrePostRule(0.4, 5.0, 10.0)
    f_pre, f_post = rule.factors()
    np.testing.assert_allclose((f_pre(nu) * f_post(nu + 1)).numpy(), rule.steady_state(nu, nu + 1).numpy())
    assert float(rule.steady_state(torch.tensor([5.0]), torch.tensor([10.0]))) == pytest.approx(0.4 * 0.5 * 0.5)
    cov = CovarianceRule(0.05, 0.3, 4.0, 4.0, 4.0)
    assert float(cov.steady_state(torch.tensor([4.0]), torch.tensor([100.0]))) == pytest.approx(0.175)
    assert cov.factors() is None and not cov.pre_only


@pytest.mark.parametrize("name", ["saturating_pre", "homeostatic_pre"])
def test_per_row_and_per_edge_layouts_give_identical_weights(name: str) -> None:
    """A pre-only rule gives every edge of a presynaptic row the same history: keeping one weight per row (the
    fast layout) must equal keeping one per edge, spike for spike."""
    rule = RULES[name]
    per_row = simulate_poisson_pairs(rule, 8.0, 6.0, 1.0, 50, 3000.0, seed=3, per_row=True)
    per_edge = simulate_poisson_pairs(rule, 8.0, 6.0, 1.0, 50, 3000.0, seed=3, per_row=False)
    assert torch.equal(per_row, per_edge)
    assert float(per_row.std()) > 0  # the weights did move with the noisy estimates


def test_inhibitory_plastic_projection_keeps_its_sign() -> None:
    rule = HomeostaticPreRule(0.5, 5.0, tau_w_ms=100.0)
    proj = Projection("EI", one_to_one_block(10), 0.5, -1.0, 1.0, 0.1, rule)
    proj.reset_weights(2)
    proj.apply_plasticity(torch.full((2, 10), 3.0), torch.full((2, 10), 3.0), 1000.0)
    assert torch.all(proj.edge_weights_mv() < 0)
    expected = 0.5 * math.exp(-3 / 5)
    assert float(proj.edge_weights_mv().abs().mean()) == pytest.approx(
        expected + (0.5 - expected) * math.exp(-10), rel=1e-5
    )


@pytest.mark.parametrize(
    "make, field",
    [
        (lambda: SaturatingPreRule(-0.1, 5.0), "w_max_mv"),
        (lambda: SaturatingPreRule(0.2, 0.0), "nu_half_hz"),
        (lambda: HomeostaticPreRule(0.2, 5.0, tau_w_ms=0.0), "tau_w_ms"),
        (lambda: SeparablePrePostRule(0.2, 5.0, -1.0), "nu_post_ref_hz"),
        (lambda: CovarianceRule(0.3, 0.2, 4.0, 4.0, 4.0), "w_max_mv"),
        (lambda: CovarianceRule(0.0, 0.2, 4.0, 4.0, float("nan")), "scale_hz"),
    ],
)
def test_bad_parameters_name_the_field(make, field: str) -> None:
    with pytest.raises(ConfigError) as err:
        make()
    assert err.value.field == field
