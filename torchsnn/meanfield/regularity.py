r"""Renewal input statistics: the input variance of a neuron whose presynaptic spike trains are renewal processes
rather than Poisson (theory §8.2, ``meanfield.input_statistics: poisson | renewal``).

**Variance of the filtered input.** A spike train with autocovariance C(s) = nu delta(s) + nu (m(|s|) - nu)
(m the renewal density) drives the free membrane V = sum_k w exp(-(t - t_k) / tau_m). Its variance is

    Var V = w^2 Integral C(s) (tau_m / 2) exp(-|s| / tau_m) ds = (tau_m / 2) w^2 nu F,
    F = 1 + 2 (m^(1/tau_m) - nu tau_m),   m^(p) = f^(p) / (1 - f^(p)),

with f^(p) = E[exp(-p ISI)] the Laplace transform of the ISI density. Poisson trains (f^ = nu / (nu + p)) give
F = 1 exactly; regular trains (CV < 1) give F < 1 (positive for any renewal law), bursty ones F > 1. The
correction replaces each input's nu w^2 in sigma^2 = tau_m sum w^2 nu by nu w^2 F(presynaptic neuron): the
diffusion approximation with the free-membrane variance of renewal input, no fitted constant (``renewal``: the
change of variance as white noise). The deficit lies at lags up to the presynaptic ISI (100-200 ms here), slow
against tau_m: ``renewal_adiabatic`` keeps sigma^2 Poisson and takes the change of Var V, D / 2 with
D = tau_m sum w^2 nu (F - 1), as a slow fluctuation of mu (rate phi exp(phi_mumu D / (4 phi)), the neuron following it
adiabatically). Measured open loop (each neuron at its measured input) on hetero_static: Poisson -9 %, renewal
+7 %, renewal_adiabatic -3 % (E); see experiments/poisson_surrogate/README.md. Populations whose rates are
implicit (pre-and-post rules, model._implicit_rates) keep F = 1 for their output trains; the quenched spread of
D across neurons of equal in-degrees is neglected (only its mean K E*[w^2 nu (F - 1)] enters).

**ISI transform of the LIF at p = 1/tau_m.** For tau_m dV = (mu - V) dt + sigma sqrt(tau_m) dW, threshold theta,
reset V_r and dead time tau_ref, u(y) = E_y[exp(-p T)] (y = (V - mu) / sigma) solves u'' - 2 y u' - 2 p tau_m u = 0
with u(y_theta) = 1, bounded as y -> -inf. At p tau_m = 1 the solution is erfcx(-y) (parabolic cylinder function
of order -1), so in closed form

    f^(1/tau_m) = exp(-tau_ref / tau_m) erfcx(-y_r) / erfcx(-y_theta),   y = (V - mu) / sigma,

computed in log space (``transfer._log_f``); smooth and differentiable in mu, sigma and theta. With the
finite-jump transfer function (§8.1) theta is the shifted threshold theta + delta, the one that gives its rate.

**ISI CV** (Brunel 2000, appendix): CV^2 = 2 pi (nu tau_m)^2 Integral_{y_r}^{y_theta} e^{x^2} dx
Integral_{-inf}^x e^{y^2} (1 + erf y)^2 dy, for diagnostics and tests (:func:`cv_isi`, numpy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy import integrate, special
from torch import Tensor

from torchsnn.errors import ConfigError
from torchsnn.meanfield.transfer import SIGMA_MIN_MV, _log_f

INPUT_STATISTICS = ("poisson", "renewal", "renewal_adiabatic")
ADIABATIC_EPS_MV2 = 1e-8
DEFAULT_INPUT_STATISTICS = "poisson"
MIN_FACTOR = 1e-3


def isi_laplace_at_tau_m(
    mu_mv: Tensor, sigma_mv: Tensor, theta_mv: Tensor | float, v_reset_mv: float, tau_ref_ms: float, tau_m_ms: float
) -> Tensor:
    """f^(1/tau_m) = E[exp(-ISI / tau_m)] of the diffusion LIF (module docstring), in (0, exp(-tau_ref/tau_m))."""
    sigma = sigma_mv.clamp(min=SIGMA_MIN_MV)
    y_th, y_r = (theta_mv - mu_mv) / sigma, (v_reset_mv - mu_mv) / sigma
    return torch.exp(-tau_ref_ms / tau_m_ms + _log_f(y_r) - _log_f(y_th))


def renewal_variance_factor(nu_hz: Tensor, laplace: Tensor, tau_m_ms: float) -> Tensor:
    """F = 1 + 2 (f^ / (1 - f^) - nu tau_m) from the rate and f^(1/tau_m) of a renewal train (>= MIN_FACTOR)."""
    renewal = laplace / (1.0 - laplace).clamp(min=1e-300)
    return (1.0 + 2.0 * (renewal - nu_hz * tau_m_ms * 1e-3)).clamp(min=MIN_FACTOR)


def poisson_laplace(nu_hz: Tensor, tau_m_ms: float) -> Tensor:
    """f^(1/tau_m) of a Poisson train (exponential ISIs): nu / (nu + 1/tau_m); gives F = 1."""
    return nu_hz / (nu_hz + 1e3 / tau_m_ms)


def gamma_laplace(nu_hz: Tensor, cv: float | Tensor, tau_m_ms: float) -> Tensor:
    """f^(1/tau_m) of gamma-distributed ISIs with mean 1/nu and coefficient of variation cv."""
    return (1.0 + (1e3 / tau_m_ms) * cv**2 / nu_hz) ** (-1.0 / cv**2)


@dataclass
class RenewalTransfer:
    """A transfer function (transfers.py) whose neurons' output trains count as renewal processes: called like
    the wrapped one, plus :meth:`variance_factor`, the F of a neuron's output train seen by its targets. The mean
    field multiplies every sigma feature of a block by the F of its presynaptic node (``model.block_moments``).

    ``adiabatic``: the change of sigma^2 that F implies, D = tau_m sum w^2 nu (F - 1), is taken as a slow change
    of the mean input instead (:meth:`adiabatic_rate_hz`); the model then tracks E*[w^2 nu (F - 1)] per block."""

    base: Any
    adiabatic: bool = False

    def __getattr__(self, name: str) -> Any:  # tau_m_ms, theta_mv, needs_jumps, name, ... of the wrapped one
        if name == "base":
            raise AttributeError(name)
        return getattr(self.base, name)

    def __call__(self, mu_mv: Tensor, sigma_mv: Tensor, lam_hz: Tensor | None = None, s3: Tensor | None = None):
        return self.base(mu_mv, sigma_mv, lam_hz, s3)

    def threshold_mv(self, mu_mv: Tensor, sigma_mv: Tensor, lam_hz: Tensor | None, s3: Tensor | None):
        """The threshold whose Siegert rate is the wrapped transfer's rate (shifted for finite jumps)."""
        if getattr(self.base, "needs_jumps", False):
            return self.base.theta_mv + self.base.threshold_shift_mv(mu_mv, sigma_mv, lam_hz, s3)
        return self.base.theta_mv

    def adiabatic_rate_hz(
        self, mu_mv: Tensor, sigma_mv: Tensor, deficit_mv2: Tensor, lam_hz: Tensor | None = None, s3=None
    ) -> Tensor:
        """nu = phi exp(a / phi), a = (1/2) phi_mumu v, v = D / 2 the slow part of Var V (negative for regular
        trains): phi + a to first order in v, and positive where the expansion is large (strongly sub-threshold
        neurons, where phi + a alone can turn negative). a by the 3-point rule (c / 2) (phi(mu + h) + phi(mu - h)
        - 2 phi(mu)), h^2 = |v| + eps, c = v / h^2 (exact for quadratic phi); phi at the threshold of the unshifted
        input (finite jumps: its own shift)."""
        theta = self.threshold_mv(mu_mv, sigma_mv, lam_hz, s3)
        v = deficit_mv2 / 2.0
        h2 = v.abs() + ADIABATIC_EPS_MV2
        h = torch.sqrt(h2)
        phi0, up, down = (self.base.rate_hz(mu_mv + k * h, sigma_mv, theta) for k in (0.0, 1.0, -1.0))
        a = 0.5 * (v / h2) * (up + down - 2.0 * phi0)
        return phi0 * torch.exp(a / phi0.clamp(min=1e-300))

    def variance_factor(
        self, nu_hz: Tensor, mu_mv: Tensor, sigma_mv: Tensor, lam_hz: Tensor | None = None, s3: Tensor | None = None
    ) -> Tensor:
        b = self.base
        theta = self.threshold_mv(mu_mv, sigma_mv, lam_hz, s3)
        laplace = isi_laplace_at_tau_m(mu_mv, sigma_mv, theta, b.v_reset_mv, b.tau_ref_ms, b.tau_m_ms)
        return renewal_variance_factor(nu_hz, laplace, b.tau_m_ms)


