"""External drive per neuron: Poisson spike input or Gaussian white noise (theory §1).

A drive produces, for a block of steps at once, the voltage jump (mV) each neuron receives from outside the
network in each step, and states its diffusion-approximation moments (mu_ext, sigma_ext) for the theory.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import numpy as np
import torch
from scipy import stats
from torch import Tensor, nn

from torchsnn.kernels.backend import Backend, default_backend
from torchsnn.validation import check_int, check_non_negative, check_positive


class ExternalDrive(nn.Module, ABC):
    """Input from outside the network to every neuron of one population."""

    def bind(self, tau_m_ms: float, dt_ms: float) -> None:
        """Learn the population's membrane time constant and the time step (called by the Network)."""
        self.tau_m_ms = check_positive("tau_m_ms", tau_m_ms)
        self.dt_ms = check_positive("dt_ms", dt_ms)

    @abstractmethod
    def sample_block(
        self,
        n_steps: int,
        batch: int,
        size: int,
        generator: torch.Generator | None,
        backend: Backend | None = None,
    ) -> Tensor:
        """Input jumps (n_steps, B, N) in mV, float32, on this module's device (``backend``: where a kernel
        helps; default the device's ``auto`` backend)."""

    @abstractmethod
    def moments(self, tau_m_ms: float) -> tuple[float, float]:
        """(mu_ext_mv, sigma_ext_mv) of the drive in the diffusion approximation."""

    @property
    def device(self) -> torch.device:
        return self._device_probe.device


GUIDE_SIZE = 4096


def compound_poisson_table(sources: list[tuple[float, float]], tail: float = 1e-17) -> tuple[np.ndarray, np.ndarray]:
    """Law of sum_s J_s n_s with independent n_s ~ Poisson(lam_s), for ``sources`` = [(lam_s, J_s)]: distinct
    values (float32, mV) and their CDF (float64). Each Poisson law is truncated where its upper tail falls below
    ``tail``; the CDF ends at exactly 1."""
    values, probs = np.zeros(1), np.ones(1)
    for lam, jump in sources:
        k = np.arange(int(lam + 40 * math.sqrt(lam + 1) + 40))
        k = k[: int(np.searchsorted(-stats.poisson.sf(k, lam), -tail)) + 1]
        pmf = stats.poisson.pmf(k, lam)
        values = (values[:, None] + jump * k[None, :]).ravel()
        probs = (probs[:, None] * pmf[None, :]).ravel()
        values, inverse = np.unique(np.round(values, 9), return_inverse=True)
        probs = np.bincount(inverse, probs)
    cdf = np.cumsum(probs)
    cdf /= cdf[-1]
    return values.astype(np.float32), cdf


