"""Monitor protocol: read each block's output on the device, hand results over at the end."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from torchsnn.network import BlockOutput, Network


class Monitor(ABC):
    """Accumulates on the network's device during the run; nothing here copies to the host per block.

    ``window_start_step`` is the first step of the measurement window (the end of the transient).
    """

    def __init__(self, window_start_step: int = 0) -> None:
        self.window_start_step = int(window_start_step)

    @abstractmethod
    def setup(self, network: Network, start_step: int, total_steps: int) -> None:
        """Allocate device buffers for a run from ``start_step`` to ``total_steps`` (absolute step numbers)."""

    @abstractmethod
    def on_block(self, out: BlockOutput) -> None:
        """Read one block's spikes / voltages."""

    @abstractmethod
    def result(self) -> dict[str, Any]:
        """Results moved to the CPU (called once, at the end or at a checkpoint)."""

    #: attributes that evolve during a run: what a checkpoint saves and a resumed run restores
    checkpoint_fields: tuple[str, ...] = ()

    def state_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.checkpoint_fields}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in self.checkpoint_fields:
            setattr(self, name, state[name])

    def steps_in_window(self, out: BlockOutput) -> int:
        """Index within the block of the first step inside the window (n_steps if none)."""
        return min(out.n_steps, max(0, self.window_start_step - out.start_step))
