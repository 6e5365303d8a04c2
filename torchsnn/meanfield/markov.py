r"""Exact reference for the stationary rate of a LIF neuron on the simulator's time grid (theory §8.1; the method
of Helias et al., Front Comput Neurosci 3:29, 2010): a Markov chain on a voltage lattice.

The simulator updates V <- V e^{-dt/tau_m} + X each step, X the sum of the jumps that arrive in the step
(source k: Poisson(lambda_k dt) events of size J_k), fires when V >= theta, then clamps V at V_r for
n_ref = tau_ref / dt steps (inputs lost) and integrates again from V_r. On a lattice V_j = v_min + j h whose
step h divides every J_k (and theta - V_r):

* the leak maps V_j to W = V_j e^{-dt/tau_m}, split between the two neighbouring lattice points in proportion to
  their distance (a conservative remap: E[W] exact, the added variance <= h^2 / 4 per step);
* the increment X has the exact lattice law of the compound Poisson sum (inverse FFT of its characteristic
  function exp(sum_k lambda_k dt (e^{i w m_k} - 1)), m_k = J_k / h), truncated below 1e-17;
* states at or above theta are absorbing (the spike); mass below v_min is put on v_min (v_min lies far below
  the free membrane potential's reach).

The mean number of steps T_j to the spike from V_j solves (I - Q) T = 1 over the transient states (sparse LU),
and the rate is 1 / ((n_ref + T(V_r)) dt): after the spike step the neuron is clamped for n_ref steps and its
first free step starts from V_r, as in ``LIFPopulation.step``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from torchsnn.errors import ConfigError


def lattice_step_mv(jumps_mv: Sequence[float], gap_mv: float, max_step_mv: float) -> float:
    """The largest h <= max_step_mv dividing every jump and the gap theta - V_r (jumps on a 1e-6 mV grid)."""
    units = [round(abs(j) * 1e6) for j in jumps_mv if j != 0] + [round(gap_mv * 1e6)]
    g = 0
    for u in units:
        g = math.gcd(g, u)
    if g == 0:
        raise ConfigError("jumps_mv", list(jumps_mv), "need at least one non-zero jump")
    return g / 1e6 / math.ceil(g / 1e6 / max_step_mv)


def increment_pmf(sources: Sequence[tuple[float, int]], dt_s: float, tail: float = 1e-17) -> tuple[np.ndarray, int]:
    """Lattice law of the per-step increment sum_k m_k N_k, N_k ~ Poisson(lambda_k dt): (pmf, offset) with
    pmf[i] = P(increment = i - offset)."""
    mean = sum(lam * dt_s * m for lam, m in sources)
    sd = math.sqrt(sum(lam * dt_s * m * m for lam, m in sources))
    reach = max(abs(m) for _, m in sources)
    half = int(abs(mean) + 14 * sd + 12 * reach) + 8
    size = 1 << math.ceil(math.log2(2 * half + 1))
    omega = 2 * np.pi * np.fft.fftfreq(size)
    log_cf = sum(lam * dt_s * (np.exp(-1j * omega * m) - 1.0) for lam, m in sources)
    pmf = np.real(np.fft.ifft(np.exp(log_cf)))  # index i <-> increment i (mod size)
    pmf = np.roll(pmf, size // 2)
    pmf[pmf < tail] = 0.0
    return pmf / pmf.sum(), size // 2


def markov_rate_hz(
    sources: Sequence[tuple[float, float]],
    *,
    extrapolate: bool = True,
    max_step_mv: float = 0.1,
    **lif: float,
) -> float:
    """Stationary rate (Hz) of a LIF neuron on the dt grid driven by Poisson sources ``(rate_hz, jump_mv)``;
    ``lif``: tau_m_ms, theta_mv, v_reset_mv, tau_ref_ms, dt_ms. The lattice error falls roughly like h^1.2; with
    ``extrapolate`` the chain is solved at h, h/2, h/4 (h = ``max_step_mv``) and Aitken's delta-squared
    extrapolation removes the leading term (measured against simulations of 500 neurons at 0.6-45 Hz: within
    1.1 %, one standard error; the h/4 value alone is 0-2.2 % high)."""
    if not extrapolate:
        return lattice_rate_hz(sources, max_step_mv=max_step_mv, **lif)
    r1, r2, r3 = (lattice_rate_hz(sources, max_step_mv=max_step_mv / f, **lif) for f in (1, 2, 4))
    d1, d2 = r2 - r1, r3 - r2
    if d1 == 0 or d2 / d1 <= 0 or d2 / d1 >= 1:  # not a geometric approach: no extrapolation
        return r3
    return r3 - d2 * d2 / (d2 - d1)


def lattice_rate_hz(
    sources: Sequence[tuple[float, float]],
    *,
    tau_m_ms: float,
    theta_mv: float,
    v_reset_mv: float,
    tau_ref_ms: float,
    dt_ms: float,
    max_step_mv: float = 0.02,
    v_min_mv: float | None = None,
) -> float:
    """The chain's rate (Hz) on one lattice of step <= ``max_step_mv`` (signed jumps; sources of one size may be
    merged by adding their rates)."""
    if not sources:
        raise ConfigError("sources", sources, "need at least one Poisson source")
    h = lattice_step_mv([j for _, j in sources], theta_mv - v_reset_mv, max_step_mv)
    dt_s = dt_ms * 1e-3
    lattice = [(lam, round(j / h)) for lam, j in sources if lam > 0 and j != 0]
    pmf, offset = increment_pmf(lattice, dt_s)
    tau_s = tau_m_ms * 1e-3
    mu = tau_s * sum(lam * j for lam, j in sources)
    sd_free = math.sqrt(tau_s * sum(lam * j * j for lam, j in sources) / 2.0)
    low = min(v_reset_mv, mu) - 10.0 * sd_free - 1.0 if v_min_mv is None else v_min_mv
    n_below = math.ceil((v_reset_mv - low) / h)
    v_min = v_reset_mv - n_below * h
    n_states = n_below + round((theta_mv - v_reset_mv) / h)  # V_j < theta for j < n_states
    v = v_min + h * np.arange(n_states)
    decay = math.exp(-dt_ms / tau_m_ms)
    pos = (v * decay - v_min) / h
    lo = np.floor(pos).astype(np.int64)
    frac = pos - lo
    support = np.nonzero(pmf)[0]
    steps, probs = support - offset, pmf[support]
    rows, cols, vals = [], [], []
    for base, weight in ((lo, 1.0 - frac), (lo + 1, frac)):
        target = base[:, None] + steps[None, :]
        p = weight[:, None] * probs[None, :]
        target = np.maximum(target, 0)  # mass below v_min onto v_min
        keep = (target < n_states) & (p > 0)  # target >= n_states: the spike (absorbed)
        r = np.broadcast_to(np.arange(n_states)[:, None], target.shape)
        rows.append(r[keep])
        cols.append(target[keep])
        vals.append(p[keep])
    q = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n_states, n_states))
    steps_to_spike = spla.spsolve((sp.identity(n_states, format="csr") - q).tocsc(), np.ones(n_states))
    n_ref = round(tau_ref_ms / dt_ms)
    return 1.0 / ((n_ref + steps_to_spike[n_below]) * dt_s)


__all__ = ["increment_pmf", "lattice_rate_hz", "lattice_step_mv", "markov_rate_hz"]
