"""Theory-vs-simulation metrics on rate (or weight) distributions (theory §6)."""

from __future__ import annotations

import numpy as np
from scipy import stats


def compare_samples(
    simulated: np.ndarray,
    predicted: np.ndarray,
    predicted_mean: float | None = None,
    predicted_std: float | None = None,
    unit: str = "hz",
) -> dict[str, float]:
    """KS distance, Wasserstein-1 distance and relative errors of mean and std (simulation relative to theory).

    ``predicted_mean`` / ``predicted_std`` override the sample moments of ``predicted`` (e.g. exact quadrature
    values). Relative errors are signed: (simulated - predicted) / predicted.
    """
    simulated = np.asarray(simulated, dtype=np.float64).ravel()
    predicted = np.asarray(predicted, dtype=np.float64).ravel()
    mean_p = float(predicted.mean()) if predicted_mean is None else predicted_mean
    std_p = float(predicted.std()) if predicted_std is None else predicted_std
    return {
        "ks": float(stats.ks_2samp(simulated, predicted).statistic),
        f"wasserstein_{unit}": float(stats.wasserstein_distance(simulated, predicted)),
        "mean_rel_error": float((simulated.mean() - mean_p) / mean_p) if mean_p else float("nan"),
        "std_rel_error": float((simulated.std() - std_p) / std_p) if std_p else float("nan"),
    }


def synchrony_or_none(chi: float, fraction_silent: float) -> float | None:
    """The synchrony measure chi of a population, or None where it means nothing: a population without a spike in
    the window (chi then measures how alike the subthreshold relaxations are, e.g. 0.98 for a silent network, not
    synchrony of firing) or a non-finite value (no voltage samples)."""
    if fraction_silent >= 1.0 or not np.isfinite(chi):
        return None
    return float(chi)
