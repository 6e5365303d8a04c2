"""Correlated in/out degrees of one neuron by a Gaussian copula (theory.md §2).

    K = F_K^{-1}(Phi(z1)),  L = F_L^{-1}(Phi(z2)),  (z1, z2) standard normal with corr(z1, z2) = rho.

With the normal thresholds a_k = Phi^{-1}(F_K(k)), K = k exactly when z1 lies in (a_{k-1}, a_k], so
h_K(z) = k_min + sum_k 1{z > a_k} and its Hermite coefficients are exact finite sums::

    E[h_K(Z) He_n(Z)] = sum_k phi(a_k) He_{n-1}(a_k)          (n >= 1)

Mehler's expansion of the bivariate normal density then gives (normalised coefficients c_n = E[h He_n] / sqrt(n!))

    Cov(K, L) = sum_{n >= 1} rho^n c_n^K c_n^L
    E[L | K = k] = E[L] + sum_{n >= 1} rho^n c_n^L [psi_{n-1}(a_{k-1}) - psi_{n-1}(a_k)] / (sqrt(n) P(K = k)),
    psi_m(z) = phi(z) He_m(z) / sqrt(m!)

The series is cut when Parseval (sum_n (c_n)^2 = Var K) says the rest is negligible, or at a work budget; its
error on r is at most |rho|^(N+1) sqrt(R_K R_L) / (sigma_K sigma_L) with R the Parseval remainders. Where that
bound is not small (|rho| near 1 with few, large steps: tiny means) and the threshold grid is small, Hoeffding's
identity is summed directly instead, with the bivariate normal cdf Phi2 from Owen's T::

    Cov(K, L) = sum_{i, j} [Phi2(a_i, b_j; rho) - Phi(a_i) Phi(b_j)]

At rho = +-1 the exact comonotone (antitone) coupling K = F_K^{-1}(U), L = F_L^{-1}(U or 1 - U) is used.
All three routes agree with independent references to ~1e-8 or better (tests/scaffold/test_scaffold_copula.py).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from scipy import optimize, special

from torchsnn.errors import ConfigError
from torchsnn.scaffold.degree_laws import DegreeLaw
from torchsnn.validation import check_int, check_range

_WORK = 4e7  # thresholds x terms per law
_MAX_TERMS = 20000
_REL_REMAINDER = 1e-14
_EXACT_PAIRS = 250_000  # largest threshold grid summed directly when the series converges too slowly


@lru_cache(maxsize=64)
def hermite_coefficients(law: DegreeLaw) -> tuple[np.ndarray, float]:
    """Normalised Hermite coefficients c_1..c_N of h(z) = F^{-1}(Phi(z)) and the Parseval remainder Var - sum c^2."""
    _, a = law.normal_thresholds()
    a = a[np.isfinite(a)]
    var = law.variance
    if a.size == 0 or var == 0:
        return np.zeros(0), 0.0
    w = np.exp(-0.5 * a**2) / math.sqrt(2 * math.pi)
    n_max = int(np.clip(_WORK / a.size, 200, _MAX_TERMS))
    h_prev, h = np.zeros_like(a), np.ones_like(a)  # He_{n-2}, He_{n-1} normalised, at n = 1
    coefs, acc = [], 0.0
    for n in range(1, n_max + 1):
        c = float(np.einsum("i,i->", w, h)) / math.sqrt(n)  # (einsum: no BLAS thread start-up per term)
        coefs.append(c)
        acc += c * c
        if var - acc <= _REL_REMAINDER * var:
            break
        h_prev, h = h, (a * h - math.sqrt(n - 1) * h_prev) / math.sqrt(n)
    return np.asarray(coefs), max(var - acc, 0.0)


def _monotone_pieces(law_in: DegreeLaw, law_out: DegreeLaw, sign: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(K, L, probability) on the pieces of U in [0, 1] where K = F^{-1}(U), L = G^{-1}(U or 1 - U) are constant."""
    _, f, _ = law_in._table
    _, g, _ = law_out._table
    u = np.unique(np.clip(np.concatenate([[0.0, 1.0], f, g if sign > 0 else 1.0 - g]), 0.0, 1.0))
    mid, du = 0.5 * (u[1:] + u[:-1]), np.diff(u)
    return law_in.ppf(mid), law_out.ppf(mid if sign > 0 else 1.0 - mid), du


def _sd(law: DegreeLaw) -> float:
    return math.sqrt(law.variance)


