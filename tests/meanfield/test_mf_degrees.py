"""Degree nodes (torchsnn.meanfield.degrees): parametric nodes from the degree laws against exact sums over the
laws' supports, the rho* reweighting against E[L | K] from the copula, against the analytic E*[K] and against
Monte Carlo; empirical nodes of a realised scaffold against sums over its neurons (theory.md §2, §5.4, §5.6)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from mf_helpers import one_torch_thread  # noqa: F401  (autouse fixture)

from torchsnn.meanfield.degrees import nodes_from_laws, nodes_from_scaffold
from torchsnn.scaffold import (
    ConfigurationModel,
    GammaDegree,
    SparseScaffold,
    conditional_out_mean,
    sample_correlated_degrees,
)

N_E, N_I = 10_000, 2_500
ORDER = 16  # conf/meanfield/default.yaml


def e_laws(r: float):
    """Laws of the blocks around population E of a hetero-like network: inputs E<-E (square, correlation r) and
    E<-I, outputs E<-E and I<-E. Degree laws of ConfigurationModel(rule).degree_laws(n_pre, n_post, square)."""
    ee = ConfigurationModel(GammaDegree(400, 0.4), r=r).degree_laws(N_E, N_E, True)
    ei = ConfigurationModel(GammaDegree(100, 0.3)).degree_laws(N_I, N_E, False)
    ie = ConfigurationModel(GammaDegree(400, 0.4)).degree_laws(N_E, N_I, False)
    return ee, ei, ie


@pytest.fixture(scope="module", params=[-0.5, 0.0, 0.5], ids=lambda r: f"r={r}")
def e_nodes(request):
    r = request.param
    ee, ei, ie = e_laws(r)
    nodes = nodes_from_laws("E", {"E": ee, "I": ei}, {"E": ee, "I": ie}, ORDER)
    return r, (ee, ei, ie), nodes


# ----------------------------------------------------------------------------------------------- rho_K
def test_node_probabilities_and_means(e_nodes):
    _, (ee, ei, _), nodes = e_nodes
    assert nodes.inputs == ["E", "I"]
    assert nodes.k.shape == (ORDER * ORDER, 2)  # tensor product of two 16-point rules
    assert np.all(nodes.prob > 0)
    assert nodes.prob.sum() == pytest.approx(1.0, abs=1e-14)
    for col, law in enumerate((ee.in_degree, ei.in_degree)):
        k, p = law.support()
        k = k.astype(np.float64)
        # E[K]: degree 1, exact for the Gauss rule (rounding only)
        assert np.dot(nodes.prob, nodes.k[:, col]) == pytest.approx(np.dot(p, k), rel=1e-13)
        assert nodes.mean_k[col] == pytest.approx(law.mean, rel=1e-12)
        # E[sqrt K]: not a polynomial; the 16-point rule error is measured <= 1e-7 for these gamma laws
        assert np.dot(nodes.prob, np.sqrt(nodes.k[:, col])) == pytest.approx(np.dot(p, np.sqrt(k)), rel=1e-6)
    # the two in-degrees are drawn independently: the product rule factorises E[sqrt(K_E) sqrt(K_I)]
    ke, pe = ee.in_degree.support()
    ki, pi = ei.in_degree.support()
    expected = np.dot(pe, np.sqrt(ke)) * np.dot(pi, np.sqrt(ki))
    assert np.dot(nodes.prob, np.sqrt(nodes.k[:, 0] * nodes.k[:, 1])) == pytest.approx(expected, rel=2e-6)


# ----------------------------------------------------------------------------------------------- rho*_K
G_FUNCTIONS = {
    "k": lambda k: k,
    "sqrt": np.sqrt,
    "k^2": lambda k: k * k,
    "exp(-k/300)": lambda k: np.exp(-k / 300.0),
}


def exact_star_expectation(laws, g) -> float:
    """E*[g(K)] = sum_k g(k) E[L | K = k] rho(k) / E[L] on the integer support (theory §2)."""
    k, p = laws.in_degree.support()
    if laws.copula_rho in (None, 0.0):
        cond = np.full(k.shape, float(laws.out_degree.mean))
    else:
        cond = conditional_out_mean(laws.in_degree, laws.out_degree, laws.copula_rho, k)
    return float(np.sum(g(k.astype(np.float64)) * cond * p) / laws.out_degree.mean)


@pytest.mark.parametrize("gname", list(G_FUNCTIONS))
def test_star_prob_matches_conditional_out_mean(e_nodes, gname):
    r, (ee, _, _), nodes = e_nodes
    g = G_FUNCTIONS[gname]
    star = nodes.star_prob("E")
    assert star.sum() == pytest.approx(1.0, abs=1e-13)
    assert np.all(star > 0)
    # the 16 nodes see E[L | K] only at non-integer points (interpolated) and integrate g(k) E[L | K = k], which is
    # not a polynomial; measured <= 5e-7 relative for these g at r = +-0.5; 2e-6 leaves a margin of 4
    assert np.dot(star, g(nodes.k[:, 0])) == pytest.approx(exact_star_expectation(ee, g), rel=2e-6)
    if r == 0.0:
        np.testing.assert_array_equal(star, nodes.prob)


def test_star_in_degree_mean_is_analytic(e_nodes):
    # E*[K] = E[K L] / E[L] = E[K] + r sd(K) sd(L) / E[L], with r the Pearson correlation the copula was calibrated
    # to (brentq to 1e-12) and the exact variances of the rounded laws
    r, (ee, _, _), nodes = e_nodes
    expected = ee.in_degree.mean + r * math.sqrt(ee.in_degree.variance * ee.out_degree.variance) / ee.out_degree.mean
    got = np.dot(nodes.star_prob("E"), nodes.k[:, 0])
    assert got == pytest.approx(expected, rel=1e-6)
    mean = np.dot(nodes.prob, nodes.k[:, 0])
    if r > 0:
        assert got > mean + 10  # 400 -> 432 for r = 0.5
    elif r < 0:
        assert got < mean - 10  # 400 -> 368 for r = -0.5
    else:
        assert got == mean


@pytest.mark.parametrize("r", [-0.5, 0.5])
def test_star_in_degree_mean_by_monte_carlo(r):
    # independent of conditional_out_mean: draw (K, L) pairs through the copula and weight by L (an edge picks its
    # presynaptic neuron with probability proportional to L); delta-method standard error of sum K L / sum L
    ee, ei, ie = e_laws(r)
    nodes = nodes_from_laws("E", {"E": ee, "I": ei}, {"E": ee, "I": ie}, ORDER)
    rng = np.random.default_rng(2024)
    k, ell = sample_correlated_degrees(ee.in_degree, ee.out_degree, ee.copula_rho, 1_000_000, rng)
    k, ell = k.astype(np.float64), ell.astype(np.float64)
    est = np.dot(k, ell) / ell.sum()
    se = math.sqrt(np.mean((ell * (k - est)) ** 2) / k.size) / ell.mean()  # ~0.17, i.e. 4e-4 relative
    assert abs(np.dot(nodes.star_prob("E"), nodes.k[:, 0]) - est) < 5 * se


def test_star_leaves_other_inputs_and_non_square_blocks_alone(e_nodes):
    r, (_, ei, _), nodes = e_nodes
    # only the square block E<-E carries a copula: receiver I (block I<-E) has factor 1
    np.testing.assert_array_equal(nodes.star_prob("I"), nodes.prob)
    assert set(nodes.star) == ({"E"} if r != 0.0 else set())
    # K^{EI} is independent of L^{EE}: its law under rho* of block E<-E is rho
    k, p = ei.in_degree.support()
    assert np.dot(nodes.star_prob("E"), np.sqrt(nodes.k[:, 1])) == pytest.approx(np.dot(p, np.sqrt(k)), rel=1e-6)


def test_scaled_nodes_interpolate_towards_homogeneous(e_nodes):
    _, _, nodes = e_nodes
    flat = nodes.scaled(0.0)
    np.testing.assert_allclose(flat.k, np.broadcast_to(nodes.mean_k, nodes.k.shape), rtol=1e-15)
    assert all(np.all(g == 1.0) for g in flat.star.values())
    same = nodes.scaled(1.0)
    np.testing.assert_allclose(same.k, nodes.k, rtol=1e-15)
    for c in nodes.star:
        np.testing.assert_allclose(same.star[c], nodes.star[c], rtol=1e-15)


# ----------------------------------------------------------------------------------------------- realised scaffold
N_SC_E, N_SC_I = 2_000, 500


@pytest.fixture(scope="module")
def scaffold():
    rules = {
        ("E", "E"): ConfigurationModel(GammaDegree(100, 0.5), r=0.5),
        ("E", "I"): ConfigurationModel(GammaDegree(25, 0.3)),
        ("I", "E"): ConfigurationModel(GammaDegree(100, 0.5)),
        ("I", "I"): ConfigurationModel(GammaDegree(25, 0.3), r=-0.3),
    }
    return SparseScaffold.build({"E": N_SC_E, "I": N_SC_I}, rules, np.random.default_rng(5))


def realised(sc: SparseScaffold, name: str):
    k = {pre: d.numpy().astype(np.float64) for pre, d in sc.in_degrees(name).items()}
    ell = {post: d.numpy().astype(np.float64) for post, d in sc.out_degrees(name).items()}
    return k, ell


@pytest.mark.parametrize("name", ["E", "I"])
@pytest.mark.parametrize("bins", [4, 16])
def test_scaffold_node_probabilities_and_mean_in_degree(scaffold, name, bins):
    nodes = nodes_from_scaffold(scaffold, name, bins)
    n = scaffold.populations[name]
    k, _ = realised(scaffold, name)
    assert nodes.inputs == ["E", "I"]
    assert nodes.k.shape[0] <= bins**2
    # node probabilities are fractions of neurons: count / n with integer counts summing to n
    counts = nodes.prob * n
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-9)
    assert np.all(np.round(counts) >= 1) and np.round(counts).sum() == n
    # cells keep their means: E[K] over the nodes is the realised mean in-degree (rounding only)
    for col, pre in enumerate(nodes.inputs):
        assert np.dot(nodes.prob, nodes.k[:, col]) == pytest.approx(k[pre].mean(), rel=1e-13)
        assert nodes.mean_k[col] == pytest.approx(k[pre].mean(), rel=1e-13)


def realised_star_means(sc, name):
    """sum_i L_i K_i / sum_i L_i for every receiver (the L) and input (the K) of ``name``."""
    k, ell = realised(sc, name)
    return {(post, pre): np.dot(ell[post], k[pre]) / ell[post].sum() for post in ell for pre in k}


@pytest.mark.parametrize("name", ["E", "I"])
def test_scaffold_star_mean_is_exact_when_cells_hold_one_degree_vector(scaffold, name):
    # with 10 n quantile bins every gap between consecutive distinct degrees holds a quantile, so each cell holds a
    # single in-degree vector and the cell-mean out-degree reweighting is the exact sum over neurons
    n = scaffold.populations[name]
    nodes = nodes_from_scaffold(scaffold, name, 10 * n)
    for (post, pre), expected in realised_star_means(scaffold, name).items():
        col = nodes.inputs.index(pre)
        assert np.dot(nodes.star_prob(post), nodes.k[:, col]) == pytest.approx(expected, rel=1e-12), (post, pre)


@pytest.mark.xfail(
    strict=True,
    reason="nodes_from_scaffold places each cell's node at the unweighted mean in-degree for rho* too, so "
    "E*[K] misses sum_cells n_c Cov_c(K, L) / sum L (-0.2 % for E<-E at r = 0.5 with 16 bins); reported",
)
def test_scaffold_star_mean_is_exact_with_default_bins(scaffold):
    nodes = nodes_from_scaffold(scaffold, "E", 16)
    for (post, pre), expected in realised_star_means(scaffold, "E").items():
        col = nodes.inputs.index(pre)
        assert np.dot(nodes.star_prob(post), nodes.k[:, col]) == pytest.approx(expected, rel=1e-9), (post, pre)


def test_scaffold_sampler_draws_realised_degree_vectors(scaffold):
    nodes = nodes_from_scaffold(scaffold, "E", 16)
    k, ell = realised(scaffold, "E")
    table = np.stack([k[pre] for pre in nodes.inputs], -1)
    n_draws = 100_000
    draws, star = nodes.sample(n_draws, np.random.default_rng(3))
    assert draws.shape == (n_draws, 2)
    rows = {tuple(v) for v in table}
    assert all(tuple(v) in rows for v in draws[:5000])
    # uniform over neurons: the sample mean of each column within 5 standard errors of the realised mean
    se = table.std(axis=0) / math.sqrt(n_draws)
    assert np.all(np.abs(draws.mean(axis=0) - table.mean(axis=0)) < 5 * se)
    # every neuron is reachable: 100,000 draws from 2,000 neurons leave none out (P ~ 2000 e^-50)
    assert len({tuple(v) for v in draws}) == len(rows)
    # each draw carries its own neuron's rho* factor L_i / mean(L) per receiver: importance weights towards rho*
    assert set(star) == {"E", "I"}
    for post, factor in star.items():
        assert factor.shape == (n_draws,)
        assert set(np.round(factor * ell[post].mean(), 9)) <= set(ell[post])
        expected = np.dot(ell[post], k["E"]) / ell[post].sum()
        y = factor * draws[:, 0]
        assert abs(y.mean() - expected) < 5 * y.std() / math.sqrt(n_draws)


def test_law_sampler_draws_degrees_with_star_factors(e_nodes):
    # K from rho_K (inversion of each in-degree law) and factor E[L | K] / E[L]: E[factor] = 1 and
    # E[factor K] = E*[K] = E[K] + r sd(K) sd(L) / E[L] (analytic, see above), within 5 standard errors
    r, (ee, ei, _), nodes = e_nodes
    n = 400_000
    draws, star = nodes.sample(n, np.random.default_rng(11))
    assert draws.shape == (n, 2)
    assert np.all(draws == np.round(draws)) and np.all(draws >= 0)
    for col, law in enumerate((ee.in_degree, ei.in_degree)):
        assert abs(draws[:, col].mean() - law.mean) < 5 * math.sqrt(law.variance / n)
    assert set(star) == {"E", "I"}
    np.testing.assert_array_equal(star["I"], np.ones(n))
    g = star["E"]
    if r == 0.0:
        np.testing.assert_array_equal(g, np.ones(n))
    assert abs(g.mean() - 1.0) < 5 * g.std() / math.sqrt(n) + 1e-12
    expected = ee.in_degree.mean + r * math.sqrt(ee.in_degree.variance * ee.out_degree.variance) / ee.out_degree.mean
    y = g * draws[:, 0]
    assert abs(y.mean() - expected) < 5 * y.std() / math.sqrt(n)
