"""The fixed-point solver (torchsnn.meanfield.solver.solve) on synthetic problems with known answers, through a
minimal duck-typed model (the attributes and methods solve() uses), and its continuation path on a real model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from mf_helpers import compose_plain, hetero_overrides, mean_rate_hz, one_torch_thread  # noqa: F401
from scipy import optimize

from torchsnn.config.theory_builder import model_from_config
from torchsnn.errors import SolverError
from torchsnn.meanfield.solver import solve


class SyntheticModel:
    """What solve() needs of a model: populations (names), scales(), moments_at_rates(), F(x), project(x),
    with_heterogeneity(h) (continuation: the same problem here) and n_unknowns. x is flat (n,)."""

    def __init__(self, f, x0: np.ndarray, scale: np.ndarray) -> None:
        self._f = f
        self._x0 = torch.as_tensor(x0, dtype=torch.float64)
        self._scale = torch.as_tensor(scale, dtype=torch.float64)
        self.populations = {"P": None}
        self.n_unknowns = self._x0.numel()

    def F(self, x: torch.Tensor) -> torch.Tensor:
        return self._f(x)

    def scales(self) -> torch.Tensor:
        return self._scale.clone()

    def moments_at_rates(self, rate_hz: dict[str, float]) -> torch.Tensor:
        assert set(rate_hz) == {"P"}
        return self._x0.clone()

    def project(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def mean_rates_hz(self, x: torch.Tensor) -> dict[str, float]:
        return {"P": float(x.mean())}  # what the branch search ranks stable states by

    def with_heterogeneity(self, heterogeneity: float) -> SyntheticModel:
        return self


def fd_jacobian(f, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central finite differences, error ~h^2 f''' / 6 + eps / h ~ 1e-10 for the O(1) functions here."""
    cols = []
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h
        cols.append((f(x + e) - f(x - e)) / (2 * h))
    return np.stack(cols, -1)


def match_eigenvalues(got: np.ndarray, expected: np.ndarray, tol: float) -> None:
    """Every expected eigenvalue has a distinct computed one within tol (greedy matching)."""
    assert got.size == expected.size
    left = list(got)
    for z in expected:
        i = int(np.argmin([abs(z - g) for g in left]))
        assert abs(z - left[i]) < tol, (z, got)
        left.pop(i)


# ----------------------------------------------------------------------------------------------- contractive
N = 10
RNG = np.random.default_rng(12)
Q, _ = np.linalg.qr(RNG.standard_normal((N, N)))
A = 0.6 * Q  # spectral norm 0.6: x -> tanh(A x) + b is a contraction with a unique fixed point
B = RNG.standard_normal(N)
SCALE = np.geomspace(0.1, 10.0, N)  # unknowns of different magnitudes, as in the mean-field problem


def f_numpy(x: np.ndarray) -> np.ndarray:
    return np.tanh(A @ x) + B


def f_torch(x: torch.Tensor) -> torch.Tensor:
    return torch.tanh(torch.as_tensor(A) @ x) + torch.as_tensor(B)


def test_contractive_problem_converges_to_the_scipy_root():
    model = SyntheticModel(f_torch, np.zeros(N), SCALE)
    result = solve(model)
    root, _info, ok, msg = optimize.fsolve(lambda x: f_numpy(x) - x, np.ones(N), xtol=1e-14, full_output=True)
    assert ok == 1, msg
    assert result.converged
    assert result.residual <= 1e-10
    assert 1 <= result.iterations <= 8  # Newton from x = 0, quadratic convergence (measured 4-5)
    # |x - x*| <= |x - F(x)| / (1 - 0.6) for a 0.6-contraction: 1e-10 absolute is ample
    np.testing.assert_allclose(result.x.numpy(), root, rtol=0, atol=1e-10)
    # eigenvalues of dF/dx at x* (the solver's are of the scaled Jacobian, similar to dF/dx: the same set)
    expected = np.linalg.eigvals(fd_jacobian(f_numpy, root))
    match_eigenvalues(result.eigenvalues, expected, 1e-7)
    assert result.stable and np.max(np.abs(expected)) < 0.6 + 1e-12
    d = result.diagnostics()
    assert d["converged"] is True and d["stable"] is True and d["iterations"] == result.iterations
    assert len(d["leading_eigenvalues"]) == 3
    assert d["leading_eigenvalues"][0][0] == pytest.approx(max(expected.real), abs=1e-6)


