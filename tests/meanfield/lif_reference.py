"""An independent single-neuron LIF simulation for the transfer-function tests (theory §1, §8.1).

N independent neurons on the dt grid, V <- V e^{-dt/tau_m} + X, spike at V >= theta, then V_r for tau_ref / dt
steps with the inputs lost (the simulator's convention). X is drawn by inverting the CDF of the per-step
increment, tabulated here by direct convolution of each source's Poisson count law (not the FFT of markov.py).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from scipy import stats


def increment_table(sources: list[tuple[float, float]], dt_ms: float, h_mv: float) -> tuple[np.ndarray, np.ndarray]:
    """(values_mv, cdf) of the per-step increment sum_k J_k N_k, N_k ~ Poisson(lambda_k dt), J_k multiples of h."""
    pmf, lo = np.ones(1), 0
    for lam, j in sources:
        m = round(j / h_mv)
        mean = lam * dt_ms * 1e-3
        counts = np.arange(int(mean + 12 * math.sqrt(mean) + 12) + 1)
        p = stats.poisson.pmf(counts, mean)
        spread = np.zeros(abs(m) * counts[-1] + 1)
        spread[abs(m) * counts] = p
        if m < 0:
            spread, shift = spread[::-1], m * counts[-1]
        else:
            shift = 0
        pmf, lo = np.convolve(pmf, spread), lo + shift
    keep = pmf > 1e-18
    values = (lo + np.arange(pmf.size))[keep] * h_mv
    cdf = np.cumsum(pmf[keep])
    return values, cdf / cdf[-1]


@njit(cache=True)
def _simulate(n, warm, steps, decay, theta, v_r, n_ref, values, cdf, guide, seed):  # pragma: no cover - compiled
    np.random.seed(seed)
    g = guide.size
    counts = np.zeros(n, dtype=np.int64)
    for i in range(n):
        v = v_r + (theta - v_r) * np.random.random()
        ref = 0
        for s in range(warm + steps):
            u = np.random.random()
            k = guide[int(u * g)]
            while cdf[k] <= u:
                k += 1
            x = values[k]
            if ref > 0:
                ref -= 1
                v = v_r
                continue
            v = v * decay + x
            if v >= theta:
                if s >= warm:
                    counts[i] += 1
                v = v_r
                ref = n_ref
    return counts


def simulated_rate_hz(
    sources: list[tuple[float, float]],
    *,
    tau_m_ms: float,
    theta_mv: float,
    v_reset_mv: float,
    tau_ref_ms: float,
    dt_ms: float,
    h_mv: float,
    n: int,
    duration_s: float,
    warmup_s: float = 0.2,
    seed: int = 0,
) -> tuple[float, float]:
    """(rate, standard error) in Hz over n independent neurons, each measured after ``warmup_s``."""
    values, cdf = increment_table(sources, dt_ms, h_mv)
    decay = math.exp(-dt_ms / tau_m_ms)
    n_ref = round(tau_ref_ms / dt_ms)
    warm, steps = round(warmup_s * 1e3 / dt_ms), round(duration_s * 1e3 / dt_ms)
    guide = np.searchsorted(cdf, np.arange(4096) / 4096, side="right").astype(np.int64)
    counts = _simulate(n, warm, steps, decay, theta_mv, v_reset_mv, n_ref, values, cdf, guide, seed)
    rates = counts / duration_s
    return float(rates.mean()), float(rates.std(ddof=1) / math.sqrt(n))
