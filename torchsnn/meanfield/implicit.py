"""Implicit rates (theory §5.5): where a population's inputs include post-dependent plastic blocks, each node's rate
solves nu = phi(mu(nu), sigma(nu)); the stable roots are bracketed on a grid of rates and refined, the lowest
stable one is used, and the gradient follows from one Newton correction (implicit-function theorem)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from torchsnn.meanfield.blocks import Factor, NodeRates, PopulationTheory, smooth_sqrt


def implicit_rates(
    pop: PopulationTheory,
    mu_base: Tensor,
    s2_base: Tensor,
    terms: list[tuple[Factor | None, Tensor, bool]],
    jumps: tuple[Tensor, ...] = (),
    s3_terms: list[tuple[Factor, Tensor]] | None = None,
    root_grid: int = 24,
) -> NodeRates:
    """Solve nu = phi(mu(nu), sigma(nu)) at every node: stable roots bracketed on a grid of rates, refined by
    bisection; the lowest stable root is used; gradient by the implicit-function theorem. ``jumps``: (Lambda,
    s3 of the post-independent part) for finite-jump transfer functions; ``s3_terms`` add h(nu) * value."""

    def jump_args(nu: Tensor, detach: bool) -> tuple[Tensor, ...]:
        if not jumps:
            return ()
        lam, s3 = jumps
        for h, value in s3_terms or []:
            s3 = s3 + (h(nu).detach() * value.detach() if detach else h(nu) * value)
        return (lam.detach(), s3.detach()) if detach else (lam, s3)

    def inputs(nu: Tensor) -> tuple[Tensor, Tensor]:
        mu, s2 = mu_base, s2_base
        for h, value, to_mu in terms:
            factor = torch.ones_like(nu) if h is None else h(nu)
            if to_mu:
                mu = mu + factor * value
            else:
                s2 = s2 + factor * value
        return mu, smooth_sqrt(s2)

    def excess_const(nu: Tensor) -> Tensor:  # the same on detached inputs (no graph, no transform tracking)
        mu, s2 = mu_base.detach(), s2_base.detach()
        for h, value, to_mu in terms:
            factor = torch.ones_like(nu) if h is None else h(nu).detach()
            if to_mu:
                mu = mu + factor * value.detach()
            else:
                s2 = s2 + factor * value.detach()
        return pop.transfer_hz(mu, smooth_sqrt(s2), *jump_args(nu, True)).detach() - nu

    with torch.no_grad():
        grid = torch.cat(
            [
                torch.zeros(1, dtype=torch.float64),
                torch.logspace(-3, math.log10(pop.max_rate_hz), root_grid - 1, dtype=torch.float64),
            ]
        )
        h = torch.stack([excess_const(torch.full_like(mu_base, float(g))) for g in grid])
        down = (h[:-1] > 0) & (h[1:] <= 0)
        n_roots = down.sum(0)
        first = torch.argmax(down.to(torch.int8), 0)
        lo, hi = grid[first], grid[first + 1]
        lo, hi = torch.where(n_roots > 0, lo, 0.0), torch.where(n_roots > 0, hi, pop.max_rate_hz)
        for _ in range(12):
            mid = 0.5 * (lo + hi)
            positive = excess_const(mid) > 0
            lo, hi = torch.where(positive, mid, lo), torch.where(positive, hi, mid)
        root = 0.5 * (lo + hi)
        for _ in range(3):  # safeguarded Newton polish (quadratic; stays inside the bracket)
            step = 1e-6 * root.clamp(min=1.0)
            value = excess_const(root)
            slope = (excess_const(root + step) - excess_const(root - step)) / (2 * step)
            newton = root - value / torch.where(slope < 0, slope, torch.full_like(slope, -1.0))
            root = torch.where((newton > lo) & (newton < hi), newton, root)
        step = 1e-6 * root.clamp(min=1.0)
        slope = (excess_const(root + step) - excess_const(root - step)) / (2 * step)  # d(phi - nu)/dnu < 0
    mu, sigma = inputs(root)
    phi = pop.transfer_hz(mu, sigma, *jump_args(root, False))
    nu = root + (phi - root) / (-slope).clamp(min=1e-6)
    return NodeRates(nu, mu, sigma, int((n_roots > 1).sum()))


__all__ = ["implicit_rates"]