def with_input_statistics(transfer: Any, kind: str) -> Any:
    """``transfer`` as it is (``poisson``) or wrapped as a :class:`RenewalTransfer` (``renewal``)."""
    if kind == "poisson":
        return transfer
    if kind in ("renewal", "renewal_adiabatic"):
        if not hasattr(transfer, "v_reset_mv"):
            raise ConfigError("meanfield.input_statistics", kind, "renewal needs a LIF transfer function")
        return RenewalTransfer(transfer, adiabatic=kind == "renewal_adiabatic")
    raise ConfigError("meanfield.input_statistics", kind, f"must be one of {', '.join(INPUT_STATISTICS)}")


def cv_isi(
    mu_mv: float, sigma_mv: float, theta_mv: float, v_reset_mv: float, tau_ref_ms: float, tau_m_ms: float
) -> float:
    """ISI coefficient of variation of the diffusion LIF (Brunel 2000), by nested adaptive quadrature."""
    y_th, y_r = (theta_mv - mu_mv) / sigma_mv, (v_reset_mv - mu_mv) / sigma_mv

    def inner(x: float) -> float:  # Integral_{-inf}^x erfcx(-y)^2 exp(-y^2) dy, in exp(-x^2) units
        val, _ = integrate.quad(lambda y: special.erfcx(-y) ** 2 * math.exp(-(y * y) + x * x), -np.inf, x, limit=200)
        return val

    outer, _ = integrate.quad(inner, y_r, y_th, limit=200)  # Integral e^{x^2} inner(x) dx with e^{x^2} folded in
    mean_t = tau_ref_ms + tau_m_ms * math.sqrt(math.pi) * integrate.quad(lambda u: special.erfcx(-u), y_r, y_th)[0]
    nu_tau = tau_m_ms / mean_t
    return math.sqrt(2.0 * math.pi * nu_tau**2 * outer)


__all__ = [
    "DEFAULT_INPUT_STATISTICS",
    "INPUT_STATISTICS",
    "RenewalTransfer",
    "cv_isi",
    "gamma_laplace",
    "isi_laplace_at_tau_m",
    "poisson_laplace",
    "renewal_variance_factor",
    "with_input_statistics",
]