def test_starting_at_the_solution_takes_no_iteration():
    model = SyntheticModel(f_torch, np.zeros(N), SCALE)
    first = solve(model)
    again = solve(model, x0=first.x)
    assert again.converged and again.iterations == 0
    np.testing.assert_array_equal(again.x.numpy(), first.x.numpy())


def test_unconverged_result_reports_the_best_iterate():
    # an unreachable tolerance: Newton gets to the rounding floor (~1e-15) and then cannot satisfy tol = 1e-30
    model = SyntheticModel(f_torch, np.zeros(N), SCALE)
    result = solve(model, tol=1e-30, raise_on_failure=False)
    assert not result.converged
    assert min(result.history) < 1e-12  # the solver did get there ...
    assert result.residual < 1e-12  # ... but reports |x0 - F(x0)| = 21.9 and returns x0


# ----------------------------------------------------------------------------------------------- no fixed point
def f_no_root(x: torch.Tensor) -> torch.Tensor:
    # x - F(x) = -(1 + 0.1 sin x) <= -0.9 < 0: no fixed point anywhere; dF/dx = 1 + 0.1 cos x in [0.9, 1.1]
    return x + 1.0 + 0.1 * torch.sin(x)


def test_no_fixed_point_raises_with_diagnostics():
    model = SyntheticModel(f_no_root, np.zeros(3), np.ones(3))
    with pytest.raises(SolverError) as err:
        solve(model, max_iter=12)
    d = err.value.diagnostics
    assert d["converged"] is False
    assert d["residual"] >= 0.9 - 1e-12  # |x - F(x)| >= 0.9 everywhere (scale 1)
    assert d["iterations"] >= 12 // 4  # at least the direct attempt's budget was spent
    lead = np.array(d["leading_eigenvalues"])
    assert lead.shape == (3, 2)
    assert np.all((lead[:, 0] >= 0.9 - 1e-6) & (lead[:, 0] <= 1.1 + 1e-6)) and np.all(lead[:, 1] == 0)
    assert "residual" in str(err.value) and "iterations" in str(err.value)


def test_no_fixed_point_without_raising_returns_unconverged():
    model = SyntheticModel(f_no_root, np.zeros(3), np.ones(3))
    result = solve(model, max_iter=12, raise_on_failure=False)
    assert result.converged is False
    assert result.residual >= 0.9 - 1e-12
    assert np.all(np.isfinite(result.x.numpy()))
    # the diagonal Jacobian 1 + 0.1 cos x at the returned point, by finite differences
    x = result.x.numpy()
    expected = np.linalg.eigvals(fd_jacobian(lambda v: v + 1.0 + 0.1 * np.sin(v), x))
    match_eigenvalues(result.eigenvalues, expected, 1e-7)


# ----------------------------------------------------------------------------------------------- unstable root
def test_unstable_fixed_point_is_found_and_flagged():
    # F(x) = 2x - 1: root x = 1, dF/dx = 2 (the rate dynamics tau dx/dt = -x + F(x) run away from it)
    model = SyntheticModel(lambda x: 2.0 * x - 1.0, np.full(5, 0.25), np.full(5, 0.5))
    result = solve(model)
    assert result.converged and result.residual <= 1e-10
    assert result.iterations <= 2  # linear problem: one Newton step
    np.testing.assert_allclose(result.x.numpy(), np.ones(5), rtol=0, atol=1e-12)
    np.testing.assert_allclose(result.eigenvalues, np.full(5, 2.0), atol=1e-10)
    assert result.stable is False and result.diagnostics()["stable"] is False
    with pytest.raises(SolverError, match="unstable") as err:  # what the pipeline asks for: no prediction
        solve(model, require_stable=True)
    assert err.value.diagnostics["stable"] is False
    assert err.value.diagnostics["leading_eigenvalues"][0][0] == pytest.approx(2.0)
    # the branch search followed the rate dynamics away from x = 1 both ways: they run off, no stable state
    search = result.diagnostics()["branch_search"]
    assert search["unstable_fixed_point"]["mean_rates_hz"]["P"] == pytest.approx(1.0)
    assert search["stable_states_mean_rates_hz"] == [] and "chosen" not in search


def bistable_numpy(x: np.ndarray) -> np.ndarray:
    return 2.0 * np.tanh(x) + 0.1  # three roots: two stable (slope 2 sech^2 < 1) around an unstable one near 0


