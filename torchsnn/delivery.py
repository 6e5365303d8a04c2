"""Event-driven delivery of a block of spikes through CSR rows into a delay ring buffer.

A projection post <- pre stores its scaffold block as CSR by presynaptic neuron (``row_ptr``, ``post_index``).
Spikes emitted in a min-delay block at steps t0 + s (s = 0..M-1) by presynaptic neuron i of replica b reach every
post neuron j of row i at step t0 + s + D, i.e. ring slot (t0 + s + D) mod R, with that edge's weight.

This module is the reference implementation in plain torch ops (any device). It gathers the rows of the neurons
that spiked (``repeat_interleave`` over row lengths) and scatters with ``index_add_``; faster kernels must give
identical input (see tests).
"""

from __future__ import annotations

import torch
from torch import Tensor

from torchsnn.kernels.fixed_point import to_fixed_point


def gather_spiking_edges(spikes: Tensor, row_ptr: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Edges leaving the neurons that spiked in a block.

    Args:
        spikes: (M, B, N_pre) bool, the block's spikes.
        row_ptr: (N_pre + 1,) int64 CSR row pointer.

    Returns:
        (step, replica, neuron, edge): for every synaptic event, the step within the block, the replica, the
        presynaptic neuron and the edge id.
    """
    step, replica, neuron = spikes.nonzero(as_tuple=True)
    start = row_ptr[neuron]
    count = row_ptr[neuron + 1] - start
    owner = torch.repeat_interleave(torch.arange(neuron.numel(), device=spikes.device), count)
    first_of_owner = torch.cumsum(count, 0) - count
    offset_in_row = torch.arange(owner.numel(), device=spikes.device) - first_of_owner[owner]
    return step[owner], replica[owner], neuron[owner], start[owner] + offset_in_row


def deliver_block(
    spikes: Tensor,
    row_ptr: Tensor,
    post_index: Tensor,
    weight_mv: Tensor,
    ring: Tensor,
    first_slot: int,
    per_row: bool = False,
) -> None:
    """Add the block's synaptic events to ``ring`` (R, B, N_post) in place.

    Args:
        spikes: (M, B, N_pre) bool.
        row_ptr, post_index: CSR of the scaffold block.
        weight_mv: signed weights, a 0-d tensor (homogeneous), (E,) shared by replicas, (B, E), or with
            ``per_row`` (B, N_pre), one weight per presynaptic neuron.
        ring: (R, B, N_post) delay ring buffer: float32 mV, or int64 fixed-point units (the GPU path's
            deterministic ring, see torchsnn.kernels.fixed_point).
        first_slot: t0 + D, the absolute step at which step 0 of the block arrives (taken mod R).
    """
    n_slots, batch, n_post = ring.shape
    step, replica, neuron, edge = gather_spiking_edges(spikes, row_ptr)
    if per_row:
        w = weight_mv[replica, neuron]
    elif weight_mv.dim() == 0:
        w = weight_mv.expand(edge.numel())
    elif weight_mv.dim() == 1:
        w = weight_mv[edge]
    else:
        w = weight_mv[replica, edge]
    # a fixed-point ring (the GPU path) takes the weights as the kernels convert them
    w = w.to(ring.dtype) if ring.dtype.is_floating_point else to_fixed_point(w)
    slot = (step + first_slot) % n_slots
    flat = (slot * batch + replica) * n_post + post_index[edge].long()
    ring.view(-1).index_add_(0, flat, w)
