"""A projection: the synapses post <- pre on one scaffold block, with their weights, delay and plasticity."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor, nn

from torchsnn import kernels
from torchsnn.delivery import deliver_block
from torchsnn.validation import check_non_negative, require

if TYPE_CHECKING:
    from torchsnn.scaffold import ScaffoldBlock


class Projection(nn.Module):
    """Synapses of block post <- pre.

    The weight of an edge is the jump (mV) its spike causes in the post neuron: ``sign(pre) * |w|`` (Dale's law:
    the sign belongs to the presynaptic population). Static homogeneous weights are kept as one number; plastic
    weights live per edge and per replica, (B, E), and are moved by ``rule`` (see torchsnn.plasticity).

    Args:
        name: projection name (config key).
        block: the scaffold block (CSR by presynaptic neuron).
        weight_mv: magnitude |w| of the initial weight (mV).
        sign: +1 (excitatory pre population) or -1.
        delay_ms: transmission delay D, at least one time step.
        dt_ms: time step.
        rule: plasticity rule or None for static weights.
    """

    def __init__(
        self,
        name: str,
        block: ScaffoldBlock,
        weight_mv: float,
        sign: float,
        delay_ms: float,
        dt_ms: float,
        rule: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.name = name
        self.pre = block.pre
        self.post = block.post
        self.n_pre = block.n_pre
        self.n_post = block.n_post
        self.weight_magnitude_mv = check_non_negative("weight_mv", weight_mv)
        require(sign in (1.0, -1.0), "sign", sign, "must be +1 or -1")
        self.sign = float(sign)
        require(delay_ms >= dt_ms * (1 - 1e-9), "delay_ms", delay_ms, f"must be >= dt_ms ({dt_ms})")
        self.delay_ms = float(delay_ms)
        self.delay_steps = max(1, round(delay_ms / dt_ms))
        self.rule = rule
        self.register_buffer("row_ptr", block.row_ptr.to(torch.int64))
        self.register_buffer("post_index", block.post_index.to(torch.int32))
        self.register_buffer("weight_mv", torch.tensor(self.sign * self.weight_magnitude_mv))

    @property
    def n_edges(self) -> int:
        return int(self.post_index.numel())

    @property
    def plastic(self) -> bool:
        return self.rule is not None

    def pre_index(self) -> Tensor:
        """Presynaptic (row) index of every edge, (E,) int64."""
        counts = self.row_ptr[1:] - self.row_ptr[:-1]
        return torch.repeat_interleave(torch.arange(self.n_pre, device=self.row_ptr.device), counts)

    def reset_weights(self, batch: int, initial_mv: Tensor | None = None) -> None:
        """Plastic projections get (B, E) weights (from ``initial_mv`` magnitudes, or the constant |w|)."""
        if not self.plastic:
            return
        device = self.row_ptr.device
        if initial_mv is None:
            w = torch.full((batch, self.n_edges), self.weight_magnitude_mv, device=device)
        else:
            w = torch.as_tensor(initial_mv, dtype=torch.float32, device=device).expand(batch, self.n_edges).clone()
        self.weight_mv = w * self.sign

    def deliver(self, spikes: Tensor, ring: Tensor, block_start_step: int) -> None:
        """Add the block's spikes of the pre population (M, B, N_pre) into the post ring buffer (compiled kernel on
        the CPU, torch reference elsewhere; identical input either way)."""
        first_slot = block_start_step + self.delay_steps
        if ring.device.type == "cpu" and kernels.cpu_kernels_enabled():
            args = (spikes.numpy(), self.row_ptr.numpy(), self.post_index.numpy())
            w = self.weight_mv
            if w.dim() == 0:
                kernels.numba_cpu.deliver_scalar(*args, np.float32(w.item()), ring.numpy(), first_slot % ring.shape[0])
            else:
                w2 = w.view(1, -1) if w.dim() == 1 else w
                kernels.numba_cpu.deliver_per_edge(*args, w2.numpy(), ring.numpy(), first_slot % ring.shape[0])
            return
        deliver_block(spikes, self.row_ptr, self.post_index, self.weight_mv, ring, first_slot)

    def extra_repr(self) -> str:
        kind = "plastic" if self.plastic else "static"
        return (
            f"{self.name}: {self.post} <- {self.pre}, E={self.n_edges}, w={self.sign * self.weight_magnitude_mv}"
            f" mV, D={self.delay_ms} ms, {kind}"
        )
