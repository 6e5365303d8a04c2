"""Base class of neuron populations: state, one clock-driven step, and the transfer function of the theory."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import Tensor, nn

from torchsnn.kernels.backend import Backend, default_backend
from torchsnn.kernels.fixed_point import from_fixed_point
from torchsnn.validation import check_int, check_positive


class NeuronPopulation(nn.Module, ABC):
    """A population of ``size`` neurons simulated as ``batch`` independent replicas.

    State tensors are buffers shaped (B, N) so that ``.to(device)`` and ``state_dict()`` carry them. Subclasses
    implement :meth:`step` (the dynamics the simulator integrates) and :meth:`transfer_hz` (the stationary rate
    phi(mu, sigma) the mean-field theory uses), so one class serves both engines.
    """

    def __init__(self, name: str, size: int, dt_ms: float, excitatory: bool) -> None:
        super().__init__()
        self.name = name
        self.size = check_int("size", size, minimum=1)
        self.dt_ms = check_positive("dt_ms", dt_ms)
        self.excitatory = bool(excitatory)

    @property
    def sign(self) -> float:
        """+1 for excitatory, -1 for inhibitory populations (Dale's law: the sign of every outgoing weight)."""
        return 1.0 if self.excitatory else -1.0

    @property
    def batch(self) -> int:
        return int(self.v_mv.shape[0])

    @abstractmethod
    def reset_state(
        self, batch: int, generator: torch.Generator | None = None, v_init_mv: Tensor | None = None
    ) -> None:
        """Allocate (B, N) state: given voltages, or random ones drawn with ``generator``."""

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
        """Stationary firing rate (Hz) under white-noise input of mean ``mu_mv`` and std ``sigma_mv``."""

    @property
    @abstractmethod
    def tau_m_ms(self) -> float:
        """Membrane time constant; sets how synaptic input maps to (mu, sigma) in the theory."""
