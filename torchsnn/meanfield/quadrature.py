"""Quadrature rules: Gauss–Hermite for Gaussian expectations, Gauss rules for discrete (degree) laws."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def gauss_hermite_normal(order: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights for E[g(xi)], xi ~ N(0, 1): sum_i w_i g(x_i), exact for polynomials of degree < 2 order."""
    x, w = np.polynomial.hermite_e.hermegauss(order)
    return x, w / w.sum()


def gauss_hermite_2d(
    order_mu: int, order_sigma: int, dtype: torch.dtype = torch.float64, device: torch.device | None = None
) -> tuple[Tensor, Tensor]:
    """Tensor-product rule for a standard 2-D normal: nodes (n, 2) and weights (n,)."""
    x1, w1 = gauss_hermite_normal(order_mu)
    x2, w2 = gauss_hermite_normal(order_sigma)
    nodes = np.stack(np.meshgrid(x1, x2, indexing="ij"), -1).reshape(-1, 2)
    weights = np.outer(w1, w2).ravel()
    return (torch.as_tensor(nodes, dtype=dtype, device=device), torch.as_tensor(weights, dtype=dtype, device=device))


def product_normal_rule(orders: list[int]) -> tuple[Tensor, Tensor]:
    """Tensor-product Gauss-Hermite rule for a standard normal in len(orders) dimensions: nodes (n, dim), weights."""
    grids = [gauss_hermite_normal(o) for o in orders]
    nodes = np.stack(np.meshgrid(*[g[0] for g in grids], indexing="ij"), -1).reshape(-1, len(orders))
    weights = np.prod(np.stack(np.meshgrid(*[g[1] for g in grids], indexing="ij"), -1).reshape(-1, len(orders)), -1)
    return torch.as_tensor(nodes), torch.as_tensor(weights)


def sobol_normal(dim: int, points: int) -> tuple[Tensor, Tensor]:
    """Scrambled Sobol points mapped to N(0, I), in antithetic pairs (eta, -eta): odd moments vanish exactly, as for
    Gauss-Hermite, so expectations stay smooth in the covariances down to zero (a one-sided rule has
    d/dC ~ mean(eta) / sqrt(C) there). Equal weights."""
    engine = torch.quasirandom.SobolEngine(dim, scramble=True, seed=0)
    u = engine.draw(max(1, points // 2), dtype=torch.float64).clamp(1e-12, 1 - 1e-12)
    eta = torch.special.ndtri(u)
    eta = torch.cat([eta, -eta])
    return eta, torch.full((eta.shape[0],), 1.0 / eta.shape[0], dtype=torch.float64)


def discrete_gauss_rule(values: np.ndarray, probs: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss quadrature for a discrete law sum_i p_i delta(x - x_i): nodes and weights exact for polynomials of
    degree < 2 order (Lanczos / Stieltjes on the support, then Golub–Welsch). A support with at most ``order``
    points is returned as it is (the sum is then exact for any function).
    """
    values = np.asarray(values, dtype=np.float64)
    probs = np.asarray(probs, dtype=np.float64)
    keep = probs > 0
    values, probs = values[keep], probs[keep] / probs[keep].sum()
    if values.size <= order:
        return values, probs
    center, scale = np.dot(probs, values), np.sqrt(np.dot(probs, (values - np.dot(probs, values)) ** 2))
    x = (values - center) / scale
    alpha, beta = np.zeros(order), np.zeros(order)
    q_prev = np.zeros_like(x)
    q = np.ones_like(x)
    for k in range(order):
        alpha[k] = np.dot(probs, x * q * q)
        r = (x - alpha[k]) * q - (beta[k - 1] if k > 0 else 0.0) * q_prev
        # full re-orthogonalisation is unnecessary at these orders: the normalised recurrence is stable
        norm = np.sqrt(np.dot(probs, r * r))
        if k + 1 < order:
            beta[k] = norm
        q_prev, q = q, r / norm
    jacobi = np.diag(alpha) + np.diag(beta[:-1], 1) + np.diag(beta[:-1], -1)
    nodes, vecs = np.linalg.eigh(jacobi)
    weights = vecs[0] ** 2
    return center + scale * nodes, weights / weights.sum()
