r"""Separable expansion of a non-separable steady state (theory §4, §5.5):

    f(x, y) ~ sum_{m=1..M} a_m(x) b_m(y)

from the SVD of f on a grid of presynaptic (x) and postsynaptic (y) rates; M is the smallest rank whose relative
Frobenius error on the grid is below ``tol``. The factors are piecewise-linear interpolants (differentiable in
torch). The same is done for f^2, which the sigma features need."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


@dataclass
class Interpolant:
    """Piecewise-linear function of a rate on a fixed grid (constant beyond its ends)."""

    grid_hz: Tensor
    values: Tensor

    def __call__(self, nu_hz: Tensor) -> Tensor:
        g = self.grid_hz
        x = nu_hz.clamp(float(g[0]), float(g[-1]))
        i = torch.searchsorted(g, x.detach().contiguous()).clamp(1, g.numel() - 1)
        x0, x1 = g[i - 1], g[i]
        t = (x - x0) / (x1 - x0)
        return self.values[i - 1] * (1 - t) + self.values[i] * t


@dataclass
class SeparableExpansion:
    pre: list[Interpolant]
    post: list[Interpolant]
    relative_error: float

    @property
    def rank(self) -> int:
        return len(self.pre)


def rate_grid(max_rate_hz: float, points: int = 160) -> np.ndarray:
    """Grid dense at low rates (quadratic spacing) up to ``max_rate_hz``."""
    return max_rate_hz * np.linspace(0.0, 1.0, points) ** 2


def separable_expansion(
    f: Callable[[Tensor, Tensor], Tensor],
    max_pre_hz: float,
    max_post_hz: float,
    tol: float = 1e-3,
    max_rank: int = 6,
    points: int = 160,
) -> SeparableExpansion:
    """Rank-M expansion of f(nu_pre, nu_post) with relative Frobenius error <= tol on the grid."""
    x = torch.as_tensor(rate_grid(max_pre_hz, points))
    y = torch.as_tensor(rate_grid(max_post_hz, points))
    with torch.no_grad():
        table = f(x[:, None], y[None, :]).to(torch.float64)
    u, s, vt = torch.linalg.svd(table, full_matrices=False)
    total = float(torch.linalg.norm(table)) or 1.0
    for rank in range(1, max_rank + 1):
        approx = (u[:, :rank] * s[:rank]) @ vt[:rank]
        error = float(torch.linalg.norm(table - approx)) / total
        if error <= tol:
            break
    pre = [Interpolant(x, u[:, m] * s[m]) for m in range(rank)]
    post = [Interpolant(y, vt[m]) for m in range(rank)]
    return SeparableExpansion(pre, post, error)
