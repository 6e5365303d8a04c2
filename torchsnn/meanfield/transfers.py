r"""Pluggable transfer functions of the mean-field theory (theory §5.1, §8.1), chosen per population in config
(``neuron.transfer``; ``network.populations.X.neuron.transfer`` for one population).

Every transfer function maps a neuron's input to its stationary rate,

    nu = T(mu, sigma, Lambda, s3),

with mu = mu_ext + tau_m sum lambda_k J_k and sigma^2 = sigma_ext^2 + tau_m sum lambda_k J_k^2 (mV, mV^2) as in
§5.1, Lambda = sum lambda_k the total rate of input events (Hz) and s3 = tau_m sum lambda_k J_k^3 (mV^3), the
two extra block sums the finite-jump correction needs. A transfer function with ``needs_jumps = False`` ignores
the last two (the mean field then does not track them).

* ``siegert``: phi(mu, sigma) of the diffusion approximation (the paper's theory).
* ``finite_jump``: Siegert with the threshold shifted by delta = delta_1 + delta_2 (§8.1, no fitted constant):

      delta_1 = rho sqrt(E[X^2]),  rho = -zeta(1/2) / sqrt(2 pi),
      E[X^2] = sigma_J^2 (dt / tau_m) / (1 - exp(-Lambda dt)) + sigma_G^2 dt / tau_m   (X: voltage increment of a
               step with at least one event; sigma_J^2 the jump part of sigma^2, sigma_G^2 its Gaussian part),
      delta_2 = m3 / (6 m2),  m2 = E[J^2],  m3 = E[J^3] - 3 E[J] E[J^2]   (moments over the event mix
               lambda_k / Lambda), i.e. delta_2 = (s3 - 3 s1 s2 / Lambda) / (6 s2) with s_n = tau_m sum lambda J^n.

  Smooth and vectorised (autograd through phi and delta).
* the exact reference, the dt-grid Markov chain of §8.1, is ``markov.markov_rate_hz`` (one operating point at a
  time, from the explicit list of jump sizes); it validates the two above in the tests.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor

from torchsnn.errors import ConfigError
from torchsnn.meanfield.siegert_numba import HAVE_NUMBA, fast_path_available, siegert_rate_hz_fast
from torchsnn.meanfield.transfer import siegert_rate_hz

_FIRST_ORDER = False


@contextmanager
def first_order_transfers() -> Iterator[None]:
    """Within this block, traced Siegert evaluations on the CPU use the compiled kernel with exact first
    derivatives (enough for Newton's Jacobian; no second derivatives). Used by the solver's Jacobian."""
    global _FIRST_ORDER
    before, _FIRST_ORDER = _FIRST_ORDER, True
    try:
        yield
    finally:
        _FIRST_ORDER = before


def first_order_path_available(*tensors: Tensor | float) -> bool:
    """CPU tensors not wrapped by a torch.func transform, numba present."""
    wrapped = getattr(torch._C._functorch, "is_functorch_wrapped_tensor", None)
    return HAVE_NUMBA and all(
        not isinstance(t, Tensor) or (t.device.type == "cpu" and not (wrapped is not None and wrapped(t)))
        for t in tensors
    )


RHO_OVERSHOOT = 1.4603545088095868 / math.sqrt(2.0 * math.pi)  # -zeta(1/2) / sqrt(2 pi) = 0.5826
TRANSFERS = ("siegert", "finite_jump")
DEFAULT_TRANSFER = "finite_jump"


@dataclass
class SiegertTransfer:
    """phi(mu, sigma) (theory §5.1); the compiled kernel serves value-only evaluations on the CPU."""

    tau_m_ms: float
    theta_mv: float
    v_reset_mv: float
    tau_ref_ms: float
    name: str = "siegert"
    needs_jumps: bool = False

    def rate_hz(self, mu_mv: Tensor, sigma_mv: Tensor, theta_mv: Tensor | float | None = None) -> Tensor:
        theta = self.theta_mv if theta_mv is None else theta_mv
        kw = {"tau_m_ms": self.tau_m_ms, "v_reset_mv": self.v_reset_mv, "tau_ref_ms": self.tau_ref_ms}
        tensors = (mu_mv, sigma_mv, *([theta] if isinstance(theta, Tensor) else []))
        if fast_path_available(*tensors):
            return siegert_rate_hz_fast(mu_mv, sigma_mv, theta_mv=theta, **kw)
        if _FIRST_ORDER and first_order_path_available(*tensors):
            return self._first_order(mu_mv, sigma_mv, theta)
        return siegert_rate_hz(mu_mv, sigma_mv, theta_mv=theta, **kw)

    def _first_order(self, mu: Tensor, sigma: Tensor, theta: Tensor | float) -> Tensor:
        """phi by the compiled kernel, as a tensor whose first derivatives are exact: value + sum of
        (dphi/dx) (x - x.detach()) over x = mu, sigma, theta, with the analytic partials (transfer.py)
        dphi/dmu = c (f(y_th) - f(y_r)) / sigma, dphi/dsigma = c (y_th f(y_th) - y_r f(y_r)) / sigma,
        dphi/dtheta = -c f(y_th) / sigma, c = phi^2 tau_m sqrt(pi), f(u) = erfcx(-u) (log space)."""
        from torchsnn.meanfield.transfer import SIGMA_MIN_MV, _log_f

        theta_t = torch.as_tensor(theta, dtype=torch.float64)
        m, s_, th = (v.detach().to(torch.float64) for v in (mu, sigma, theta_t))
        s_ = s_.clamp(min=SIGMA_MIN_MV)
        with torch.no_grad():
            kw = {"tau_m_ms": self.tau_m_ms, "v_reset_mv": self.v_reset_mv, "tau_ref_ms": self.tau_ref_ms}
            phi = siegert_rate_hz_fast(m, s_, theta_mv=th, **kw)
            y_th, y_r = (th - m) / s_, (self.v_reset_mv - m) / s_
            log_c = 2.0 * torch.log(phi) + math.log(self.tau_m_ms * 1e-3) + 0.5 * math.log(math.pi)
            f_th = torch.exp(log_c + _log_f(y_th)) / s_
            f_r = torch.exp(log_c + _log_f(y_r)) / s_
        out = phi + (f_th - f_r) * (mu - mu.detach())
        out = out + (y_th * f_th - y_r * f_r) * (sigma.clamp(min=SIGMA_MIN_MV) - sigma.detach().clamp(min=SIGMA_MIN_MV))
        if isinstance(theta, Tensor) and theta.requires_grad:
            out = out - f_th * (theta - theta.detach())
        return out

    def __call__(
        self, mu_mv: Tensor, sigma_mv: Tensor, lam_hz: Tensor | None = None, s3_mv3: Tensor | None = None
    ) -> Tensor:
        return self.rate_hz(mu_mv, sigma_mv)


@dataclass
class FiniteJumpTransfer(SiegertTransfer):
    """Siegert with the finite-jump, finite-dt threshold shift of theory §8.1 (module docstring).

    ``sigma_gauss_mv``: the Gaussian (jump-free) part of sigma (GaussianDrive), excluded from the jump moments."""

    dt_ms: float = 0.1
    mu_gauss_mv: float = 0.0
    sigma_gauss_mv: float = 0.0
    name: str = "finite_jump"
    needs_jumps: bool = True

    def threshold_shift_mv(self, mu_mv: Tensor, sigma_mv: Tensor, lam_hz: Tensor, s3_mv3: Tensor) -> Tensor:
        """delta = delta_1 + delta_2 (mV) from the node's mu, sigma and the cell's Lambda and s3."""
        tau_s, dt_s = self.tau_m_ms * 1e-3, self.dt_ms * 1e-3
        s1 = (mu_mv - self.mu_gauss_mv) / tau_s  # sum lambda J (mV/s)
        s2 = ((sigma_mv**2 - self.sigma_gauss_mv**2) / tau_s).clamp(min=1e-12)  # sum lambda J^2
        s3 = s3_mv3 / tau_s
        lam = lam_hz.clamp(min=1e-12)
        ex2 = s2 * dt_s / (-torch.expm1(-lam * dt_s)) + self.sigma_gauss_mv**2 * self.dt_ms / self.tau_m_ms
        delta1 = RHO_OVERSHOOT * torch.sqrt(ex2)
        delta2 = (s3 - 3.0 * s1 * s2 / lam) / (6.0 * s2)
        return delta1 + delta2

    def __call__(
        self, mu_mv: Tensor, sigma_mv: Tensor, lam_hz: Tensor | None = None, s3_mv3: Tensor | None = None
    ) -> Tensor:
        if lam_hz is None or s3_mv3 is None:
            raise ValueError("finite_jump needs the input event rate Lambda and s3 = tau_m sum lambda J^3")
        delta = self.threshold_shift_mv(mu_mv, sigma_mv, lam_hz, s3_mv3)
        return self.rate_hz(mu_mv, sigma_mv, self.theta_mv + delta)


def make_transfer(
    kind: str, lif: dict[str, float], dt_ms: float, mu_gauss_mv: float = 0.0, sigma_gauss_mv: float = 0.0
) -> SiegertTransfer:
    """The transfer function ``kind`` of a LIF population with parameters ``lif`` (tau_m_ms, theta_mv,
    v_reset_mv, tau_ref_ms)."""
    if kind == "siegert":
        return SiegertTransfer(**lif)
    if kind == "finite_jump":
        return FiniteJumpTransfer(**lif, dt_ms=dt_ms, mu_gauss_mv=mu_gauss_mv, sigma_gauss_mv=sigma_gauss_mv)
    raise ConfigError("neuron.transfer", kind, f"must be one of {', '.join(TRANSFERS)}")


__all__ = [
    "DEFAULT_TRANSFER",
    "RHO_OVERSHOOT",
    "TRANSFERS",
    "FiniteJumpTransfer",
    "SiegertTransfer",
    "make_transfer",
]