def copula_pearson(law_in: DegreeLaw, law_out: DegreeLaw, rho: float) -> float:
    """Pearson r of (K, L) under the Gaussian copula with parameter rho (exact up to ~1e-8)."""
    rho = check_range("rho", rho, -1.0, 1.0)
    if _sd(law_in) == 0 or _sd(law_out) == 0:
        return 0.0
    if abs(rho) == 1.0:
        k, ell, du = _monotone_pieces(law_in, law_out, int(rho))
        cov = float(np.sum(du * (k - law_in.mean) * (ell - law_out.mean)))
    elif _use_exact(law_in, law_out, rho):
        a, b = _finite_thresholds(law_in), _finite_thresholds(law_out)
        cov = float(np.sum(_phi2(a[:, None], b[None, :], rho) - special.ndtr(a)[:, None] * special.ndtr(b)[None, :]))
    else:
        ca, _ = hermite_coefficients(law_in)
        cb, _ = hermite_coefficients(law_out)
        n = min(ca.size, cb.size)
        cov = float(np.sum(rho ** np.arange(1, n + 1) * ca[:n] * cb[:n]))
    return float(np.clip(cov / (_sd(law_in) * _sd(law_out)), -1.0, 1.0))


def _finite_thresholds(law: DegreeLaw) -> np.ndarray:
    _, a = law.normal_thresholds()
    return a[np.isfinite(a)]


def _use_exact(law_in: DegreeLaw, law_out: DegreeLaw, rho: float) -> bool:
    """Whether to sum the bivariate normal cdf directly (Hoeffding): the series bound is not small (|rho| near 1
    with few, large steps) and the threshold grid is small enough to afford it."""
    ca, _ = hermite_coefficients(law_in)
    cb, _ = hermite_coefficients(law_out)
    n = min(ca.size, cb.size)
    rest = max(law_in.variance - np.sum(ca[:n] ** 2), 0.0) * max(law_out.variance - np.sum(cb[:n] ** 2), 0.0)
    bound = abs(rho) ** (n + 1) * math.sqrt(rest) / (_sd(law_in) * _sd(law_out))
    small = _finite_thresholds(law_in).size * _finite_thresholds(law_out).size <= _EXACT_PAIRS
    return bound > 1e-9 and small


def _phi2(h: np.ndarray, k: np.ndarray, rho: float) -> np.ndarray:
    """P(z1 <= h, z2 <= k) for corr rho in (-1, 1), finite h, k, by Owen's T:
    Phi2 = (Phi(h) + Phi(k)) / 2 - T(h, (k - rho h) / (h s)) - T(k, (h - rho k) / (k s)) - 1{h k < 0} / 2."""
    h, k = np.broadcast_arrays(np.where(h == 0, 1e-12, h), np.where(k == 0, 1e-12, k))
    s = math.sqrt(1.0 - rho * rho)
    t = special.owens_t(h, (k - rho * h) / (h * s)) + special.owens_t(k, (h - rho * k) / (k * s))
    return 0.5 * (special.ndtr(h) + special.ndtr(k)) - t - 0.5 * (h * k < 0)


@lru_cache(maxsize=64)
def reachable_r(law_in: DegreeLaw, law_out: DegreeLaw) -> tuple[float, float]:
    """Pearson r at rho = -1 and rho = +1: the interval of correlations the copula can give these marginals."""
    return copula_pearson(law_in, law_out, -1.0), copula_pearson(law_in, law_out, 1.0)


def calibrate_copula(law_in: DegreeLaw, law_out: DegreeLaw, r: float, field: str = "r") -> float:
    """The copula parameter rho with copula_pearson(rho) = r (brentq to 1e-12).

    Raises ConfigError naming ``field``, ``r`` and the reachable interval when r is outside it.
    """
    r = check_range(field, r, -1.0, 1.0)
    if r == 0.0:
        return 0.0
    lo, hi = reachable_r(law_in, law_out)
    if not lo - 1e-12 <= r <= hi + 1e-12:
        raise ConfigError(
            field,
            r,
            f"reachable Pearson r for these in/out-degree laws is [{lo:.4f}, {hi:.4f}] "
            "(Gaussian copula; skewed or discrete marginals cannot reach +-1)",
        )
    if r >= hi:
        return 1.0
    if r <= lo:
        return -1.0
    return float(optimize.brentq(lambda x: copula_pearson(law_in, law_out, x) - r, -1.0, 1.0, xtol=1e-12))


