r"""Counting noise of a measured rate: the theory's rates passed through the same counting window as the simulation.

A simulated neuron's rate is its spike count over the window, ``N(T) / T``. For a renewal process of rate nu and
ISI coefficient of variation CV the count has mean ``nu T`` (exactly, in the stationary state) and, for
``nu T >> 1``, variance ``CV^2 nu T`` (Cox 1962), so the measured rates of a population spread by
``Var(N/T) = Var(nu) + E[CV^2 nu] / T`` (law of total variance) even where the theory puts every neuron at one rate.
Neurons in the asynchronous irregular state fire irregularly but not as Poisson processes (CV < 1), so the Poisson
count model (CV = 1) overstates that spread.

**ISI CV of a LIF neuron under white noise** (first-passage-time moments: Siegert 1951; Brunel 2000, appendix):
with ``y_th = (theta - mu) / sigma`` and ``y_r = (V_r - mu) / sigma``,

    CV^2 = 2 pi (nu tau_m)^2 Integral_{y_r}^{y_th} e^{x^2} dx Integral_{-inf}^{x} e^{y^2} (1 + erf y)^2 dy,

    nu = 1 / (tau_ref + tau_m sqrt(pi) Integral_{y_r}^{y_th} e^{u^2} (1 + erf u) du)   (the Siegert rate).

Evaluated for many neurons at once on one shared grid (:func:`isi_cv`): the inner integral G(x) and the outer
antiderivative F(x) = Integral_{-inf}^{x} e^{s^2} G(s) ds are accumulated once by the trapezoidal rule in log space
(step 1e-3, so nothing overflows and the relative error is below 1e-4 for |y| <= 30), below x = -50 by their
asymptotic forms G(x) ~ e^{-x^2} / (2 pi |x|^3), F(x) ~ 1 / (4 pi x^2); each neuron then needs F(y_th) - F(y_r).
Above y_th = 40 the neuron fires by rare escapes and CV = 1 to within e^{-1600}. For the finite-jump transfer the
effective threshold theta + delta (theory §8.1) replaces theta, as in the rate.

**Count model** (:func:`renewal_counts`): stationary Gamma-renewal processes with each theory neuron's nu and CV
(shape 1 / CV^2): the first spike after the window opens is drawn from the equilibrium forward-recurrence law
(U X*, U uniform, X* ~ Gamma(shape + 1) the length-biased interval), then ordinary intervals; the count is exact
for that process. Its mean is nu T and its variance CV^2 nu T + O(1).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from scipy.special import erf, erfcx

_STEP = 1e-3
_LOW = -50.0
_HIGH = 40.0
CV_RANGE = (1e-3, 10.0)


def _log_inner(y: np.ndarray) -> np.ndarray:
    """log of e^{y^2} (1 + erf y)^2, without overflow: 2 log erfcx(-y) - y^2 for y < 0, y^2 + 2 log1p(erf y)."""
    out = np.empty_like(y)
    neg = y < 0
    out[neg] = 2.0 * np.log(erfcx(-y[neg])) - y[neg] ** 2
    out[~neg] = y[~neg] ** 2 + 2.0 * np.log1p(erf(y[~neg]))
    return out


def _log_cumtrapz(log_f: np.ndarray, log_start: float, step: float) -> np.ndarray:
    """log of start + cumulative trapezoidal integral of exp(log_f) on a uniform grid."""
    pieces = math.log(0.5 * step) + np.logaddexp(log_f[:-1], log_f[1:])
    return np.logaddexp.accumulate(np.concatenate([[log_start], pieces]))


def _log_outer_antiderivative(top: float) -> tuple[np.ndarray, np.ndarray]:
    """Grid x in [-50, top] and log F(x), F(x) = Integral_{-inf}^{x} e^{s^2} Integral_{-inf}^{s} e^{y^2}(1+erf y)^2."""
    x = np.arange(_LOW, top + 2 * _STEP, _STEP)
    log_g0 = -(_LOW**2) - math.log(2.0 * math.pi) - 3.0 * math.log(-_LOW)  # G(-50) ~ e^{-x^2} / (2 pi |x|^3)
    log_g = _log_cumtrapz(_log_inner(x), log_g0, _STEP)
    log_f0 = -math.log(4.0 * math.pi * _LOW**2)  # F(-50) ~ 1 / (4 pi x^2)
    return x, _log_cumtrapz(x**2 + log_g, log_f0, _STEP)


def isi_cv(
    mu_mv: np.ndarray,
    sigma_mv: np.ndarray,
    *,
    theta_mv: np.ndarray | float,
    v_reset_mv: float,
    tau_m_ms: float,
    tau_ref_ms: float,
) -> np.ndarray:
    """ISI coefficient of variation of LIF neurons with white-noise input of mean ``mu_mv`` and amplitude
    ``sigma_mv`` (module docstring for the equation); arrays broadcast, float64."""
    from torchsnn.meanfield.transfer import SIGMA_MIN_MV, log_siegert_rate

    mu, sigma, theta = np.broadcast_arrays(
        np.asarray(mu_mv, dtype=np.float64),
        np.maximum(np.asarray(sigma_mv, dtype=np.float64), SIGMA_MIN_MV),
        np.asarray(theta_mv, dtype=np.float64),
    )
    y_th, y_r = (theta - mu) / sigma, (v_reset_mv - mu) / sigma
    log_nu = log_siegert_rate(
        torch.from_numpy(mu.copy()),
        torch.from_numpy(sigma.copy()),
        tau_m_ms=tau_m_ms,
        theta_mv=torch.from_numpy(theta.copy()),
        v_reset_mv=v_reset_mv,
        tau_ref_ms=tau_ref_ms,
    ).numpy()
    escape = y_th > _HIGH
    top = float(np.clip(np.max(y_th, initial=0.0), 1.0, _HIGH))
    grid, log_f = _log_outer_antiderivative(top)

    def log_big_f(y: np.ndarray) -> np.ndarray:
        tail = y < _LOW
        inside = np.interp(np.clip(y, _LOW, top), grid, log_f)
        return np.where(tail, -np.log(4.0 * math.pi * np.where(tail, y, 1.0) ** 2), inside)

    b = np.minimum(y_th, top)
    lb, la = log_big_f(b), log_big_f(y_r)
    log_diff = lb + np.log(-np.expm1(np.minimum(la - lb, -1e-300)))
    log_cv2 = math.log(2.0 * math.pi) + 2.0 * (log_nu + math.log(tau_m_ms * 1e-3)) + log_diff
    cv = np.exp(0.5 * log_cv2)
    return np.where(escape, 1.0, cv)


@dataclasses.dataclass
class _Capture:
    """Wraps a population's transfer function and keeps the arguments of its last rate evaluation (mu, sigma,
    jumps); every other attribute (``needs_jumps``, a renewal wrapper's ``variance_factor``, ...) is the wrapped
    one's, so the model computes exactly what it computes without the capture."""

    inner: Any
    args: tuple[torch.Tensor, ...] = ()

    def __getattr__(self, name: str) -> Any:
        if name in ("inner", "args"):
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __call__(self, mu: torch.Tensor, sigma: torch.Tensor, *jumps: torch.Tensor) -> torch.Tensor:
        self.args = (mu, sigma, *jumps)
        return self.inner(mu, sigma, *jumps)

    def adiabatic_rate_hz(
        self, mu: torch.Tensor, sigma: torch.Tensor, deficit: torch.Tensor, *jumps: torch.Tensor
    ) -> torch.Tensor:
        """``meanfield.input_statistics=renewal_adiabatic`` (regularity.py): the CV is taken at (mu, sigma)."""
        self.args = (mu, sigma, *jumps)
        return self.inner.adiabatic_rate_hz(mu, sigma, deficit, *jumps)


@contextmanager
def _capturing(model: Any, name: str) -> Iterator[_Capture]:
    pop = model.populations[name]
    capture = _Capture(pop.transfer_hz)
    model.populations[name] = dataclasses.replace(pop, transfer_hz=capture)
    try:
        yield capture
    finally:
        model.populations[name] = pop


def theory_rates_and_cv(
    model: Any, x: torch.Tensor, name: str, n: int, rng: np.random.Generator, chunk: int = 50_000
) -> tuple[np.ndarray, np.ndarray | None]:
    """``n`` Monte Carlo neurons of population ``name`` at the fixed point ``x`` (drawn as the rate distribution's
    samples are): their rates (Hz) and ISI CVs, from each neuron's mu, sigma and (finite-jump transfer) effective
    threshold. CV is None when the population's transfer function is not a LIF Siegert transfer."""
    from torchsnn.meanfield.transfers import FiniteJumpTransfer, SiegertTransfer

    transfer = model.populations[name].transfer_hz
    transfer = getattr(transfer, "base", transfer)  # a renewal wrapper (regularity.py): the LIF transfer inside
    k, _ = model.populations[name].nodes.sample(n, rng)
    dim = model._gauss[name][0].shape[1]
    xi = rng.standard_normal((n, dim))
    rates, cvs = [], []
    with torch.no_grad(), _capturing(model, name) as capture:
        for start in range(0, n, chunk):
            sl = slice(start, start + chunk)
            r = model.rates_at(x, name, torch.as_tensor(k[sl]), torch.as_tensor(xi[sl]), per_neuron=True)
            rates.append(r.nu_hz[:, 0].numpy())
            if not isinstance(transfer, SiegertTransfer):
                continue
            mu, sigma, *jumps = (a.broadcast_to(r.nu_hz.shape)[:, 0] for a in capture.args)
            theta = torch.full_like(mu, transfer.theta_mv)
            if isinstance(transfer, FiniteJumpTransfer):
                theta = theta + transfer.threshold_shift_mv(mu, sigma, *jumps)
            lif = {"v_reset_mv": transfer.v_reset_mv, "tau_m_ms": transfer.tau_m_ms, "tau_ref_ms": transfer.tau_ref_ms}
            cvs.append(isi_cv(mu.numpy(), sigma.numpy(), theta_mv=theta.numpy(), **lif))
    nu = np.concatenate(rates) if rates else np.zeros(0)
    return nu, (np.concatenate(cvs) if cvs else None)


def renewal_counts(
    nu_hz: np.ndarray, cv: np.ndarray, window_s: float, rng: np.random.Generator, batch: int = 32
) -> np.ndarray:
    """Spike counts in a window of ``window_s`` of stationary Gamma-renewal processes with rates ``nu_hz`` and ISI
    CVs ``cv`` (clipped to CV_RANGE), one per neuron (module docstring)."""
    nu = np.asarray(nu_hz, dtype=np.float64).ravel()
    shape = 1.0 / np.clip(np.asarray(cv, dtype=np.float64).ravel(), *CV_RANGE) ** 2
    counts = np.zeros(nu.size, dtype=np.int64)
    firing = np.flatnonzero(nu > 0)
    scale = 1.0 / (nu[firing] * shape[firing])
    t = rng.uniform(size=firing.size) * rng.gamma(shape[firing] + 1.0, scale)  # first spike after the window opens
    active = t <= window_s
    counts[firing[active]] = 1
    while active.any():
        idx = np.flatnonzero(active)
        steps = t[idx, None] + rng.gamma(shape[firing][idx, None], scale[idx, None], (idx.size, batch)).cumsum(1)
        counts[firing[idx]] += (steps <= window_s).sum(1)
        t[idx] = steps[:, -1]
        active[idx] = steps[:, -1] <= window_s
    return counts
