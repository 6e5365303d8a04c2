"""The fixed-point solver (torchsnn.meanfield.solver.solve) on synthetic problems with known answers, through a
minimal duck-typed model (the attributes and methods solve() uses), and its continuation path on a real model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from mf_helpers import compose_plain, hetero_overrides, mean_rate_hz, one_torch_thread  # noqa: F401
from scipy import optimize

from torchsnn.errors import SolverError
from torchsnn.meanfield.build import model_from_config
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
