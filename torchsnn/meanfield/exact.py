r"""Exact mean field on a realised scaffold (theory §8.4): one cell per distinct in-degree vector, solved by chord
iterations whose Jacobian comes from a coarse discretisation.

With every distinct in-degree vector as its own cell the distributional theory is exact for the realised scaffold
(a neuron's rate depends on its in-degrees only; rho* is linear in the out-degrees, so cell means of L are exact).
Newton on thousands of cells spends its time in the Jacobian (one reverse pass per unknown through every node's
transfer function). The unknowns x (block moments) are the same few numbers for any discretisation, and the
Jacobian of x -> F(x) changes little between a coarse and the exact one, so:

1. solve the coarse model (quantile bins, ``coarse_bins`` per input) by Newton: x_c, Jacobian J_c of G = x - F(x);
2. chord iterations on the exact model, x <- x - J_c^{-1} G_exact(x), where G_exact is evaluated without a
   gradient (the compiled Siegert kernel, ``siegert_numba.py``), with Broyden's rank-one update of J_c after each
   step (superlinear convergence); stop when max |G_exact| <= tol (scaled units, as for Newton).

Each iteration costs one value-only evaluation of the exact F. The stability reported is that of the coarse
Jacobian updated by Broyden (the eigenvalues of dF/dx move by the discretisation error).
"""

from __future__ import annotations

import time

import torch

from torchsnn.errors import SolverError
from torchsnn.meanfield.model import MeanFieldModel
from torchsnn.meanfield.solver import FixedPointProblem, SolveResult, map_eigenvalues, newton, solve

COARSE_TOL = 1e-7  # the coarse Newton solve only has to land close; Newton on the exact cells reaches ``tol``


class ReducedJacobianProblem(FixedPointProblem):
    """G from ``model``; dG/dz from ``jacobian_model`` (the same cells with a smaller Gaussian rule, or the model
    itself): Newton with a slightly inexact Jacobian still converges to the fixed point of ``model``, and fast."""

    def __init__(self, model: MeanFieldModel, scale: torch.Tensor, jacobian_model: MeanFieldModel | None) -> None:
        super().__init__(model, scale)
        self.jacobian_problem = FixedPointProblem(jacobian_model or model, scale)

    def residual_and_jacobian(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.jacobian_problem.model is self.model:
            return self.jacobian_problem.residual_and_jacobian(z)
        with torch.no_grad():
            g = self.residual(z)
        return g, self.jacobian_problem.residual_and_jacobian(z)[1]


def solve_exact(
    exact: MeanFieldModel,
    coarse: MeanFieldModel,
    jacobian_model: MeanFieldModel | None = None,
    *,
    tol: float = 1e-10,
    max_iter: int = 40,
    raise_on_failure: bool = True,
    **options: object,
) -> SolveResult:
    """Fixed point of ``exact`` from the solution of ``coarse`` (same blocks, other degree nodes) by Newton, with
    the Jacobian from ``jacobian_model`` (default: ``exact`` itself). ``options`` go to :func:`solver.solve` for
    the coarse solve. The result's ``history`` holds the coarse Newton residuals followed by the exact ones;
    ``discretisation`` in its diagnostics says how many cells and iterations it took."""
    t0 = time.perf_counter()
    first = solve(coarse, tol=max(tol, COARSE_TOL), raise_on_failure=raise_on_failure, **options)
    scale = exact.scales()
    z = first.x / scale
    t_coarse = time.perf_counter() - t0
    exact_problem = ReducedJacobianProblem(exact, scale, jacobian_model)
    z, history, it = newton(exact_problem, z, tol, max_iter)
    g, jac = exact_problem.residual_and_jacobian(z)
    history[-1] = float(g.abs().max())
    converged = bool(torch.isfinite(g).all()) and history[-1] <= tol
    result = SolveResult(
        z * scale,
        converged and first.converged,
        history[-1],
        first.iterations + it,
        time.perf_counter() - t0,
        map_eigenvalues(jac),
        first.history + history,
        first.continuation,
        first.branch_search,
    )
    result.discretisation = {
        "method": "exact cells (one per distinct in-degree vector), Newton from a coarse solve",
        "cells": {name: int(p.nodes.k.shape[0]) for name, p in exact.populations.items()},
        "coarse_cells": {name: int(p.nodes.k.shape[0]) for name, p in coarse.populations.items()},
        "coarse_iterations": first.iterations,
        "exact_iterations": it,
        "exact_residual": history[-1],
        "coarse_s": round(t_coarse, 4),
        "exact_s": round(time.perf_counter() - t0 - t_coarse, 4),
    }
    if raise_on_failure and not result.converged:
        raise SolverError("exact-cell mean-field Newton did not converge", result.diagnostics())
    return result


__all__ = ["solve_exact"]
