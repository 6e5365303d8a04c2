"""Predicted distributions of rates (and, for plastic blocks, weights) at a solved fixed point (theory §5.3)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from torchsnn.meanfield.model import MeanFieldModel


@dataclass
class RateDistribution:
    """The law of nu(K, W, Z) over a population (K ~ rho_K, not rho*).

    ``mean_hz`` and ``std_hz`` come from the quadrature rule (deterministic); ``samples_hz`` are Monte Carlo draws
    (K from the degree law or the realised degrees, (W, Z) Gaussian) for the median, CDF, density and comparisons.
    """

    population: str
    mean_hz: float
    std_hz: float
    samples_hz: np.ndarray

    @property
    def median_hz(self) -> float:
        return float(np.median(self.samples_hz))

    def cdf(self, rate_hz: np.ndarray) -> np.ndarray:
        s = np.sort(self.samples_hz)
        return np.searchsorted(s, rate_hz, side="right") / s.size

    def density(self, grid_hz: np.ndarray) -> np.ndarray:
        """Histogram density of the samples on the cells between consecutive points of ``grid_hz`` (at midpoints)."""
        hist, _ = np.histogram(self.samples_hz, bins=grid_hz, density=True)
        return hist

    def with_counting_noise(self, window_s: float, rng: np.random.Generator, fano: float = 1.0) -> np.ndarray:
        """Samples as a finite window would measure them: counts ~ Poisson(nu T) (Fano factor 1; other values use
        a negative-binomial-free Gaussian correction) divided by T."""
        lam = self.samples_hz * window_s
        if fano == 1.0:
            counts = rng.poisson(lam)
        else:
            counts = np.maximum(np.round(lam + np.sqrt(fano * lam) * rng.standard_normal(lam.size)), 0)
        return counts / window_s

    def summary(self) -> dict[str, float]:
        return {
            "rate_mean_hz": self.mean_hz,
            "rate_std_hz": self.std_hz,
            "rate_median_hz": self.median_hz,
            "n_samples": int(self.samples_hz.size),
        }


def rate_distribution(
    model: MeanFieldModel,
    x: torch.Tensor,
    population: str,
    n_samples: int,
    rng: np.random.Generator,
    chunk: int = 50_000,
) -> RateDistribution:
    """Predicted rate distribution of ``population`` at the fixed point ``x``."""
    with torch.no_grad():
        nu = model.node_rates(x, population).nu_hz
        w = model.node_weights(population)
        mean = float((w * nu).sum())
        std = float(((w * (nu - mean) ** 2).sum()).clamp(min=0).sqrt())
        k = model.populations[population].nodes.sample(n_samples, rng)
        xi = rng.standard_normal((n_samples, 2))
        parts = []
        for start in range(0, n_samples, chunk):
            sl = slice(start, start + chunk)
            r = model.rates_at(x, population, torch.as_tensor(k[sl]), torch.as_tensor(xi[sl]), per_neuron=True)
            parts.append(r.nu_hz[:, 0].numpy())
    return RateDistribution(population, mean, std, np.concatenate(parts) if parts else np.zeros(0))
