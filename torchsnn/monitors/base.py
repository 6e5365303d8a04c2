"""Monitor protocol: read each block's output on the device, hand results over at the end."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch

from torchsnn.network import BlockOutput, Network


def to_device(value: Any, device: torch.device | None) -> Any:
    """``value`` with every tensor inside (dicts, lists, tuples) moved to ``device``."""
    if device is None:
        return value
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return {k: to_device(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_device(v, device) for v in value)
    return value


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

    def load_state_dict(self, state: dict[str, Any], device: torch.device | None = None) -> None:
        """Restore the fields saved by :meth:`state_dict`, tensors moved to ``device`` (checkpoints load on the
        CPU)."""
        for name in self.checkpoint_fields:
            setattr(self, name, to_device(state[name], device))

    def steps_in_window(self, out: BlockOutput) -> int:
        """Index within the block of the first step inside the window (n_steps if none)."""
        return min(out.n_steps, max(0, self.window_start_step - out.start_step))
