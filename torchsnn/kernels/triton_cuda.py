"""Triton kernels for the GPU: a whole min-delay block of LIF updates per population, and event-driven delivery.

Nothing here synchronises with the host: the delivery kernel runs one program per (step, replica, presynaptic
neuron) of the block, returns at once where there was no spike and otherwise walks its CSR row, so no event list
(and no ``nonzero``, whose size the host would need) is ever built. On CUDA the ring buffer holds fixed-point
integers (``FIXED_POINT_SCALE`` units per mV): integer atomic additions are associative, so the delivered input,
hence every spike, is the same from run to run despite the atomics' arbitrary order (float atomics are not).

The kernels are tested on the CPU through Triton's interpreter (``TRITON_INTERPRET=1``) against the torch
reference; on a GPU they are what ``Projection.deliver`` and ``LIFPopulation.run_block`` use.
"""

from __future__ import annotations

import os

import torch

try:
    import triton
    import triton.language as tl

    TRITON_AVAILABLE = True
except ImportError:  # pragma: no cover - triton ships with CUDA builds of torch
    TRITON_AVAILABLE = False

FIXED_POINT_BITS = 32
FIXED_POINT_SCALE = float(2**FIXED_POINT_BITS)  # ring units per mV: resolution 2.3e-10 mV, range +-2e9 mV


def triton_enabled(tensor: torch.Tensor) -> bool:
    """Use the Triton kernels for this tensor: on CUDA when Triton is there, and on the CPU only under the
    interpreter when asked to (``TORCHSNN_TRITON_ON_CPU=1`` with ``TRITON_INTERPRET=1``, for tests)."""
    if not TRITON_AVAILABLE or os.environ.get("TORCHSNN_TRITON", "1") == "0":
        return False
    if tensor.device.type == "cuda":
        return True
    return os.environ.get("TRITON_INTERPRET") == "1" and os.environ.get("TORCHSNN_TRITON_ON_CPU") == "1"


def to_fixed_point(weight_mv: torch.Tensor) -> torch.Tensor:
    """Signed float32 weights (mV) as int64 ring units, exactly as the kernel converts them (x 2^32, truncated)."""
    return (weight_mv.to(torch.float32) * FIXED_POINT_SCALE).to(torch.int64)


def from_fixed_point(units: torch.Tensor) -> torch.Tensor:
    """Ring units -> float32 mV, exactly as the LIF kernel reads them."""
    return units.to(torch.float32) * (1.0 / FIXED_POINT_SCALE)


