"""Integer degree laws rho_K(k) = P(K = k), k = 0, 1, 2, ... (theory.md §2).

A law is defined by its parameters (``mean_param`` and, for heavy tails, ``cv``); everything else (pmf, cdf,
quantiles, exact moments) is computed from them. The rounded continuous laws (gamma, lognormal) put on each
integer the mass of a continuous variable X rounded to the nearest integer::

    P(K = k) = F_X(k + 1/2) - F_X(k - 1/2),  k >= 1;    P(K = 0) = F_X(1/2)

so their exact mean and cv (the properties ``mean``, ``cv``, ``variance``, computed from the pmf) differ slightly
from the parameters, which are kept as given. Numerical work runs on a table over the range that holds all but
``TABLE_TAIL`` of the mass; degrees are dimensionless.

A law whose ``mean_param`` is ``None`` is a shape only (e.g. the out-degree law of a configuration model, whose
mean follows from n_post E[K] = n_pre E[L]); :meth:`DegreeLaw.with_mean` gives the complete law.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from functools import cached_property
from typing import Any, ClassVar

import numpy as np
from scipy import special, stats

from torchsnn.validation import check_int, require

TABLE_TAIL = 1e-15  # tail mass left out of the numerical tables (exact moments, quantiles, copula)


class DegreeLaw(ABC):
    """A law over the non-negative integers. Subclasses give ``_cdf``, ``_sf``, ``_bounds`` and ``with_mean``."""

    family: ClassVar[str] = ""

    def __init__(self, mean: float | None) -> None:
        self.mean_param = mean

    # ------------------------------------------------------------------ subclass interface
    @abstractmethod
    def params(self) -> dict[str, Any]:
        """Shape parameters besides the mean (e.g. ``{"cv": 0.5}``)."""

    @abstractmethod
    def with_mean(self, mean: float) -> DegreeLaw:
        """The same family and shape parameters with a new mean."""

    @abstractmethod
    def _cdf(self, k: np.ndarray) -> np.ndarray:
        """P(K <= k) at integer-valued float k."""

    @abstractmethod
    def _sf(self, k: np.ndarray) -> np.ndarray:
        """P(K > k) at integer-valued float k (accurate in the upper tail)."""

    @abstractmethod
    def _bounds(self, tail: float) -> tuple[int, int]:
        """Integers lo <= hi with P(K < lo) <= tail / 2 and P(K > hi) <= tail / 2."""

    # ------------------------------------------------------------------ distribution functions
    def _ready(self) -> None:
        require(
            self.mean_param is not None,
            "mean",
            None,
            "is not set: the connectivity rule derives it (with_mean) before the law is evaluated",
        )

    def cdf(self, k: np.ndarray) -> np.ndarray:
        """F(k) = P(K <= k)."""
        self._ready()
        return self._cdf(np.floor(np.asarray(k, dtype=float)))

    def sf(self, k: np.ndarray) -> np.ndarray:
        """1 - F(k) = P(K > k), computed without cancellation in the upper tail."""
        self._ready()
        return self._sf(np.floor(np.asarray(k, dtype=float)))

    def pmf(self, k: np.ndarray) -> np.ndarray:
        """P(K = k) = F(k) - F(k - 1) (as S(k - 1) - S(k) above the median); 0 at non-integer or negative k."""
        self._ready()
        k = np.asarray(k, dtype=float)
        ki = np.floor(k)
        cdf = self._cdf(ki)
        p = np.where(cdf < 0.5, cdf - self._cdf(ki - 1), self._sf(ki - 1) - self._sf(ki))
        return np.where((ki == k) & (k >= 0), np.clip(p, 0.0, 1.0), 0.0)

    @cached_property
    def _table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """k values (int64) over the range holding all but TABLE_TAIL of the mass, with F(k) and S(k)."""
        self._ready()
        lo, hi = self._bounds(TABLE_TAIL)
        k = np.arange(max(lo, 0), max(hi, lo, 0) + 1, dtype=np.int64)
        cdf = np.maximum.accumulate(self._cdf(k.astype(float)))
        sf = np.minimum.accumulate(self._sf(k.astype(float)))
        return k, cdf, sf

    def ppf(self, q: np.ndarray) -> np.ndarray:
        """Integer quantile F^{-1}(q) = min{k : F(k) >= q} (int64), vectorised; q in [0, 1]."""
        q = np.asarray(q, dtype=float)
        ok = bool(np.all((q >= 0) & (q <= 1)))
        require(ok, "q", f"min {np.min(q)}, max {np.max(q)}" if q.size else q, "quantile levels must lie in [0, 1]")
        k, cdf, _ = self._table
        return k[np.minimum(np.searchsorted(cdf, q, side="left"), k.size - 1)]

    def normal_thresholds(self) -> tuple[np.ndarray, np.ndarray]:
        """k values and a_k = Phi^{-1}(F(k)), so that K = min{k : a_k >= z} for a standard normal z.

        The upper half uses a_k = -Phi^{-1}(S(k)) to keep the precision of the tail.
        """
        k, cdf, sf = self._table
        with np.errstate(divide="ignore"):
            a = np.where(cdf < 0.5, special.ndtri(cdf), -special.ndtri(sf))
        return k, a

    def support(self, tail: float = 1e-12) -> tuple[np.ndarray, np.ndarray]:
        """k values (int64) holding all but ``tail`` of the mass, with their probabilities renormalised to 1."""
        self._ready()
        require(0 < tail < 1, "tail", tail, "must lie in (0, 1)")
        lo, hi = self._bounds(tail)
        k = np.arange(max(lo, 0), max(hi, lo, 0) + 1, dtype=np.int64)
        p = self.pmf(k)
        keep = p > 0
        return k[keep], p[keep] / p[keep].sum()

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n independent degrees (int64) by inversion: K = F^{-1}(U), U uniform on [0, 1)."""
        n = check_int("n", n, 0)
        return self.ppf(rng.random(n))

    # ------------------------------------------------------------------ exact moments of the law as defined
    @cached_property
    def _moments(self) -> tuple[float, float]:
        k, p = self.support(TABLE_TAIL)
        mean = float(np.dot(k, p))
        return mean, float(np.dot((k - mean) ** 2, p))

    @property
    def mean(self) -> float | None:
        """Exact E[K] of the law (None while the mean is still to be derived)."""
        return None if self.mean_param is None else self._moments[0]

    @property
    def variance(self) -> float:
        """Exact Var[K] of the law, rounding included."""
        self._ready()
        return self._moments[1]

    @property
    def cv(self) -> float:
        """Exact sqrt(Var K) / E[K] (0 when E[K] = 0)."""
        self._ready()
        mean, var = self._moments
        return float(np.sqrt(var) / mean) if mean > 0 else 0.0

    def describe(self) -> dict[str, Any]:
        """Family and parameters (and, when the mean is set, the exact mean and cv), for summaries."""
        out: dict[str, Any] = {"family": self.family, "mean": self.mean_param, **self.params()}
        if self.mean_param is not None:
            out.update(exact_mean=self.mean, exact_cv=self.cv)
        return out

    def _key(self) -> tuple[Any, ...]:
        return (type(self), self.mean_param, tuple(sorted(self.params().items())))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DegreeLaw) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in {"mean": self.mean_param, **self.params()}.items())
        return f"{type(self).__name__}({args})"


