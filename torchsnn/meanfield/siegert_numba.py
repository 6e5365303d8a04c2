r"""A compiled (numba) evaluation of the Siegert integral for large node sets, with the same fixed-node scheme as
``transfer.py`` (theory §5.1), so its values agree with ``siegert_rate_hz`` to rounding (measured <= 1e-13
relative, ``tests/meanfield/test_siegert_numba.py``):

    log I(a, b) = log Integral_a^b erfcx(-u) du = logaddexp(log I_neg, log I_pos)

I_neg: tau = log(1 - u) on [log(1 - min(b, 0)), log(1 - a)], 20 Gauss-Legendre nodes of e^tau erfcx(e^tau - 1);
I_pos: anchored at b, t = b - u on [0, width], 24 nodes of exp(-t (2b - t) + log(1 + erf(b - t)) - log(1 + erf b)).

erfcx(x) for x >= 0 (the only arguments the scheme needs) is exp(x^2) erfc(x) below x = 25 and its asymptotic
series 1 / (x sqrt(pi)) (1 - 1/(2x^2) + 3/(4x^4) - 15/(8x^6) + 105/(16x^8)) above (relative error < 1e-13).

The kernel serves value-only evaluations, and (``transfers.first_order_transfers``) the solver's Jacobians with
analytic first derivatives; everything else (higher derivatives, torch.func transforms, GPU) goes through the
torch implementation. It runs on torch.get_num_threads() threads.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

try:
    import numba
    from numba import njit, prange

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - numba is a project dependency
    HAVE_NUMBA = False

_X_NEG, _W_NEG = np.polynomial.legendre.leggauss(20)
_X_POS, _W_POS = np.polynomial.legendre.leggauss(24)
_X_NEG_S, _W_NEG_S = np.polynomial.legendre.leggauss(NEG_SHORT := 10)
_X_POS_S, _W_POS_S = np.polynomial.legendre.leggauss(POS_SHORT := 12)
NEG_SHORT_SPAN = 1.6  # tau-interval length up to which 10 nodes serve (analytic in |Im tau| < pi/2)
POS_SHORT_SPAN = 6.0  # 2 b width up to which 12 nodes serve
_LOG_CUT = 32.0
_LOG_SQRT_PI = 0.5 * math.log(math.pi)

if HAVE_NUMBA:

    @njit(cache=True, nogil=True, fastmath=False)
    def _erfcx_pos(x: float) -> float:
        if x < 25.0:
            return math.exp(x * x) * math.erfc(x)
        y = 1.0 / (x * x)
        return (1.0 - y * (0.5 - y * (0.75 - y * (1.875 - y * 6.5625)))) / (x * 1.7724538509055159)

    @njit(cache=True, nogil=True, parallel=True)
    def _log_integral_kernel(a, b, xn, wn, xp, wp, xns, wns, xps, wps, out):  # pragma: no cover - compiled
        for i in prange(a.size):
            ai, bi = a[i], b[i]
            tau_lo = math.log1p(-min(bi, 0.0))
            tau_hi = math.log1p(-min(ai, 0.0))
            half = 0.5 * (tau_hi - tau_lo)
            mid = 0.5 * (tau_hi + tau_lo)
            s = 0.0
            x_n, w_n = (xns, wns) if 2.0 * half < NEG_SHORT_SPAN else (xn, wn)
            for j in range(x_n.size):
                tau = mid + half * x_n[j]
                x = math.expm1(tau)
                if x < 25.0:
                    s += w_n[j] * math.exp(tau + x * x) * math.erfc(x)
                else:
                    s += w_n[j] * math.exp(tau) * _erfcx_pos(x)
            log_neg = math.log(half * s) if half * s > 0 else -math.inf
            bp = max(bi, 0.0)
            b2 = bp * bp
            t_cut = _LOG_CUT / (bp + math.sqrt(max(b2 - _LOG_CUT, 0.0))) if b2 > _LOG_CUT else bp
            width = min(t_cut, min(bi - ai, bp))
            log_erf_top = math.log1p(math.erf(bp))
            s = 0.0
            x_p, w_p = (xps, wps) if 2.0 * bp * width < POS_SHORT_SPAN and width < 1.5 else (xp, wp)
            for j in range(x_p.size):
                t = 0.5 * width * (1.0 + x_p[j])
                s += w_p[j] * math.exp(-t * (2.0 * bp - t)) * (1.0 + math.erf(bp - t))
            v = 0.5 * width * s / (1.0 + math.erf(bp))
            log_pos = b2 + log_erf_top + math.log(v) if v > 0 else -math.inf
            hi, lo = max(log_neg, log_pos), min(log_neg, log_pos)
            out[i] = hi + math.log1p(math.exp(lo - hi)) if lo > -math.inf else hi


def fast_path_available(*tensors: Tensor) -> bool:
    """Whether the compiled kernel may serve: numba present, no gradient traced (grad mode off, or no input that
    requires one: the result would carry no graph either way), plain CPU tensors (no torch.func transform
    wrapping them)."""
    if not HAVE_NUMBA:
        return False
    if torch.is_grad_enabled() and any(isinstance(t, Tensor) and t.requires_grad for t in tensors):
        return False
    wrapped = getattr(torch._C._functorch, "is_functorch_wrapped_tensor", None)
    return all(
        isinstance(t, Tensor) and t.device.type == "cpu" and not (wrapped is not None and wrapped(t)) for t in tensors
    )


def log_integral(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """log Integral_a^b erfcx(-u) du (a < b, float64 arrays of one shape)."""
    a64 = np.ascontiguousarray(a, dtype=np.float64).ravel()
    b64 = np.ascontiguousarray(b, dtype=np.float64).ravel()
    out = np.empty_like(a64)
    numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))
    _log_integral_kernel(a64, b64, _X_NEG, _W_NEG, _X_POS, _W_POS, _X_NEG_S, _W_NEG_S, _X_POS_S, _W_POS_S, out)
    return out.reshape(np.shape(a))


def siegert_rate_hz_fast(
    mu_mv: Tensor, sigma_mv: Tensor, *, tau_m_ms: float, theta_mv: float, v_reset_mv: float, tau_ref_ms: float
) -> Tensor:
    """phi(mu, sigma) in Hz (float64, no gradient) by the compiled kernel; see ``transfer.siegert_rate_hz``."""
    from torchsnn.meanfield.transfer import SIGMA_MIN_MV

    mu, sigma = torch.broadcast_tensors(mu_mv.to(torch.float64), sigma_mv.to(torch.float64))
    sigma = sigma.clamp(min=SIGMA_MIN_MV)
    y_th = ((theta_mv - mu) / sigma).numpy()
    y_r = ((v_reset_mv - mu) / sigma).numpy()
    log_i = torch.from_numpy(log_integral(y_r, y_th))
    tau_m_s, tau_ref_s = tau_m_ms / 1000.0, tau_ref_ms / 1000.0
    log_ref = math.log(tau_ref_s) if tau_ref_s > 0 else -math.inf
    log_phi = -torch.logaddexp(torch.full_like(log_i, log_ref), math.log(tau_m_s) + _LOG_SQRT_PI + log_i)
    return torch.exp(log_phi)


__all__ = ["HAVE_NUMBA", "fast_path_available", "log_integral", "siegert_rate_hz_fast"]
