r"""Poisson surrogate of a neuron's recurrent input (theory §8.2, the direct diagnostic of the remaining bias).

Each neuron i receives, besides its external drive, one independent Poisson train per presynaptic population b
with rate Lambda_ib = sum_{j in pre_b(i)} nu_j and jump J_b (mV, signed): for a static block with one weight the
superposition of the independent Poisson trains of i's presynaptic neurons is exactly that train (delays do not
matter for independent Poisson input). In the diffusion approximation it adds, per neuron,

    mu_i += tau_m sum_b J_b Lambda_ib,    sigma_i^2 += tau_m sum_b J_b^2 Lambda_ib,

the same mu and sigma^2 as the real recurrent input at the same rates, with none of its spike-train regularity or
correlations.

Sampling per step: the counts (n_b) ~ prod_b Poisson(Lambda_ib dt) give the jump sum_b J_b n_b. The outcomes
(n_1, ..., n_P) up to a common truncation (upper tail below ``tail`` per input, at the largest rate) form one
table shared by all neurons, ordered by total count; each neuron has its own CDF over it. A draw is one uniform
number and a linear search from the most likely outcomes (about 1 + sum_b Lambda_ib dt comparisons).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch
from scipy import stats
from torch import Tensor

from torchsnn.kernels.backend import Backend
from torchsnn.populations.drive import ExternalDrive, NoDrive
from torchsnn.validation import require

try:
    from numba import njit, prange

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - numba is a dependency; the torch path stays exact without it
    HAVE_NUMBA = False


def surrogate_table(
    events_per_step: np.ndarray, jumps_mv: np.ndarray, tail: float = 1e-17
) -> tuple[np.ndarray, np.ndarray]:
    """Outcome values (T,) float32 (mV, sum_b J_b n_b) and per-neuron CDFs (N, T) float64 of the per-step jump,
    for ``events_per_step`` (N, P) = Lambda_ib dt and ``jumps_mv`` (P,). Each CDF ends at exactly 1."""
    lam = np.asarray(events_per_step, dtype=np.float64)
    require(lam.ndim == 2 and lam.shape[1] == len(jumps_mv), "events_per_step", lam.shape, "(N, n_inputs)")
    require(bool(np.all(lam >= 0) and np.all(np.isfinite(lam))), "events_per_step", "negative", "rates >= 0")
    ranges = []
    for b in range(lam.shape[1]):
        top = float(lam[:, b].max(initial=0.0))
        k = np.arange(int(top + 40 * math.sqrt(top + 1) + 40))
        ranges.append(k[: int(np.searchsorted(-stats.poisson.sf(k, top), -tail)) + 1])
    outcomes = np.array(list(itertools.product(*ranges)), dtype=np.int64).reshape(-1, lam.shape[1])
    outcomes = outcomes[np.lexsort((*outcomes.T[::-1], outcomes.sum(1)))]  # by total count first
    values = (outcomes * np.asarray(jumps_mv, dtype=np.float64)).sum(1)
    logp = np.zeros((lam.shape[0], outcomes.shape[0]))
    for b in range(lam.shape[1]):
        logp += stats.poisson.logpmf(outcomes[None, :, b], lam[:, b : b + 1])
    cdf = np.cumsum(np.exp(logp), axis=1)
    cdf /= cdf[:, -1:]
    return values.astype(np.float32), cdf


if HAVE_NUMBA:

    @njit(cache=True, nogil=True, parallel=True)
    def _invert_rows(u, cdf, values, out):  # pragma: no cover - compiled
        """out[s, n] = values[k], k the first outcome with cdf[n, k] > u[s, n] (``searchsorted(right=True)``)."""
        n_steps, size = u.shape
        last = cdf.shape[1] - 1
        for n in prange(size):
            for s in range(n_steps):
                x = u[s, n]
                k = 0
                while k < last and cdf[n, k] <= x:
                    k += 1
                out[s, n] = values[k]


def invert_rows(u: Tensor, cdf: Tensor, values: Tensor) -> Tensor:
    """Inversion sampling with one CDF per neuron: ``u`` (S, N) float64 uniforms -> (S, N) float32 values."""
    if HAVE_NUMBA and u.device.type == "cpu":
        out = torch.empty(u.shape, dtype=torch.float32)
        _invert_rows(u.numpy(), cdf.numpy(), values.numpy(), out.numpy())
        return out
    idx = torch.searchsorted(cdf, u.T.contiguous(), right=True).clamp_(max=cdf.shape[1] - 1)
    return values[idx].T


class PoissonSurrogateDrive(ExternalDrive):
    r"""``base`` drive plus, per neuron i and input b, an independent Poisson train of rate ``rates_hz[b, i]`` and
    signed jump ``jumps_mv[b]`` (module docstring).

    Args:
        rates_hz: (P, N) Lambda_ib, the summed measured rates of neuron i's presynaptic neurons in population b.
        jumps_mv: P signed jumps J_b (mV).
        base: the population's own external drive (None: none).
    """

    def __init__(self, rates_hz: Tensor | np.ndarray, jumps_mv: list[float], base: ExternalDrive | None = None) -> None:
        super().__init__()
        rates = torch.as_tensor(np.asarray(rates_hz), dtype=torch.float64)
        require(rates.ndim == 2 and rates.shape[0] == len(jumps_mv), "rates_hz", tuple(rates.shape), "(P, N)")
        require(bool((rates >= 0).all()), "rates_hz", "negative", "rates must be >= 0")
        self.register_buffer("rates_hz", rates, persistent=False)
        self.jumps_mv = [float(j) for j in jumps_mv]
        self.base = base if base is not None else NoDrive()
        self.register_buffer("_device_probe", torch.zeros(0), persistent=False)

    def bind(self, tau_m_ms: float, dt_ms: float) -> None:
        super().bind(tau_m_ms, dt_ms)
        self.base.bind(tau_m_ms, dt_ms)
        lam = (self.rates_hz.T.cpu().numpy()) * dt_ms * 1e-3
        values, cdf = surrogate_table(lam, np.array(self.jumps_mv))
        self.register_buffer("table_values_mv", torch.from_numpy(values), persistent=False)
        self.register_buffer("table_cdf", torch.from_numpy(cdf), persistent=False)

    def sample_block(
        self,
        n_steps: int,
        batch: int,
        size: int,
        generator: torch.Generator | None,
        backend: Backend | None = None,
    ) -> Tensor:
        require(size == self.rates_hz.shape[1], "size", size, f"the surrogate has {self.rates_hz.shape[1]} neurons")
        out = self.base.sample_block(n_steps, batch, size, generator, backend)
        u = torch.rand(n_steps * batch, size, generator=generator, dtype=torch.float64, device=self.device)
        jumps = invert_rows(u, self.table_cdf, self.table_values_mv).to(out.device)
        return out + jumps.reshape(n_steps, batch, size)

    def neuron_moments(self, tau_m_ms: float) -> dict[str, Tensor]:
        """Per neuron (N,): mu, sigma (mV) of base + surrogate in the diffusion approximation, the event rate
        Lambda (Hz) and s3 = tau_m sum lambda J^3 (mV^3) of the surrogate part alone."""
        tau_s = tau_m_ms * 1e-3
        j = torch.tensor(self.jumps_mv, dtype=torch.float64)[:, None]
        mu0, sigma0 = self.base.moments(tau_m_ms)
        mu = mu0 + tau_s * (j * self.rates_hz).sum(0)
        var = sigma0**2 + tau_s * (j**2 * self.rates_hz).sum(0)
        return {
            "mu_mv": mu,
            "sigma_mv": var.sqrt(),
            "lam_hz": self.rates_hz.sum(0),
            "s3_mv3": tau_s * (j**3 * self.rates_hz).sum(0),
        }

    def moments(self, tau_m_ms: float) -> tuple[float, float]:
        """Population averages of :meth:`neuron_moments` (mu, and sigma as the root of the mean variance)."""
        m = self.neuron_moments(tau_m_ms)
        return float(m["mu_mv"].mean()), float(m["sigma_mv"].pow(2).mean().sqrt())


def gamma_renewal_input(
    pre_index: np.ndarray,
    post_index: np.ndarray,
    rates_hz: np.ndarray,
    cv: np.ndarray,
    weight_mv: float,
    n_post: int,
    n_steps: int,
    dt_ms: float,
    rng: np.random.Generator,
) -> np.ndarray:
    r"""Input (n_steps, n_post) float32 (mV per step) from one independent stationary gamma renewal train per edge
    (pre j -> post i) with the presynaptic neuron's rate nu_j and ISI CV c_j (shape k = 1/c^2, scale 1/(k nu)).

    Stationary from t = 0: the first event lies at U L, U ~ U(0, 1), L ~ Gamma(k + 1, scale) (the length-biased
    interval that covers t = 0, so the first wait is the forward recurrence time); then ISIs ~ Gamma(k, scale).
    Each event adds ``weight_mv`` in its time step. Memory: one float64 per (step, post neuron) while summing."""
    duration_ms = n_steps * dt_ms
    nu = np.asarray(rates_hz, dtype=np.float64)[pre_index]
    keep = nu > 0
    post = np.asarray(post_index, dtype=np.int64)[keep]
    nu = nu[keep]
    shape = 1.0 / np.clip(np.asarray(cv, dtype=np.float64)[pre_index][keep], 0.05, 5.0) ** 2
    scale_ms = 1e3 / (shape * nu)
    t = rng.uniform(size=nu.size) * rng.gamma(shape + 1.0, scale_ms)
    steps, targets = [], []
    active = np.nonzero(t < duration_ms)[0]
    while active.size:
        steps.append((t[active] / dt_ms).astype(np.int64))
        targets.append(post[active])
        t[active] += rng.gamma(shape[active], scale_ms[active])
        active = active[t[active] < duration_ms]
    flat = np.concatenate(steps) * n_post + np.concatenate(targets) if steps else np.zeros(0, np.int64)
    counts = np.bincount(flat, minlength=n_steps * n_post)
    return (weight_mv * counts.reshape(n_steps, n_post)).astype(np.float32)


class PrecomputedDrive(ExternalDrive):
    """``base`` drive plus a precomputed input (n_steps, N) in mV, handed out block after block from step 0 (one
    replica; the network asks each drive for consecutive blocks). Past its end it adds nothing."""

    def __init__(self, input_mv: np.ndarray, base: ExternalDrive | None = None) -> None:
        super().__init__()
        self.input_mv = torch.from_numpy(np.ascontiguousarray(input_mv, dtype=np.float32))
        self.base = base if base is not None else NoDrive()
        self.cursor = 0
        self.register_buffer("_device_probe", torch.zeros(0), persistent=False)

    def bind(self, tau_m_ms: float, dt_ms: float) -> None:
        super().bind(tau_m_ms, dt_ms)
        self.base.bind(tau_m_ms, dt_ms)

    def sample_block(
        self,
        n_steps: int,
        batch: int,
        size: int,
        generator: torch.Generator | None,
        backend: Backend | None = None,
    ) -> Tensor:
        require(batch == 1 and size == self.input_mv.shape[1], "size", (batch, size), "one replica, N neurons")
        out = self.base.sample_block(n_steps, batch, size, generator, backend)
        part = self.input_mv[self.cursor : self.cursor + n_steps]
        self.cursor += n_steps
        out[: part.shape[0], 0] += part.to(out.device)
        return out

    def moments(self, tau_m_ms: float) -> tuple[float, float]:
        return self.base.moments(tau_m_ms)


__all__ = ["PoissonSurrogateDrive", "PrecomputedDrive", "gamma_renewal_input", "invert_rows", "surrogate_table"]
