"""Shipped rules: relaxation to a target F of the estimated rates (theory §4)."""

from __future__ import annotations

import torch
from torch import Tensor

from torchsnn.plasticity.base import Factor, RelaxationRule, check_rate_parameter
from torchsnn.validation import check_finite, check_non_negative, check_positive, require


class SaturatingPreRule(RelaxationRule):
    r"""Pre-only, increasing and saturating: F = w_max nu_pre / (nu_pre + nu_half)."""

    pre_only = True

    def __init__(self, w_max_mv: float, nu_half_hz: float, tau_w_ms: float = 1000.0) -> None:
        super().__init__(tau_w_ms, 0.0, check_positive("w_max_mv", w_max_mv))
        self.nu_half_hz = check_rate_parameter("nu_half_hz", nu_half_hz)

    def target(self, nu_pre_hz: Tensor, nu_post_hz: Tensor) -> Tensor:
        nu = nu_pre_hz.clamp(min=0)
        return self.w_max_mv * nu / (nu + self.nu_half_hz) + 0 * nu_post_hz


class HomeostaticPreRule(RelaxationRule):
    r"""Pre-only, decreasing (homeostatic): F = w_0 exp(-nu_pre / nu_ref); strong for quiet inputs, weak for busy
    ones, with enough curvature for trace noise to bias E[f(nu_hat)]."""

    pre_only = True

    def __init__(self, w0_mv: float, nu_ref_hz: float, tau_w_ms: float = 1000.0) -> None:
        super().__init__(tau_w_ms, 0.0, check_positive("w0_mv", w0_mv))
        self.nu_ref_hz = check_rate_parameter("nu_ref_hz", nu_ref_hz)

    def target(self, nu_pre_hz: Tensor, nu_post_hz: Tensor) -> Tensor:
        return self.w_max_mv * torch.exp(-nu_pre_hz.clamp(min=0) / self.nu_ref_hz) + 0 * nu_post_hz


class SeparablePrePostRule(RelaxationRule):
    r"""Hebbian pre factor, homeostatic post factor: F = A f_pre(nu_pre) f_post(nu_post) with
    f_pre = nu_pre / (nu_pre + nu_pre_half) and f_post = nu_post_ref / (nu_post + nu_post_ref)."""

    def __init__(
        self, amplitude_mv: float, nu_pre_half_hz: float, nu_post_ref_hz: float, tau_w_ms: float = 1000.0
    ) -> None:
        super().__init__(tau_w_ms, 0.0, check_positive("amplitude_mv", amplitude_mv))
        self.nu_pre_half_hz = check_rate_parameter("nu_pre_half_hz", nu_pre_half_hz)
        self.nu_post_ref_hz = check_rate_parameter("nu_post_ref_hz", nu_post_ref_hz)

    def f_pre(self, nu_hz: Tensor) -> Tensor:
        nu = nu_hz.clamp(min=0)
        return self.w_max_mv * nu / (nu + self.nu_pre_half_hz)

    def f_post(self, nu_hz: Tensor) -> Tensor:
        return self.nu_post_ref_hz / (nu_hz.clamp(min=0) + self.nu_post_ref_hz)

    def factors(self) -> tuple[Factor, Factor]:
        return self.f_pre, self.f_post

    def target(self, nu_pre_hz: Tensor, nu_post_hz: Tensor) -> Tensor:
        return self.f_pre(nu_pre_hz) * self.f_post(nu_post_hz)


class CovarianceRule(RelaxationRule):
    r"""Non-separable, bounded covariance (BCM-like) target:

        F = w_min + (w_max - w_min) sigmoid( (nu_pre - nu_pre_0)(nu_post - nu_post_0) / s^2 )

    potentiation when both rates are above (or both below) their references, depression otherwise."""

    def __init__(
        self,
        w_min_mv: float,
        w_max_mv: float,
        nu_pre_0_hz: float,
        nu_post_0_hz: float,
        scale_hz: float,
        tau_w_ms: float = 1000.0,
    ) -> None:
        check_non_negative("w_min_mv", w_min_mv)
        require(w_max_mv > w_min_mv, "w_max_mv", w_max_mv, f"must exceed w_min_mv ({w_min_mv})")
        super().__init__(tau_w_ms, w_min_mv, w_max_mv)
        self.nu_pre_0_hz = check_finite("nu_pre_0_hz", nu_pre_0_hz)
        self.nu_post_0_hz = check_finite("nu_post_0_hz", nu_post_0_hz)
        self.scale_hz = check_rate_parameter("scale_hz", scale_hz)

    def target(self, nu_pre_hz: Tensor, nu_post_hz: Tensor) -> Tensor:
        c = (nu_pre_hz - self.nu_pre_0_hz) * (nu_post_hz - self.nu_post_0_hz) / self.scale_hz**2
        return self.w_min_mv + (self.w_max_mv - self.w_min_mv) * torch.sigmoid(c)


__all__ = ["CovarianceRule", "HomeostaticPreRule", "SaturatingPreRule", "SeparablePrePostRule"]
