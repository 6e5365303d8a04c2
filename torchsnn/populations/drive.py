"""External drive per neuron: Poisson spike input or Gaussian white noise (theory §1).

A drive produces, for a block of steps at once, the voltage jump (mV) each neuron receives from outside the
network in each step, and states its diffusion-approximation moments (mu_ext, sigma_ext) for the theory.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch
from torch import Tensor, nn

from torchsnn.validation import check_int, check_non_negative, check_positive


class ExternalDrive(nn.Module, ABC):
    """Input from outside the network to every neuron of one population."""

    def bind(self, tau_m_ms: float, dt_ms: float) -> None:
        """Learn the population's membrane time constant and the time step (called by the Network)."""
        self.tau_m_ms = check_positive("tau_m_ms", tau_m_ms)
        self.dt_ms = check_positive("dt_ms", dt_ms)

    @abstractmethod
    def sample_block(self, n_steps: int, batch: int, size: int, generator: torch.Generator | None) -> Tensor:
        """Input jumps (n_steps, B, N) in mV, float32, on this module's device."""

    @abstractmethod
    def moments(self, tau_m_ms: float) -> tuple[float, float]:
        """(mu_ext_mv, sigma_ext_mv) of the drive in the diffusion approximation."""

    @property
    def device(self) -> torch.device:
        return self._device_probe.device


class PoissonDrive(ExternalDrive):
    r"""``k_ext`` independent Poisson sources per neuron at ``nu_ext_hz``, each spike a jump of ``j_ext_mv``.

    Per step a neuron receives ``j_ext * n`` with ``n ~ Poisson(k_ext * nu_ext * dt)``. Diffusion moments:
    ``mu_ext = tau_m k_ext j_ext nu_ext`` and ``sigma_ext^2 = tau_m k_ext j_ext^2 nu_ext`` (tau_m in seconds).
    """

    def __init__(self, k_ext: int, nu_ext_hz: float, j_ext_mv: float) -> None:
        super().__init__()
        self.k_ext = check_int("k_ext", k_ext, minimum=0)
        self.nu_ext_hz = check_non_negative("nu_ext_hz", nu_ext_hz)
        self.j_ext_mv = check_non_negative("j_ext_mv", j_ext_mv)
        self.register_buffer("_device_probe", torch.zeros(0), persistent=False)

    def sample_block(self, n_steps: int, batch: int, size: int, generator: torch.Generator | None) -> Tensor:
        lam = self.k_ext * self.nu_ext_hz * self.dt_ms * 1e-3
        rate = torch.full((n_steps, batch, size), lam, device=self.device)
        return torch.poisson(rate, generator=generator).mul_(self.j_ext_mv)

    def moments(self, tau_m_ms: float) -> tuple[float, float]:
        tau_s = tau_m_ms * 1e-3
        mu = tau_s * self.k_ext * self.j_ext_mv * self.nu_ext_hz
        sigma = math.sqrt(tau_s * self.k_ext * self.j_ext_mv**2 * self.nu_ext_hz)
        return mu, sigma


class GaussianDrive(ExternalDrive):
    r"""Gaussian white noise: ``tau_m dV = (mu - V) dt + sigma sqrt(tau_m) dW`` between spikes.

    Discretised exactly for the Ornstein–Uhlenbeck process: with d = exp(-dt / tau_m) the neuron's own update
    ``V <- d V + input`` receives ``input = mu (1 - d) + sigma sqrt((1 - d^2) / 2) xi``, xi ~ N(0, 1), so the free
    membrane potential has stationary mean mu and variance sigma^2 / 2 (Brunel's convention, where
    sigma^2 = tau_m sum_i w_i^2 nu_i).
    """

    def __init__(self, mu_mv: float, sigma_mv: float) -> None:
        super().__init__()
        self.mu_mv = float(mu_mv)
        self.sigma_mv = check_non_negative("sigma_mv", sigma_mv)
        self.register_buffer("_device_probe", torch.zeros(0), persistent=False)

    def sample_block(self, n_steps: int, batch: int, size: int, generator: torch.Generator | None) -> Tensor:
        d = math.exp(-self.dt_ms / self.tau_m_ms)
        noise = torch.randn(n_steps, batch, size, generator=generator, device=self.device)
        return noise.mul_(self.sigma_mv * math.sqrt((1.0 - d * d) / 2.0)).add_(self.mu_mv * (1.0 - d))

    def moments(self, tau_m_ms: float) -> tuple[float, float]:
        return self.mu_mv, self.sigma_mv


class NoDrive(ExternalDrive):
    """No external input."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("_device_probe", torch.zeros(0), persistent=False)

    def sample_block(self, n_steps: int, batch: int, size: int, generator: torch.Generator | None) -> Tensor:
        return torch.zeros(n_steps, batch, size, device=self.device)

    def moments(self, tau_m_ms: float) -> tuple[float, float]:
        return 0.0, 0.0
