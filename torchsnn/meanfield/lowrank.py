r"""Separable expansion of a non-separable steady state (theory §4, §5.5):

    f(x, y) ~ sum_{m=1..M} a_m(x) b_m(y)

from the SVD of f on a grid of presynaptic (x) and postsynaptic (y) rates; M is the smallest rank whose relative
Frobenius error on the grid is below ``tol``. The factors are smooth Chebyshev fits (differentiable in torch).
The same is done for f^2, which the sigma features need."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


@dataclass
class ChebyshevFactor:
    """A smooth function of a rate on [0, max]: a Chebyshev series in t = 2 sqrt(nu / max) - 1 (dense at low rates,
    where neurons fire), evaluated by Clenshaw's recurrence (differentiable, no kinks for Newton); constant
    beyond max."""

    max_hz: float
    coefficients: Tensor

    def __call__(self, nu_hz: Tensor) -> Tensor:
        t = 2.0 * torch.sqrt(nu_hz.clamp(0.0, self.max_hz) / self.max_hz + 1e-30) - 1.0
        b1 = torch.zeros_like(t)
        b2 = torch.zeros_like(t)
        for c in self.coefficients.flip(0)[:-1]:
            b1, b2 = 2.0 * t * b1 - b2 + c, b1
        return t * b1 - b2 + self.coefficients[0]


@dataclass
class SeparableExpansion:
    pre: list[ChebyshevFactor]
    post: list[ChebyshevFactor]
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
    degree: int = 40,
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
    if error > tol:
        logging.getLogger("torchsnn").warning(
            "separable expansion stopped at rank %d with relative error %.3g > tolerance %.3g", rank, error, tol
        )
    t = np.linspace(-1.0, 1.0, points)  # the grids are quadratic in nu, i.e. uniform in t
    degree = min(degree, points - 1)

    def factor(values: Tensor, top: float) -> ChebyshevFactor:
        coefficients = np.polynomial.chebyshev.chebfit(t, values.numpy(), degree)
        return ChebyshevFactor(top, torch.as_tensor(coefficients))

    pre = [factor(u[:, m] * s[m], max_pre_hz) for m in range(rank)]
    post = [factor(vt[m], max_post_hz) for m in range(rank)]
    return SeparableExpansion(pre, post, error)
