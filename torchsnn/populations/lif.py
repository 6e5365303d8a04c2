"""Leaky integrate-and-fire population with delta synapses (theory §1)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from torchsnn.populations.base import NeuronPopulation
from torchsnn.validation import check_non_negative, check_positive, require


class LIFPopulation(NeuronPopulation):
    r"""Delta-synapse LIF neurons, clock-driven with exact exponential decay.

    Between spikes ``tau_m dV/dt = -V + tau_m * sum_j w_j sum_k delta(t - t_j^k - D)`` plus external input, so
    over one step of length dt

        V <- V exp(-dt / tau_m) + (sum of the jumps arriving in this step)      [mV]

    A neuron spikes when V >= theta; V is reset to v_reset and held there for tau_ref (round(tau_ref / dt) steps):
    input arriving while refractory is lost. Order within a step (as NEST's iaf_psc_delta): a refractory neuron
    counts down and stays at v_reset; every other neuron decays and adds its input, then crosses or not.

    Args:
        name: population name (E, I, ...).
        size: number of neurons N.
        dt_ms: simulation time step.
        tau_m_ms, theta_mv, v_reset_mv, tau_ref_ms: membrane time constant, threshold, reset, refractory period.
        excitatory: sign of the population's outgoing weights.
        v_init_low_mv, v_init_high_mv: initial voltages are drawn uniformly in [low, high) unless given.
    """

    def __init__(
        self,
        name: str,
        size: int,
        dt_ms: float,
        *,
        tau_m_ms: float = 20.0,
        theta_mv: float = 20.0,
        v_reset_mv: float = 10.0,
        tau_ref_ms: float = 2.0,
        excitatory: bool = True,
        v_init_low_mv: float | None = None,
        v_init_high_mv: float | None = None,
    ) -> None:
        super().__init__(name, size, dt_ms, excitatory)
        self._tau_m_ms = check_positive("tau_m_ms", tau_m_ms)
        self.theta_mv = float(theta_mv)
        self.v_reset_mv = float(v_reset_mv)
        require(self.v_reset_mv < self.theta_mv, "v_reset_mv", v_reset_mv, f"must be below theta_mv ({theta_mv})")
        self._tau_ref_ms = check_non_negative("tau_ref_ms", tau_ref_ms)
        self.v_init_low_mv = self.v_reset_mv if v_init_low_mv is None else float(v_init_low_mv)
        self.v_init_high_mv = self.theta_mv if v_init_high_mv is None else float(v_init_high_mv)
        require(
            self.v_init_low_mv <= self.v_init_high_mv,
            "v_init_low_mv",
            self.v_init_low_mv,
            f"must not exceed v_init_high_mv ({self.v_init_high_mv})",
        )
        self.decay = math.exp(-self.dt_ms / self._tau_m_ms)
        self.refractory_steps = round(self.tau_ref_ms / self.dt_ms)
        require(
            abs(self.refractory_steps * self.dt_ms - self.tau_ref_ms) <= 1e-6 * self.dt_ms,
            "tau_ref_ms",
            tau_ref_ms,
            f"must be a whole number of time steps (dt_ms = {dt_ms}), as the theory uses it exactly",
        )
        self.register_buffer("refractory_left", torch.zeros(1, self.size, dtype=torch.int32))

    @property
    def tau_m_ms(self) -> float:
        return self._tau_m_ms

    @property
    def tau_ref_ms(self) -> float:
        return self._tau_ref_ms

    def reset_state(
        self, batch: int, generator: torch.Generator | None = None, v_init_mv: Tensor | None = None
    ) -> None:
        device = self.v_mv.device
        if v_init_mv is not None:
            v = torch.as_tensor(v_init_mv, dtype=torch.float32, device=device).expand(batch, self.size).clone()
        else:
            if generator is None:  # deterministic default; runs pass the generator derived from their seed
                generator = torch.Generator(device=device).manual_seed(0)
            u = torch.rand(batch, self.size, generator=generator, device=device)
            v = self.v_init_low_mv + (self.v_init_high_mv - self.v_init_low_mv) * u
        self.v_mv = v
        self.refractory_left = torch.zeros(batch, self.size, dtype=torch.int32, device=device)

    def step(self, input_mv: Tensor) -> Tensor:
        refractory = self.refractory_left > 0
        v = torch.where(refractory, self.v_reset_mv, self.v_mv * self.decay + input_mv)
        spikes = v >= self.theta_mv
        self.v_mv = torch.where(spikes, self.v_reset_mv, v)
        left = torch.where(refractory, self.refractory_left - 1, self.refractory_left)
        self.refractory_left = torch.where(spikes, self.refractory_steps, left).to(torch.int32)
        return spikes

    def lif_parameters(self) -> tuple[float, float, float, int]:
        """(decay, theta_mv, v_reset_mv, refractory_steps): what the compiled kernels need."""
        return self.decay, self.theta_mv, self.v_reset_mv, self.refractory_steps

    def transfer_hz(self, mu_mv: Tensor, sigma_mv: Tensor) -> Tensor:
        from torchsnn.meanfield.transfer import siegert_rate_hz

        return siegert_rate_hz(mu_mv, sigma_mv, **self.transfer_parameters())

    def transfer_parameters(self) -> dict[str, float]:
        """Parameters of phi (theory §5.1)."""
        return {
            "tau_m_ms": self._tau_m_ms,
            "theta_mv": self.theta_mv,
            "v_reset_mv": self.v_reset_mv,
            "tau_ref_ms": self.tau_ref_ms,
        }

    def extra_repr(self) -> str:
        return (
            f"{self.name}: N={self.size}, tau_m={self._tau_m_ms} ms, theta={self.theta_mv} mV, "
            f"v_reset={self.v_reset_mv} mV, tau_ref={self.tau_ref_ms} ms"
        )
