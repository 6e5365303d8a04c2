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
from torchsnn.meanfield.solver import FixedPointProblem, SolveResult, map_eigenvalues, solve


def solve_exact(
    exact: MeanFieldModel,
    coarse: MeanFieldModel,
    *,
    tol: float = 1e-10,
    max_chord: int = 30,
    raise_on_failure: bool = True,
    **options: object,
) -> SolveResult:
    """Fixed point of ``exact`` from the solution of ``coarse`` (same blocks, other degree nodes) by Broyden-updated
    chord iterations. ``options`` go to :func:`solver.solve` for the coarse solve. The result's ``history`` holds
    the coarse Newton residuals followed by the exact ones; ``discretisation`` in its diagnostics says how many
    cells and iterations it took."""
    t0 = time.perf_counter()
    first = solve(coarse, tol=tol, raise_on_failure=raise_on_failure, **options)
    scale = exact.scales()
    problem = FixedPointProblem(coarse, scale)
    z = first.x / scale
    _, jac = problem.residual_and_jacobian(z)
    jac = jac.detach().clone()
    exact_problem = FixedPointProblem(exact, scale)
    history: list[float] = []
    with torch.no_grad():
        g = exact_problem.residual(z)
        history.append(float(g.abs().max()))
        it = 0
        while history[-1] > tol and it < max_chord and torch.isfinite(g).all():
            it += 1
            step = -torch.linalg.solve(jac, g)
            z_new = exact_problem.project(z + step)
            g_new = exact_problem.residual(z_new)
            s, y = z_new - z, g_new - g
            denom = float(s @ s)
            if denom > 0:
                jac = jac + torch.outer(y - jac @ s, s) / denom
            z, g = z_new, g_new
            history.append(float(g.abs().max()))
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
        "method": "exact cells (one per distinct in-degree vector), Broyden chord iterations from a coarse solve",
        "cells": {name: int(p.nodes.k.shape[0]) for name, p in exact.populations.items()},
        "coarse_cells": {name: int(p.nodes.k.shape[0]) for name, p in coarse.populations.items()},
        "coarse_iterations": first.iterations,
        "chord_iterations": it,
        "exact_residual": history[-1],
    }
    if raise_on_failure and not result.converged:
        raise SolverError("exact mean-field chord iterations did not converge", result.diagnostics())
    return result


__all__ = ["solve_exact"]
