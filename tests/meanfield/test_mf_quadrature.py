"""Quadrature rules (torchsnn.meanfield.quadrature) against analytic moments: Gauss-Hermite for N(0, 1) and the
tensor-product 2-D rule, and the discrete Gauss rule on the heavy-tailed degree laws of torchsnn.scaffold."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from mf_helpers import one_torch_thread  # noqa: F401  (autouse fixture)
from scipy import special

from torchsnn.meanfield.quadrature import discrete_gauss_rule, gauss_hermite_2d, gauss_hermite_normal
from torchsnn.scaffold import BinomialDegree, GammaDegree, LognormalDegree, NegativeBinomialDegree


def normal_moment(j: int) -> float:
    """E[xi^j] for xi ~ N(0, 1): (j - 1)!! for even j, 0 for odd j."""
    return 0.0 if j % 2 else float(special.factorial2(j - 1, exact=True)) if j > 0 else 1.0


# ----------------------------------------------------------------------------------------------- Gauss-Hermite
@pytest.mark.parametrize("order", [1, 2, 5, 10, 20])
def test_gauss_hermite_exact_below_degree_2n(order):
    x, w = gauss_hermite_normal(order)
    assert x.shape == w.shape == (order,)
    assert np.all(w > 0)
    assert w.sum() == pytest.approx(1.0, abs=1e-15)
    for j in range(2 * order):
        # even moments grow like (j-1)!!, so compare relative to E|xi|^j (the sum of |terms|); rounding ~1e-14
        scale = math.sqrt(2.0**j / math.pi) * math.gamma((j + 1) / 2)  # E|xi|^j
        assert np.dot(w, x**j) == pytest.approx(normal_moment(j), abs=1e-13 * scale), j


@pytest.mark.parametrize("order", [1, 3, 6, 12])
def test_gauss_hermite_degree_2n_error_is_n_factorial(order):
    # x^{2n} = He_n(x)^2 + (degree < 2n) and He_n vanishes at the nodes, so the rule misses E[He_n^2] = n! exactly:
    # this makes the exactness degree sharp (the rule is an n-point rule, not a larger one)
    x, w = gauss_hermite_normal(order)
    expected = normal_moment(2 * order) - math.factorial(order)
    assert np.dot(w, x ** (2 * order)) == pytest.approx(expected, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("a", [0.3, 1.0, 2.0])
def test_gauss_hermite_exponential_moment(a):
    # E[e^{a xi}] = e^{a^2 / 2}. The n-point error is a^{2n} e^{~a^2/2} / (2n)! * n! (derivative bound); for
    # n = 24, a = 2 that is ~1e-22 relative: the rule reproduces it to rounding (1e-14)
    x, w = gauss_hermite_normal(24)
    assert np.dot(w, np.exp(a * x)) == pytest.approx(math.exp(a * a / 2), rel=1e-14)
    # and it is a genuine approximation at low order: 2 nodes miss it by a visible amount (a = 2: 0.7 %)
    x2, w2 = gauss_hermite_normal(2)
    err2 = abs(np.dot(w2, np.exp(a * x2)) / math.exp(a * a / 2) - 1)
    assert err2 > 1e-4 * a**4


def test_gauss_hermite_2d_moments_and_axes():
    n_mu, n_sigma = 3, 5
    nodes, weights = gauss_hermite_2d(n_mu, n_sigma)
    nodes, weights = nodes.numpy(), weights.numpy()
    assert nodes.shape == (n_mu * n_sigma, 2) and weights.shape == (n_mu * n_sigma,)
    assert weights.sum() == pytest.approx(1.0, abs=1e-15)
    for i in range(2 * n_mu):
        for j in range(2 * n_sigma):
            got = np.dot(weights, nodes[:, 0] ** i * nodes[:, 1] ** j)
            scale = max(normal_moment(i + (i % 2)) * normal_moment(j + (j % 2)), 1.0)
            assert got == pytest.approx(normal_moment(i) * normal_moment(j), abs=1e-13 * scale), (i, j)
    # axis 0 carries the order_mu rule: its degree 2 n_mu is off by n_mu!, axis 1 is still exact there
    assert np.dot(weights, nodes[:, 0] ** 6) == pytest.approx(15.0 - 6.0, rel=1e-12)
    assert np.dot(weights, nodes[:, 1] ** 6) == pytest.approx(15.0, rel=1e-12)


# ----------------------------------------------------------------------------------------------- discrete rule
LAWS = {
    "negbin(400, 0.5)": NegativeBinomialDegree(400, 0.5),
    "gamma(400, 0.4)": GammaDegree(400, 0.4),
    "lognormal(200, 0.5)": LognormalDegree(200, 0.5),
}


@pytest.fixture(scope="module", params=list(LAWS), ids=list(LAWS))
def law_support(request):
    k, p = LAWS[request.param].support()
    assert k.size > 500  # a genuinely large support: the rules below are not the trivial "return as is"
    return request.param, k.astype(np.float64), p


@pytest.mark.parametrize("order", [1, 2, 4, 8, 16, 24])
def test_discrete_rule_reproduces_moments_up_to_degree_2n_minus_1(law_support, order):
    name, k, p = law_support
    x, w = discrete_gauss_rule(k, p, order)
    assert x.shape == w.shape == (order,)
    assert np.all(w > 0) and w.sum() == pytest.approx(1.0, abs=1e-14)
    assert k.min() <= x.min() and x.max() <= k.max()  # Gauss nodes lie in the convex hull of the support
    for j in range(2 * order):
        exact = np.dot(p, k**j)  # positive terms: float64 sum accurate to ~1e-15 relative
        # measured <= 3e-14 up to n = 24 (Lanczos in standardised variables); 1e-11 leaves room for rounding
        assert np.dot(w, x**j) == pytest.approx(exact, rel=1e-11), (name, order, j)


@pytest.mark.parametrize("order", [2, 4, 8])
def test_discrete_rule_misses_degree_2n(law_support, order):
    # Q[(k - c)^{2n}] = E[(k - c)^{2n}] - E[pi_n^2] < exact (pi_n the monic orthogonal polynomial): the rule has
    # exactly n nodes' worth of exactness. The gap is measured 3.6e-4 .. 0.6 relative for these laws at n <= 8.
    _, k, p = law_support
    x, w = discrete_gauss_rule(k, p, order)
    c = np.dot(p, k)
    exact = np.dot(p, (k - c) ** (2 * order))
    assert np.dot(w, (x - c) ** (2 * order)) < exact * (1 - 1e-5)


SMOOTH = {
    "sqrt": np.sqrt,
    "exp(-k/300)": lambda k: np.exp(-k / 300.0),
    "1/(1+k)": lambda k: 1.0 / (1.0 + k),
}
# relative error allowed at order 24 per function: measured (sqrt, exp, 1/(1+k)) = 1.3e-7, 2e-16, 1.9e-4 (negbin);
# 1.2e-9, 2e-16, 1.6e-6 (gamma); 1.2e-7, 1e-15, 3.6e-5 (lognormal); bounds are >= 5x the worst measured
SMOOTH_TOL_24 = {"sqrt": 1e-6, "exp(-k/300)": 1e-13, "1/(1+k)": 1e-3}


@pytest.mark.parametrize("fname", list(SMOOTH))
def test_discrete_rule_converges_on_smooth_functions(law_support, fname):
    name, k, p = law_support
    f = SMOOTH[fname]
    exact = np.dot(p, f(k))
    errors = []
    for order in (2, 4, 8, 16, 24):
        x, w = discrete_gauss_rule(k, p, order)
        errors.append(abs(np.dot(w, f(x)) - exact) / abs(exact))
    # these functions have derivatives of alternating sign (completely monotone / Bernstein): the Gauss error has
    # one sign and decreases with n; allow for the rounding floor (1e-14) once converged
    for lo, hi in itertools.pairwise(errors):
        assert hi <= max(lo, 1e-14), (name, fname, errors)
    assert errors[-1] < SMOOTH_TOL_24[fname], (name, fname, errors)
    assert errors[-1] < errors[0] or errors[0] < 1e-14


@pytest.mark.parametrize("order", [5, 6, 12])
def test_small_support_is_returned_exactly(order):
    law = BinomialDegree(1.5, 5)  # support {0, ..., 5}: 6 points
    k, p = law.support()
    assert k.size == 6
    x, w = discrete_gauss_rule(k, p, order)
    if order >= 6:
        np.testing.assert_array_equal(x, k.astype(np.float64))
        np.testing.assert_allclose(w, p, rtol=1e-15)
    else:  # 5 < 6 support points: a genuine 5-point rule, exact to degree 9 >= 5 (so every moment of the law)
        assert x.size == 5
        for j in range(10):
            assert np.dot(w, x**j) == pytest.approx(np.dot(p, k.astype(float) ** j), rel=1e-12)


def test_zero_probability_points_are_dropped_and_rest_renormalised():
    values = np.array([0.0, 1.0, 2.0, 3.0, 7.0])
    probs = np.array([0.2, 0.0, 0.3, 0.0, 0.1])  # unnormalised, with holes
    x, w = discrete_gauss_rule(values, probs, 4)
    np.testing.assert_array_equal(x, [0.0, 2.0, 7.0])
    np.testing.assert_allclose(w, [1 / 3, 1 / 2, 1 / 6], rtol=1e-15)
