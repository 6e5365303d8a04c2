"""Base class of neuron populations: the contract (state, step, time constants, rate ceiling, theory hook)."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import Tensor, nn

from torchsnn.kernels.backend import Backend, default_backend
from torchsnn.kernels.fixed_point import from_fixed_point
from torchsnn.validation import check_int, check_positive


class NeuronPopulation(nn.Module, ABC):
    r"""A population of ``size`` neurons simulated as ``batch`` independent replicas: the contract with the rest.

    What the simulator, the monitors and the mean-field theory rely on, and nothing else:

    * **State.** ``v_mv``, the membrane potentials (B, N) float32 in mV, a buffer registered here (so
      ``.to(device)`` and ``state_dict()`` carry it); the health and synchrony monitors and :attr:`batch` read it.
      Further state (``refractory_left`` for LIF) is the subclass's own, also as (B, N) buffers.
      :meth:`reset_state` allocates all of it for B replicas.
    * **Dynamics.** :meth:`step` advances one clock step of length ``dt_ms`` and returns the spikes (B, N) bool;
      :meth:`reference_block` runs it step by step, :meth:`run_block` hands it to a compiled backend.
    * **Time constants.** :attr:`tau_m_ms` maps synaptic input to the theory's (mu, sigma):
      ``mu = tau_m * sum_k K_k J_k nu_k``, ``sigma^2 = tau_m * sum_k K_k J_k^2 nu_k`` (theory §1);
      :attr:`tau_ref_ms` is the refractory period.
    * **Rate ceiling.** :attr:`max_rate_hz` ``= 1000 / max(tau_ref_ms, dt_ms)``: a clock-driven neuron fires at
      most once per refractory period and once per step. The theory bounds its rates by it, the health monitor
      calls a population runaway above a fraction of it.
    * **Theory hook.** :meth:`transfer_hz` is phi(mu, sigma), the stationary rate (Hz) under white-noise input
      (for LIF the Siegert formula, theory §5.1), finite and within [0, max_rate_hz].

    Optional hooks, looked up with ``hasattr`` by those that can use them: ``transfer_parameters()`` (the LIF
    parameters ``tau_m_ms, theta_mv, v_reset_mv, tau_ref_ms``; with it the mean field offers the ``finite_jump``
    and Markov-chain transfers, without it only ``siegert`` through :meth:`transfer_hz`) and ``lif_parameters()``
    (``decay, theta_mv, v_reset_mv, refractory_steps`` for the compiled numba / Triton kernels; without it a
    population runs on the step-by-step reference path).
    """

    v_mv: Tensor

    def __init__(self, name: str, size: int, dt_ms: float, excitatory: bool) -> None:
        super().__init__()
        self.name = name
        self.size = check_int("size", size, minimum=1)
        self.dt_ms = check_positive("dt_ms", dt_ms)
        self.excitatory = bool(excitatory)
        self.register_buffer("v_mv", torch.zeros(1, self.size))

    @property
    def sign(self) -> float:
        """+1 for excitatory, -1 for inhibitory populations (Dale's law: the sign of every outgoing weight)."""
        return 1.0 if self.excitatory else -1.0

    @property
    def batch(self) -> int:
        """B, the number of replicas: the first dimension of ``v_mv``."""
        return int(self.v_mv.shape[0])

    @property
    def max_rate_hz(self) -> float:
        """Rate ceiling ``1000 / max(tau_ref_ms, dt_ms)`` Hz: one spike per refractory period and per step."""
        return 1e3 / max(self.tau_ref_ms, self.dt_ms)

    @abstractmethod
    def reset_state(
        self, batch: int, generator: torch.Generator | None = None, v_init_mv: Tensor | None = None
    ) -> None:
        """Allocate the (B, N) state for ``batch`` replicas: voltages ``v_init_mv`` (broadcast to (B, N)) or random
        ones drawn with ``generator``; every other state variable at its rest value (not refractory)."""

    @abstractmethod
    def step(self, input_mv: Tensor) -> Tensor:
        """Advance one time step with ``input_mv`` (B, N) arriving in it; return the spikes (B, N) bool."""

    def run_block(
        self,
        ring: Tensor,
        first_slot: int,
        drive: Tensor | None,
        n_steps: int,
        record_steps: list[int],
        backend: Backend | None = None,
    ) -> tuple[Tensor, list[Tensor]]:
        """``n_steps`` steps: the input of step s is ring slot (first_slot + s) mod R (cleared after reading) plus
        ``drive[s]``. Returns spikes (n_steps, B, N) and copies of the voltages after each step in
        ``record_steps``. Runs on ``backend`` (default: the device's ``auto`` backend), which gives the results
        of :meth:`reference_block`."""
        backend = backend if backend is not None else default_backend(self.v_mv)
        return backend.lif_block(self, ring, first_slot, drive, n_steps, record_steps)

    def reference_block(
        self, ring: Tensor, first_slot: int, drive: Tensor | None, n_steps: int, record_steps: list[int]
    ) -> tuple[Tensor, list[Tensor]]:
        """:meth:`run_block` in plain torch ops, one :meth:`step` at a time (any device): the reference."""
        n_slots = ring.shape[0]
        spikes = torch.empty(n_steps, *self.v_mv.shape, dtype=torch.bool, device=self.v_mv.device)
        voltages = []
        for s in range(n_steps):
            slot = ring[(first_slot + s) % n_slots]
            arriving = slot if slot.dtype.is_floating_point else from_fixed_point(slot)
            spikes[s] = self.step(arriving if drive is None else arriving + drive[s])
            slot.zero_()
            if s in record_steps:
                voltages.append(self.v_mv.clone())
        return spikes, voltages

    @abstractmethod
    def transfer_hz(self, mu_mv: Tensor, sigma_mv: Tensor) -> Tensor:
        """phi(mu, sigma): the stationary firing rate (Hz) under white-noise input of mean ``mu_mv`` and std
        ``sigma_mv`` (tensors of one shape; the result has it), finite, in [0, max_rate_hz]."""

    @property
    @abstractmethod
    def tau_m_ms(self) -> float:
        """Membrane time constant (ms); sets how synaptic input maps to (mu, sigma) in the theory."""

    @property
    @abstractmethod
    def tau_ref_ms(self) -> float:
        """Absolute refractory period (ms), a whole number of steps; 0 for none."""