class ScipyDegreeLaw(DegreeLaw):
    """A law given by a frozen ``scipy.stats`` discrete distribution (``_dist``)."""

    @abstractmethod
    def _dist(self) -> Any: ...

    def _cdf(self, k: np.ndarray) -> np.ndarray:
        return np.where(k < 0, 0.0, self._dist().cdf(k))

    def _sf(self, k: np.ndarray) -> np.ndarray:
        return np.where(k < 0, 1.0, self._dist().sf(k))

    def _bounds(self, tail: float) -> tuple[int, int]:
        d = self._dist()
        lo, hi = d.ppf(tail / 2), d.isf(tail / 2)
        lo = 0 if not np.isfinite(lo) else max(int(lo), 0)
        hi = int(d.ppf(1.0)) if not np.isfinite(hi) else int(hi)
        return lo, max(hi, lo)


def check_mean(field: str, mean: float | None, *, positive: bool = False) -> float | None:
    """Validate a mean degree (None allowed: derived later)."""
    if mean is None:
        return None
    ok = isinstance(mean, (int, float)) and not isinstance(mean, bool) and np.isfinite(mean)
    require(
        ok and (mean > 0 if positive else mean >= 0),
        field,
        mean,
        "must be a finite number > 0" if positive else "must be a finite number >= 0",
    )
    return float(mean)


class FixedDegree(DegreeLaw):
    """K = mean with probability 1 (mean an integer >= 0)."""

    family = "fixed"

    def __init__(self, mean: float | None) -> None:
        mean = check_mean("mean", mean)
        require(mean is None or float(mean).is_integer(), "mean", mean, "a fixed degree must be an integer >= 0")
        super().__init__(None if mean is None else int(mean))

    def params(self) -> dict[str, Any]:
        return {}

    def with_mean(self, mean: float) -> FixedDegree:
        return FixedDegree(mean)

    def _cdf(self, k: np.ndarray) -> np.ndarray:
        return (k >= self.mean_param).astype(float)

    def _sf(self, k: np.ndarray) -> np.ndarray:
        return (k < self.mean_param).astype(float)

    def _bounds(self, tail: float) -> tuple[int, int]:
        return int(self.mean_param), int(self.mean_param)


class BinomialDegree(ScipyDegreeLaw):
    """K ~ Binomial(n_trials, p), p = mean / n_trials (Erdős–Rényi; the rule sets n_trials to the candidates)."""

    family = "binomial"

    def __init__(self, mean: float | None, n_trials: int | None = None) -> None:
        mean = check_mean("mean", mean)
        if n_trials is not None:
            n_trials = check_int("n_trials", n_trials, 0)
            require(mean is None or mean <= n_trials, "mean", mean, f"must be <= n_trials = {n_trials}")
        super().__init__(mean)
        self.n_trials = n_trials

    def params(self) -> dict[str, Any]:
        return {"n_trials": self.n_trials}

    def with_mean(self, mean: float) -> BinomialDegree:
        return BinomialDegree(mean, self.n_trials)

    def with_trials(self, n_trials: int) -> BinomialDegree:
        """The law with the number of trials set (the number of candidate partners)."""
        return BinomialDegree(self.mean_param, n_trials)

    def _dist(self) -> Any:
        require(
            self.n_trials is not None,
            "n_trials",
            None,
            "is not set: the connectivity rule sets it to the number of candidate partners (with_trials)",
        )
        p = self.mean_param / self.n_trials if self.n_trials > 0 else 0.0
        return stats.binom(self.n_trials, p)


class PoissonDegree(ScipyDegreeLaw):
    """K ~ Poisson(mean) (cv = 1 / sqrt(mean))."""

    family = "poisson"

    def __init__(self, mean: float | None) -> None:
        super().__init__(check_mean("mean", mean))

    def params(self) -> dict[str, Any]:
        return {}

    def with_mean(self, mean: float) -> PoissonDegree:
        return PoissonDegree(mean)

    def _dist(self) -> Any:
        return stats.poisson(self.mean_param)