if TRITON_AVAILABLE:

    @triton.jit
    def _deliver_kernel(
        spikes_ptr,
        row_ptr_ptr,
        post_ptr,
        weight_ptr,
        ring_ptr,
        first_slot,
        batch,
        n_pre,
        n_post,
        n_slots,
        n_edges,
        scale,
        WEIGHT_MODE: tl.constexpr,
        BLOCK_E: tl.constexpr,
    ):
        """One program per (step, replica, presynaptic neuron). WEIGHT_MODE 0: one weight; 1: (E,) shared by the
        replicas; 2: (B, E); 3: (B, N_pre) per presynaptic row. Weights are float32 mV, turned into int64 ring
        units (x scale, truncated) before the atomic addition."""
        pid = tl.program_id(0).to(tl.int64)  # int64 offsets: R B N and B E may exceed 2^31
        spiked = tl.load(spikes_ptr + pid)
        if spiked != 0:
            neuron = pid % n_pre
            replica = (pid // n_pre) % batch
            step = pid // (n_pre * batch)
            slot = (first_slot + step) % n_slots
            base = (slot * batch + replica) * n_post
            start = tl.load(row_ptr_ptr + neuron)
            end = tl.load(row_ptr_ptr + neuron + 1)
            if WEIGHT_MODE == 0:
                w_row = tl.load(weight_ptr)
            if WEIGHT_MODE == 3:
                w_row = tl.load(weight_ptr + replica * n_pre + neuron)
            for offset in range(start, end, BLOCK_E):
                edge = offset + tl.arange(0, BLOCK_E)
                valid = edge < end
                post = tl.load(post_ptr + edge, mask=valid, other=0)
                if WEIGHT_MODE == 1:
                    w = tl.load(weight_ptr + edge, mask=valid, other=0)
                elif WEIGHT_MODE == 2:
                    w = tl.load(weight_ptr + replica * n_edges + edge, mask=valid, other=0)
                else:
                    w = tl.zeros([BLOCK_E], dtype=tl.float32) + w_row
                tl.atomic_add(ring_ptr + base + post, (w * scale).to(tl.int64), mask=valid)

    @triton.jit
    def _lif_block_kernel(
        v_ptr,
        ref_ptr,
        ring_ptr,
        drive_ptr,
        spikes_ptr,
        record_first,
        record_every,
        v_record_ptr,
        first_slot,
        n_steps,
        n_slots,
        count,
        decay,
        theta,
        v_reset,
        refractory_steps,
        inv_scale,
        HAS_DRIVE: tl.constexpr,
        BLOCK: tl.constexpr,
    ):
        """``count`` = B * N neurons; each program owns BLOCK of them for all the block's steps."""
        offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < count
        v = tl.load(v_ptr + offs, mask=mask, other=0.0)
        ref = tl.load(ref_ptr + offs, mask=mask, other=0)
        k = 0
        for s in range(0, n_steps):
            slot = (first_slot + s) % n_slots
            units = tl.load(ring_ptr + slot * count + offs, mask=mask, other=0)
            tl.store(ring_ptr + slot * count + offs, tl.zeros([BLOCK], dtype=tl.int64), mask=mask)
            x = units.to(tl.float32) * inv_scale
            if HAS_DRIVE:
                x = x + tl.load(drive_ptr + s * count + offs, mask=mask, other=0.0)
            refractory = ref > 0
            decayed = v * decay
            vn = decayed + x
            spike = (vn >= theta) & (~refractory)
            v = tl.where(refractory | spike, v_reset, vn)
            ref = tl.where(spike, refractory_steps, tl.where(refractory, ref - 1, ref))
            tl.store(spikes_ptr + s * count + offs, spike.to(tl.int8), mask=mask)
            if s >= record_first and (s - record_first) % record_every == 0:
                tl.store(v_record_ptr + k * count + offs, v, mask=mask)
                k += 1
        tl.store(v_ptr + offs, v, mask=mask)
        tl.store(ref_ptr + offs, ref, mask=mask)


def deliver(
    spikes: torch.Tensor,
    row_ptr: torch.Tensor,
    post_index: torch.Tensor,
    weight_mv: torch.Tensor,
    ring: torch.Tensor,
    first_slot: int,
    per_row: bool = False,
    block_e: int = 128,
) -> None:
    """Add the block's events into the int64 ring (R, B, N_post). ``weight_mv``: signed float32 weights, 0-d, (E,),
    (B, E), or with ``per_row`` (B, N_pre)."""
    n_steps, batch, n_pre = spikes.shape
    mode = 3 if per_row else min(weight_mv.dim(), 2)
    _deliver_kernel[(n_steps * batch * n_pre,)](
        spikes.contiguous().view(torch.int8),
        row_ptr,
        post_index,
        weight_mv.to(torch.float32).contiguous(),
        ring,
        first_slot % ring.shape[0],
        batch,
        n_pre,
        ring.shape[2],
        ring.shape[0],
        post_index.numel(),
        FIXED_POINT_SCALE,
        WEIGHT_MODE=mode,
        BLOCK_E=block_e,
    )


def lif_block(
    v: torch.Tensor,
    refractory: torch.Tensor,
    ring: torch.Tensor,
    first_slot: int,
    drive: torch.Tensor | None,
    n_steps: int,
    record_steps: list[int],
    decay: float,
    theta: float,
    v_reset: float,
    refractory_steps: int,
    block: int = 1024,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """``n_steps`` LIF steps for every (replica, neuron); the ring's slots are read (ring units) and cleared."""
    count = v.numel()
    spikes = torch.empty(n_steps, *v.shape, dtype=torch.int8, device=v.device)
    steps = sorted(set(record_steps))  # an arithmetic progression (voltage sampling): first step and stride
    first, every = (steps[0], steps[1] - steps[0] if len(steps) > 1 else n_steps) if steps else (n_steps, 1)
    if any(s != first + i * every for i, s in enumerate(steps)):
        raise ValueError(f"record_steps must be evenly spaced, got {steps}")
    v_record = torch.empty(max(len(steps), 1), *v.shape, dtype=v.dtype, device=v.device)
    _lif_block_kernel[(triton.cdiv(count, block),)](
        v,
        refractory,
        ring,
        drive if drive is not None else v,
        spikes,
        first,
        every,
        v_record,
        first_slot % ring.shape[0],
        n_steps,
        ring.shape[0],
        count,
        decay,
        theta,
        v_reset,
        refractory_steps,
        1.0 / FIXED_POINT_SCALE,
        HAS_DRIVE=drive is not None,
        BLOCK=block,
    )
    return spikes.view(torch.bool), [v_record[i] for i in range(len(steps))]
