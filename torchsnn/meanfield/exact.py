r"""Exact mean field on a realised scaffold (theory §8.4): one cell per distinct in-degree vector, solved by Newton
from a coarse discretisation's solution.

With every distinct in-degree vector as its own cell the distributional theory is exact for the realised scaffold
(a neuron's rate depends on its in-degrees only; rho* is linear in the out-degrees, so cell means of L are exact).
The unknowns x (block moments) are the same few numbers for any discretisation, so:

1. solve the coarse model (quantile bins, about 32 cells per population) by Newton (with the solver's
   continuation and branch search where needed): x_c; then Newton on intermediate models (about 256 cells) from
   there;
2. Newton on the exact cells from that, with the exact cells' own Jacobian (``jacobian.py``: one transfer
   evaluation with first derivatives per (cell, Gauss-Hermite node), the residual from the same evaluation; about
   1.6 value-only evaluations per iteration); stop when max |G| <= tol (scaled units).

The stability reported (``leading_eigenvalues``) is that of the exact cells' Jacobian at the fixed point.
"""

from __future__ import annotations

import time

import torch

from torchsnn.errors import SolverError
from torchsnn.meanfield.model import MeanFieldModel
from torchsnn.meanfield.solver import FixedPointProblem, SolveResult, map_eigenvalues, newton, solve

COARSE_TOL = 1e-7  # the coarse Newton solve only has to land close; Newton on the exact cells reaches ``tol``


def solve_exact(
    exact: MeanFieldModel,
    coarse: MeanFieldModel,
    intermediate: list[MeanFieldModel] | None = None,
    *,
    tol: float = 1e-10,
    max_iter: int = 40,
    raise_on_failure: bool = True,
    **options: object,
) -> SolveResult:
    """Fixed point of ``exact`` from the solution of ``coarse`` (same blocks, other degree nodes) by Newton, through
    the ``intermediate`` models in order.
    ``options`` go to :func:`solver.solve` for the coarse solve. The result's ``history`` holds the coarse Newton
    residuals followed by the exact ones; ``discretisation`` in its diagnostics says how many cells and iterations
    it took."""
    t0 = time.perf_counter()
    first = solve(coarse, tol=max(tol, COARSE_TOL), raise_on_failure=raise_on_failure, **options)
    scale = exact.scales()
    z = first.x / scale
    steps, stages = [], list(intermediate or [])
    for model in stages:
        z, hist, it = newton(FixedPointProblem(model, scale), z, max(tol, COARSE_TOL), max_iter)
        steps.append(it)
        first.history += hist
    t_coarse = time.perf_counter() - t0
    exact_problem = FixedPointProblem(exact, scale)
    z, history, it = newton(exact_problem, z, tol, max_iter)
    g, jac = exact_problem.residual_and_jacobian(z)
    history[-1] = float(g.abs().max())
    converged = bool(torch.isfinite(g).all()) and history[-1] <= tol
    result = SolveResult(
        z * scale,
        converged and first.converged,
        history[-1],
        first.iterations + sum(steps) + it,
        time.perf_counter() - t0,
        map_eigenvalues(jac),
        first.history + history,
        first.continuation,
        first.branch_search,
    )
    result.discretisation = {
        "method": "exact cells (one per distinct in-degree vector), Newton from a coarse solve",
        "jacobian": "analytic (chain rule over the cells' inputs)" if exact_problem.analytic else "autograd",
        "cells": {name: int(p.nodes.k.shape[0]) for name, p in exact.populations.items()},
        "coarse_cells": {name: int(p.nodes.k.shape[0]) for name, p in coarse.populations.items()},
        "coarse_iterations": first.iterations,
        "intermediate_cells": [{n: int(p.nodes.k.shape[0]) for n, p in m.populations.items()} for m in stages],
        "intermediate_iterations": steps,
        "exact_iterations": it,
        "exact_residual": history[-1],
        "coarse_s": round(t_coarse, 4),
        "exact_s": round(time.perf_counter() - t0 - t_coarse, 4),
    }
    if raise_on_failure and not result.converged:
        raise SolverError("exact-cell mean-field Newton did not converge", result.diagnostics())
    if options.get("require_stable") and result.converged and not result.stable:
        raise SolverError("the exact-cell mean-field fixed point is unstable", result.diagnostics())
    return result


__all__ = ["solve_exact"]
