"""Heavy-tailed degree laws with a given mean and coefficient of variation cv = std / mean.

- ``NegativeBinomialDegree``: Var K = mean + mean^2 / n, i.e. n = 1 / (cv^2 - 1 / mean), p = n / (n + mean);
  it needs cv^2 > 1 / mean (the Poisson variance is the least a negative binomial can have).
- ``GammaDegree`` and ``LognormalDegree``: a continuous X (gamma with shape 1 / cv^2 and scale mean cv^2;
  lognormal with sigma^2 = ln(1 + cv^2), mu = ln(mean) - sigma^2 / 2) rounded to the nearest integer::

      P(K = k) = F_X(k + 1/2) - F_X(k - 1/2)  (k >= 1),    P(K = 0) = F_X(1/2)

  cv = 0 is the point mass at ``mean`` rounded (a fixed degree). The exact mean and cv of the rounded law are the
  ``mean`` and ``cv`` properties; the parameters are kept as given in ``mean_param`` and ``cv_param``.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from typing import Any

import numpy as np
from scipy import stats

from torchsnn.scaffold.degree_laws import DegreeLaw, ScipyDegreeLaw, check_mean
from torchsnn.validation import check_non_negative, require


class NegativeBinomialDegree(ScipyDegreeLaw):
    """K ~ NegativeBinomial(n, p) with E[K] = mean and std / mean = cv (cv^2 > 1 / mean)."""

    family = "negative_binomial"

    def __init__(self, mean: float | None, cv: float) -> None:
        mean = check_mean("mean", mean, positive=True)
        self.cv_param = check_non_negative("cv", cv)
        require(
            mean is None or cv**2 > 1.0 / mean,
            "cv",
            cv,
            f"cv^2 must exceed 1 / mean = {1.0 / mean if mean else float('nan'):.4g} (a negative binomial is "
            "over-dispersed; use PoissonDegree for cv^2 = 1 / mean or GammaDegree for less variance)",
        )
        super().__init__(mean)

    def params(self) -> dict[str, Any]:
        return {"cv": self.cv_param}

    def with_mean(self, mean: float) -> NegativeBinomialDegree:
        return NegativeBinomialDegree(mean, self.cv_param)

    def _dist(self) -> Any:
        n = 1.0 / (self.cv_param**2 - 1.0 / self.mean_param)
        return stats.nbinom(n, n / (n + self.mean_param))


class RoundedContinuousDegree(DegreeLaw):
    """A continuous law X >= 0 (``_dist``) with mean and cv, rounded to the nearest integer."""

    def __init__(self, mean: float | None, cv: float) -> None:
        super().__init__(check_mean("mean", mean, positive=True))
        self.cv_param = check_non_negative("cv", cv)

    @abstractmethod
    def _dist(self) -> Any:
        """The frozen scipy law of X (cv > 0)."""

    def params(self) -> dict[str, Any]:
        return {"cv": self.cv_param}

    def with_mean(self, mean: float) -> RoundedContinuousDegree:
        return type(self)(mean, self.cv_param)

    def _point(self) -> int:
        """The integer nearest to the mean (cv = 0): k with k - 1/2 < mean <= k + 1/2."""
        return math.ceil(self.mean_param - 0.5)

    def _cdf(self, k: np.ndarray) -> np.ndarray:
        if self.cv_param == 0:
            return (k >= self._point()).astype(float)
        return np.where(k < 0, 0.0, self._dist().cdf(k + 0.5))

    def _sf(self, k: np.ndarray) -> np.ndarray:
        if self.cv_param == 0:
            return (k < self._point()).astype(float)
        return np.where(k < 0, 1.0, self._dist().sf(k + 0.5))

    def _bounds(self, tail: float) -> tuple[int, int]:
        if self.cv_param == 0:
            return self._point(), self._point()
        d = self._dist()
        return max(math.floor(d.ppf(tail / 2) - 0.5), 0), math.ceil(d.isf(tail / 2) + 0.5)


class GammaDegree(RoundedContinuousDegree):
    """X ~ Gamma(shape 1 / cv^2, scale mean cv^2), rounded to the nearest integer."""

    family = "gamma"

    def _dist(self) -> Any:
        return stats.gamma(1.0 / self.cv_param**2, scale=self.mean_param * self.cv_param**2)


class LognormalDegree(RoundedContinuousDegree):
    """X = exp(mu + sigma Z), sigma^2 = ln(1 + cv^2), mu = ln(mean) - sigma^2 / 2, rounded to the nearest integer."""

    family = "lognormal"

    def _dist(self) -> Any:
        sigma2 = math.log1p(self.cv_param**2)
        return stats.lognorm(math.sqrt(sigma2), scale=self.mean_param * math.exp(-sigma2 / 2))