def test_bistable_problem_returns_the_lower_stable_state_and_reports_both():
    model = SyntheticModel(lambda x: 2.0 * torch.tanh(x) + 0.1, np.zeros(1), np.ones(1))
    result = solve(model)  # Newton from x = 0 lands on the unstable middle root
    roots = sorted(
        optimize.brentq(lambda v: bistable_numpy(v) - v, a, b) for a, b in ((-5.0, -1.0), (-1.0, 1.0), (1.0, 5.0))
    )
    assert 2.0 / np.cosh(roots[1]) ** 2 > 1.0  # the middle root is unstable, the outer ones stable
    assert result.converged and result.stable and result.residual <= 1e-10
    np.testing.assert_allclose(result.x.numpy(), [roots[0]], rtol=0, atol=1e-9)  # the lower stable state
    np.testing.assert_allclose(result.eigenvalues.real, [2.0 / np.cosh(roots[0]) ** 2], atol=1e-8)
    search = result.diagnostics()["branch_search"]
    assert search["unstable_fixed_point"]["mean_rates_hz"]["P"] == pytest.approx(roots[1], abs=1e-6)
    found = sorted(state["P"] for state in search["stable_states_mean_rates_hz"])
    np.testing.assert_allclose(found, [roots[0], roots[2]], atol=1e-6)


def test_stability_boundary_uses_real_parts():
    # a rotation-like linear map with complex eigenvalues 0.5 +- 2i: |lambda| > 1 but Re < 1, which the
    # solver's criterion (linearised tau dx/dt = -x + F(x)) calls stable
    m = np.array([[0.5, -2.0], [2.0, 0.5]])
    c = np.array([1.0, -1.0])
    model = SyntheticModel(lambda x: torch.as_tensor(m) @ x + torch.as_tensor(c), np.zeros(2), np.ones(2))
    result = solve(model)
    root = np.linalg.solve(np.eye(2) - m, c)
    np.testing.assert_allclose(result.x.numpy(), root, atol=1e-12)
    match_eigenvalues(result.eigenvalues, np.array([0.5 + 2j, 0.5 - 2j]), 1e-10)
    assert result.stable


# ----------------------------------------------------------------------------------------------- continuation
def test_continuation_reaches_the_direct_solution():
    model = model_from_config(compose_plain(*hetero_overrides(0.5)))
    direct = solve(model)
    stepped = solve(model, continuation=4)
    assert stepped.converged and stepped.residual <= 1e-10
    assert stepped.continuation[0] == 0.0 and stepped.continuation[-1] == 1.0
    assert all(b > a for a, b in zip(stepped.continuation[:-1], stepped.continuation[1:], strict=True))
    for name in ("E", "I"):
        # the same fixed point (a unique, stable state): rates agree far below the solver's tolerance effects
        assert mean_rate_hz(model, stepped.x, name) == pytest.approx(mean_rate_hz(model, direct.x, name), rel=1e-9)
    assert math.isclose(stepped.residual, 0.0, abs_tol=1e-10)


def test_plastic_network_with_a_saddle_gets_its_low_rate_state():
    """rate_vs_structure, plastic, cv 0.4, r = +0.5: Newton from 5 Hz meets a saddle (E ~6 Hz, leading eigenvalue
    ~1.17); the branch search finds the low state (the one the simulation settles in, E 3.87 Hz measured) and a
    high-activity state, and returns the low one."""
    from hydra import compose, initialize_config_dir
    from mf_helpers import CONF_DIR
    from omegaconf import OmegaConf

    from torchsnn.config.theory_builder import solve_options
    from torchsnn.studies.base import Study

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["+experiment=rate_vs_structure", "neuron.transfer=siegert"])
    plastic = {**OmegaConf.to_container(cfg.plasticity), **OmegaConf.to_container(cfg.study.plastic)}
    plain = Study.variant(cfg, scaffold__r=0.5, scaffold__cv=0.4, plasticity=plastic)
    model = model_from_config(plain)
    result = solve(model, **solve_options(plain))  # require_stable: raises if no stable state was found
    search = result.diagnostics()["branch_search"]
    saddle = search["unstable_fixed_point"]
    assert saddle["leading_eigenvalue"] > 1.0
    states = sorted(search["stable_states_mean_rates_hz"], key=lambda s: s["E"])
    assert len(states) == 2
    low, high = states
    assert low["E"] < saddle["mean_rates_hz"]["E"] < high["E"]  # the saddle separates the two states
    assert result.stable and result.residual <= 1e-10
    assert mean_rate_hz(model, result.x, "E") == pytest.approx(low["E"], rel=1e-6)
    assert mean_rate_hz(model, result.x, "I") == pytest.approx(low["I"], rel=1e-6)
