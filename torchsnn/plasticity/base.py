r"""Plasticity rules driven by spike-trace rate estimates (theory §3–4).

A rule is written once, as elementwise torch expressions on magnitudes |w| (mV; the projection applies the sign of
its presynaptic population, Dale's law):

* ``drift(w, nu_pre, nu_post)`` — dw/dt in mV per ms: the g of the theory, what the simulator integrates;
* ``steady_state(nu_pre, nu_post)`` — the f of the theory, g(f, nu_pre, nu_post) = 0 with dg/dw < 0, what the
  mean-field solver uses. The base class finds it from the drift (vectorised bracketing of sign changes over
  [w_min, w_max], bisection and a Newton polish, the stable root kept); a subclass may give a closed form;
* ``factors()`` — optional separable factors (f_pre, f_post) with f = f_pre(nu_pre) f_post(nu_post);
* ``pre_only`` — the drift, hence the steady state, does not depend on nu_post (f = f(nu_pre)); the simulator
  may then keep one weight per presynaptic neuron.

The simulator calls ``update(w, nu_pre, nu_post, dt_ms)`` every ``update_every_ms``; the base class integrates the
drift with explicit midpoint substeps and clips to the bounds; relaxation rules use the exact solution.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable

import torch
from torch import Tensor, nn

from torchsnn.validation import check_finite, check_non_negative, check_positive, require

Factor = Callable[[Tensor], Tensor]


class PlasticityRule(nn.Module, ABC):
    """Base class. Args: ``w_min_mv`` / ``w_max_mv`` bounds of |w|; ``max_step_ms`` substep of the default
    integrator."""

    pre_only: bool = False

    def __init__(self, w_min_mv: float = 0.0, w_max_mv: float = math.inf, max_step_ms: float = 1.0) -> None:
        super().__init__()
        self.w_min_mv = check_non_negative("w_min_mv", w_min_mv)
        require(w_max_mv > w_min_mv, "w_max_mv", w_max_mv, f"must exceed w_min_mv ({w_min_mv})")
        self.w_max_mv = float(w_max_mv)
        self.max_step_ms = check_positive("max_step_ms", max_step_ms)

    # ------------------------------------------------------------------ what a rule defines
    @abstractmethod
    def drift(self, w_mv: Tensor, nu_pre_hz: Tensor, nu_post_hz: Tensor) -> Tensor:
        """dw/dt (mV per ms) of |w| at the estimated rates."""

    def factors(self) -> tuple[Factor, Factor] | None:
        """(f_pre, f_post) when f(nu_pre, nu_post) = f_pre(nu_pre) f_post(nu_post), else None."""
        return None

    # ------------------------------------------------------------------ steady state (the theory's f)
    def steady_state(self, nu_pre_hz: Tensor, nu_post_hz: Tensor) -> Tensor:
        """Stable root of the drift in [w_min, w_max] (where the drift has no root, the bound it pushes to)."""
        return stable_root(self.drift, nu_pre_hz, nu_post_hz, self.w_min_mv, self._upper_bracket())

    def _upper_bracket(self) -> float:
        return self.w_max_mv if math.isfinite(self.w_max_mv) else 100.0

    # ------------------------------------------------------------------ simulation
    def clip(self, w_mv: Tensor) -> Tensor:
        return w_mv.clamp(self.w_min_mv, self.w_max_mv)

    def update(self, w_mv: Tensor, nu_pre_hz: Tensor, nu_post_hz: Tensor, dt_ms: float) -> Tensor:
        """|w| after ``dt_ms`` at fixed rate estimates (midpoint substeps of at most ``max_step_ms``, clipped)."""
        n = max(1, math.ceil(dt_ms / self.max_step_ms))
        h = dt_ms / n
        for _ in range(n):
            half = self.clip(w_mv + 0.5 * h * self.drift(w_mv, nu_pre_hz, nu_post_hz))
            w_mv = self.clip(w_mv + h * self.drift(half, nu_pre_hz, nu_post_hz))
        return w_mv


class RelaxationRule(PlasticityRule):
    r"""``tau_w dw/dt = F(nu_pre, nu_post) - w``: weights relax to a target F (then f = clip(F)).

    The update over an interval at fixed estimates is exact: w <- F + (w - F) exp(-dt / tau_w). A subclass defines
    ``target`` (and, when F separates, ``factors``)."""

    def __init__(self, tau_w_ms: float = 1000.0, w_min_mv: float = 0.0, w_max_mv: float = math.inf) -> None:
        super().__init__(w_min_mv, w_max_mv)
        self.tau_w_ms = check_positive("tau_w_ms", tau_w_ms)

    @abstractmethod
    def target(self, nu_pre_hz: Tensor, nu_post_hz: Tensor) -> Tensor:
        """F(nu_pre, nu_post) in mV."""

    def drift(self, w_mv: Tensor, nu_pre_hz: Tensor, nu_post_hz: Tensor) -> Tensor:
        return (self.target(nu_pre_hz, nu_post_hz) - w_mv) / self.tau_w_ms

    def steady_state(self, nu_pre_hz: Tensor, nu_post_hz: Tensor) -> Tensor:
        return self.clip(self.target(nu_pre_hz, nu_post_hz))

    def update(self, w_mv: Tensor, nu_pre_hz: Tensor, nu_post_hz: Tensor, dt_ms: float) -> Tensor:
        f = self.target(nu_pre_hz, nu_post_hz)
        return self.clip(f + (w_mv - f) * math.exp(-dt_ms / self.tau_w_ms))


def stable_root(
    drift: Callable[[Tensor, Tensor, Tensor], Tensor],
    nu_pre_hz: Tensor,
    nu_post_hz: Tensor,
    lower: float,
    upper: float,
    grid: int = 64,
    bisections: int = 50,
) -> Tensor:
    """Vectorised stable root of w -> drift(w, nu_pre, nu_post) in [lower, upper]: the largest w where the drift
    crosses from positive to negative (dg/dw < 0); if the drift never changes sign, the bound it pushes to.
    Differentiable in the rates by the implicit-function theorem (one Newton correction with grad)."""
    shape = torch.broadcast_shapes(nu_pre_hz.shape, nu_post_hz.shape)
    pre, post = nu_pre_hz.expand(shape), nu_post_hz.expand(shape)
    with torch.no_grad():
        pre_c, post_c = pre.detach(), post.detach()
        ws = torch.linspace(lower, upper, grid, dtype=pre.dtype, device=pre.device)
        g = drift(ws.view(-1, *([1] * len(shape))), pre_c.unsqueeze(0), post_c.unsqueeze(0))
        down = (g[:-1] > 0) & (g[1:] <= 0)
        idx = torch.arange(grid - 1, device=pre.device).view(-1, *([1] * len(shape))).expand_as(down)
        last = torch.where(down, idx, torch.full_like(idx, -1)).amax(0)
        has_root = last >= 0
        lo = ws[last.clamp(min=0)]
        hi = ws[(last + 1).clamp(max=grid - 1)]
        for _ in range(bisections):
            mid = 0.5 * (lo + hi)
            positive = drift(mid, pre_c, post_c) > 0
            lo, hi = torch.where(positive, mid, lo), torch.where(positive, hi, mid)
        root = 0.5 * (lo + hi)
        pushes_up = g[-1] > 0
        root = torch.where(
            has_root, root, torch.where(pushes_up, torch.full_like(root, upper), torch.full_like(root, lower))
        )
        h = 1e-6 * max(upper - lower, 1e-12)
        slope = (drift(root + h, pre_c, post_c) - drift(root - h, pre_c, post_c)) / (2 * h)
        safe = torch.where(has_root & (slope < 0), slope, torch.full_like(slope, -1.0))
    correction = drift(root, pre, post) / safe  # zero in value; carries d root / d rates = -g_rates / g_w
    return torch.where(has_root, root - correction, root)


def check_rate_parameter(field: str, value: float) -> float:
    """Rates that shape a rule must be positive and finite."""
    check_finite(field, value)
    return check_positive(field, value)