class PoissonDrive(ExternalDrive):
    r"""Independent Poisson sources per neuron: ``k_ext`` excitatory ones at ``nu_ext_hz`` (jump ``+j_ext_mv``) and,
    optionally, ``k_ext_inh`` inhibitory ones at ``nu_ext_inh_hz`` (jump ``-j_ext_inh_mv``).

    Per step a neuron receives ``j_ext n_e - j_ext_inh n_i`` with ``n ~ Poisson(k nu dt)``. Diffusion moments
    (tau_m in seconds):

        mu_ext = tau_m (k_ext j_ext nu_ext - k_ext_inh j_ext_inh nu_ext_inh)
        sigma_ext^2 = tau_m (k_ext j_ext^2 nu_ext + k_ext_inh j_ext_inh^2 nu_ext_inh)

    Balanced external input (both kinds) gives independent noise of any size at a chosen mean. Sampling: the law
    of the per-step jump (all sources together) is tabulated once; each neuron and step then costs one uniform
    number and a binary search (inversion; exact up to a truncated tail of 1e-17 per source).
    """

    def __init__(
        self,
        k_ext: int,
        nu_ext_hz: float,
        j_ext_mv: float,
        k_ext_inh: int = 0,
        nu_ext_inh_hz: float = 0.0,
        j_ext_inh_mv: float = 0.0,
    ) -> None:
        super().__init__()
        self.k_ext = check_int("k_ext", k_ext, minimum=0)
        self.nu_ext_hz = check_non_negative("nu_ext_hz", nu_ext_hz)
        self.j_ext_mv = check_non_negative("j_ext_mv", j_ext_mv)
        self.k_ext_inh = check_int("k_ext_inh", k_ext_inh, minimum=0)
        self.nu_ext_inh_hz = check_non_negative("nu_ext_inh_hz", nu_ext_inh_hz)
        self.j_ext_inh_mv = check_non_negative("j_ext_inh_mv", j_ext_inh_mv)
        self.register_buffer("_device_probe", torch.zeros(0), persistent=False)

    def bind(self, tau_m_ms: float, dt_ms: float) -> None:
        super().bind(tau_m_ms, dt_ms)
        values, cdf = compound_poisson_table(self.sources())
        self.register_buffer("jump_values_mv", torch.from_numpy(values), persistent=False)
        self.register_buffer("jump_cdf", torch.from_numpy(cdf), persistent=False)
        grid = np.arange(GUIDE_SIZE) / GUIDE_SIZE
        self.register_buffer("jump_guide", torch.from_numpy(np.searchsorted(cdf, grid, side="right")), persistent=False)

    def sources(self) -> list[tuple[float, float]]:
        """(expected events per step, signed jump in mV) of each kind of source that is present."""
        dt_s = self.dt_ms * 1e-3
        kinds = [
            (self.k_ext * self.nu_ext_hz * dt_s, self.j_ext_mv),
            (self.k_ext_inh * self.nu_ext_inh_hz * dt_s, -self.j_ext_inh_mv),
        ]
        return [(lam, j) for lam, j in kinds if lam > 0 and j != 0]

    def sample_block(
        self,
        n_steps: int,
        batch: int,
        size: int,
        generator: torch.Generator | None,
        backend: Backend | None = None,
    ) -> Tensor:
        u = torch.rand(n_steps, batch, size, generator=generator, dtype=torch.float64, device=self.device)
        backend = backend if backend is not None else default_backend(u)
        return backend.invert_table(u, self.jump_cdf, self.jump_guide, self.jump_values_mv)

    def moments(self, tau_m_ms: float) -> tuple[float, float]:
        tau_s = tau_m_ms * 1e-3
        mu = tau_s * (
            self.k_ext * self.j_ext_mv * self.nu_ext_hz - self.k_ext_inh * self.j_ext_inh_mv * self.nu_ext_inh_hz
        )
        var = tau_s * (
            self.k_ext * self.j_ext_mv**2 * self.nu_ext_hz + self.k_ext_inh * self.j_ext_inh_mv**2 * self.nu_ext_inh_hz
        )
        return mu, math.sqrt(var)


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

    def noise_scale_offset_mv(self) -> tuple[float, float]:
        """(c, m) with input = c xi + m, xi ~ N(0, 1)."""
        d = math.exp(-self.dt_ms / self.tau_m_ms)
        return self.sigma_mv * math.sqrt((1.0 - d * d) / 2.0), self.mu_mv * (1.0 - d)

    def sample_block(
        self,
        n_steps: int,
        batch: int,
        size: int,
        generator: torch.Generator | None,
        backend: Backend | None = None,
    ) -> Tensor:
        scale, offset = self.noise_scale_offset_mv()
        noise = torch.randn(n_steps, batch, size, generator=generator, device=self.device)
        return noise.mul_(scale).add_(offset)

    def moments(self, tau_m_ms: float) -> tuple[float, float]:
        return self.mu_mv, self.sigma_mv


class NoDrive(ExternalDrive):
    """No external input."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("_device_probe", torch.zeros(0), persistent=False)

    def sample_block(
        self,
        n_steps: int,
        batch: int,
        size: int,
        generator: torch.Generator | None,
        backend: Backend | None = None,
    ) -> Tensor:
        return torch.zeros(n_steps, batch, size, device=self.device)

    def moments(self, tau_m_ms: float) -> tuple[float, float]:
        return 0.0, 0.0