def sample_correlated_degrees(
    law_in: DegreeLaw, law_out: DegreeLaw, rho: float, n: int, gen: torch.Generator | np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """n pairs (K, L) (int64, on the generator's device): K = min{k : a_k >= z1}, L likewise from
    z2 = rho z1 + sqrt(1 - rho^2) e, with z1, e independent standard normals (float64). With a numpy Generator
    (host Monte Carlo, e.g. of the theory) the draws are numpy and the result is two int64 numpy arrays."""
    rho = check_range("rho", rho, -1.0, 1.0)
    n = check_int("n", n, 0)
    if isinstance(gen, np.random.Generator):
        x1 = gen.standard_normal(n)
        x2 = rho * x1 + math.sqrt(max(1.0 - rho * rho, 0.0)) * gen.standard_normal(n)
        return tuple(_from_normal(law, torch.from_numpy(x)).numpy() for law, x in ((law_in, x1), (law_out, x2)))
    z1 = torch.randn(n, dtype=torch.float64, generator=gen, device=gen.device)
    e = torch.randn(n, dtype=torch.float64, generator=gen, device=gen.device)
    z2 = rho * z1 + math.sqrt(max(1.0 - rho * rho, 0.0)) * e
    return _from_normal(law_in, z1), _from_normal(law_out, z2)


def _from_normal(law: DegreeLaw, z: torch.Tensor) -> torch.Tensor:
    k, a = law.normal_thresholds()
    a_t = torch.as_tensor(a, dtype=torch.float64, device=z.device)
    idx = torch.searchsorted(a_t, z, side="left").clamp_(max=k.size - 1)
    return torch.index_select(torch.as_tensor(k, dtype=torch.int64, device=z.device), 0, idx)


def conditional_out_mean(law_in: DegreeLaw, law_out: DegreeLaw, rho: float, k: np.ndarray) -> np.ndarray:
    """E[L | K = k] under the copula (NaN where P(K = k) = 0), from the z1-interval (a_{k-1}, a_k] of each k."""
    rho = check_range("rho", rho, -1.0, 1.0)
    k = np.asarray(k)
    p = law_in.pmf(k)
    mean_out = float(law_out.mean)
    if rho == 0.0 or _sd(law_out) == 0:
        out = np.full(k.shape, mean_out)
    elif abs(rho) == 1.0:
        kk, ll, du = _monotone_pieces(law_in, law_out, int(rho))
        tab, _, _ = law_in._table
        idx = np.clip(np.searchsorted(tab, k), 0, tab.size - 1)
        mass = np.bincount(kk - tab[0], weights=du, minlength=tab.size)
        num = np.bincount(kk - tab[0], weights=du * ll, minlength=tab.size)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(tab[idx] == k, num[idx] / mass[idx], np.nan)
    else:
        upper, lower = _normal_score(law_in, k), _normal_score(law_in, k - 1)
        if _use_exact(law_in, law_out, rho):  # E[L 1{K = k}] = l_min P_k + sum_j P(z1 in (lower, upper], z2 > b_j)
            b = _finite_thresholds(law_out)
            below = _phi2_ext(upper[..., None], b, rho) - _phi2_ext(lower[..., None], b, rho)
            num = law_out.normal_thresholds()[0][0] * p + np.sum(p[..., None] - below, axis=-1)
            with np.errstate(invalid="ignore", divide="ignore"):
                out = num / p
        else:
            cb, _ = hermite_coefficients(law_out)
            with np.errstate(invalid="ignore", divide="ignore"):
                out = mean_out + (_psi_series(lower, rho, cb) - _psi_series(upper, rho, cb)) / p
        lsup, _ = law_out.support(1e-12)
        out = np.clip(out, lsup[0], lsup[-1])
    return np.where(p > 0, out, np.nan)


def _phi2_ext(h: np.ndarray, b: np.ndarray, rho: float) -> np.ndarray:
    """Phi2(h, b; rho) allowing h = +-inf (b finite)."""
    h, b = np.broadcast_arrays(h, b)
    finite = np.isfinite(h)
    out = np.where(h > 0, special.ndtr(b), 0.0)
    out[finite] = _phi2(h[finite], b[finite], rho)
    return out


def _normal_score(law: DegreeLaw, k: np.ndarray) -> np.ndarray:
    cdf, sf = law.cdf(k), law.sf(k)
    with np.errstate(divide="ignore"):
        return np.where(cdf < 0.5, special.ndtri(cdf), -special.ndtri(sf))


def _psi_series(z: np.ndarray, rho: float, c: np.ndarray) -> np.ndarray:
    """sum_{n >= 1} rho^n c_n psi_{n-1}(z) / sqrt(n), psi_m = phi He_m / sqrt(m!) (0 at z = +-inf)."""
    finite = np.isfinite(z)
    x = np.where(finite, z, 0.0)
    w = np.where(finite, np.exp(-0.5 * x**2) / math.sqrt(2 * math.pi), 0.0)
    h_prev, h = np.zeros_like(x), np.ones_like(x)
    total = np.zeros_like(x)
    n_terms = min(c.size, math.ceil(math.log(1e-17) / math.log(abs(rho))))  # |rho|^n below 1e-17 after that
    for n in range(1, n_terms + 1):
        total += rho**n * c[n - 1] * h / math.sqrt(n)
        h_prev, h = h, (x * h - math.sqrt(n - 1) * h_prev) / math.sqrt(n)
    return w * total
