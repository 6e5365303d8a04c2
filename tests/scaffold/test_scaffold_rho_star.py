"""rho*_K of a realised scaffold against the theory (E[L | K = k] rho_K(k) / E[L]) and against edge sampling."""

from __future__ import annotations

import math

import numpy as np
import pytest

from torchsnn.scaffold import ConfigurationModel, GammaDegree, SparseScaffold, conditional_out_mean

N = 10_000
LAW = GammaDegree(200, 0.8)


@pytest.fixture(scope="module", params=[-0.5, 0.0, 0.5], ids=lambda r: f"r={r}")
def built(request: pytest.FixtureRequest) -> tuple[float, SparseScaffold]:
    r = request.param
    rng = np.random.default_rng(31)
    return r, SparseScaffold.build({"E": N}, {("E", "E"): ConfigurationModel(LAW, r=r)}, rng)


def cdf_on(k: np.ndarray, p: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """CDF of the law (k, p) evaluated on an integer grid."""
    return np.concatenate([[0.0], np.cumsum(p)])[np.searchsorted(k, grid, side="right")]


def test_rho_star_matches_theory(built: tuple[float, SparseScaffold]) -> None:
    r, sc = built
    laws = ConfigurationModel(LAW, r=r).degree_laws(N, N, True)
    k, p = laws.in_degree.support()
    theory = conditional_out_mean(laws.in_degree, laws.out_degree, laws.copula_rho, k) * p / laws.out_degree.mean
    assert theory.sum() == pytest.approx(1.0, abs=1e-8)
    k_emp, p_emp = sc.empirical_rho_star("E", "E")
    assert p_emp.sum() == pytest.approx(1.0)
    # mean: 5 standard errors of the out-degree-weighted mean sum_i K_i L_i / sum_i L_i (delta method)
    kin = sc.block("E", "E").in_degree().numpy().astype(float)
    weight = sc.block("E", "E").out_degree().numpy().astype(float)
    mean_emp = np.dot(k_emp, p_emp)
    se = math.sqrt(np.mean((weight * (kin - mean_emp)) ** 2) / N) / weight.mean()
    assert mean_emp == pytest.approx(np.dot(k, theory), abs=5 * se)
    # KS distance: effective sample size (sum L)^2 / sum L^2 ~ N / (1 + cv^2) ~ 6,000, whose 99.9 % Kolmogorov
    # quantile is 1.95 / sqrt(6,000) = 0.025; allow 0.03 (the realised degrees also differ slightly from the draws)
    grid = np.arange(0, k.max() + 1)
    assert np.max(np.abs(cdf_on(k_emp, p_emp, grid) - cdf_on(k, theory, grid))) < 0.03


def test_rho_star_is_the_law_of_edge_sampling(built: tuple[float, SparseScaffold]) -> None:
    _, sc = built
    block = sc.block("E", "E")
    edges = np.random.default_rng(8).integers(0, block.n_edges, size=20_000)
    pre = block.pre_index().numpy()[edges]
    k_of_pre = block.in_degree().numpy()[pre]
    k_emp, p_emp = sc.empirical_rho_star("E", "E")
    grid = np.arange(0, k_emp.max() + 1)
    sample_cdf = np.searchsorted(np.sort(k_of_pre), grid, side="right") / k_of_pre.size
    # one-sample KS with n = 20,000: the 99.9 % quantile is 1.95 / sqrt(n) = 0.0138
    assert np.max(np.abs(sample_cdf - cdf_on(k_emp, p_emp, grid))) < 0.0138


def test_sign_of_r_shifts_rho_star(built: tuple[float, SparseScaffold]) -> None:
    r, sc = built
    k, p = sc.empirical_rho("E", "E")
    k_star, p_star = sc.empirical_rho_star("E", "E")
    shift = np.dot(k_star, p_star) - np.dot(k, p)
    # E*[K] - E[K] = Cov(K, L) / E[L] = r sd_K sd_L / E[L] ~ r * 128 here; at r = 0 it is sampling noise (~2)
    if r > 0:
        assert shift > 40
    elif r < 0:
        assert shift < -40
    else:
        assert abs(shift) < 10
