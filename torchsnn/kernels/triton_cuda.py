"""Triton kernels of the ``triton_cuda`` backend (imported only when it is chosen; needs triton).

Per population and block, ONE neuron kernel (:func:`_neuron_block_kernel`) does everything that is per neuron:
external drive sampled in the kernel (Poisson table inversion or Gaussian noise from a counter-based Philox
stream keyed by a device seed and the absolute step), the LIF update, the ring slots read and cleared, spike
statistics (counts, ISI sums) and per-step population counts for the monitors, voltage samples, and the
compaction of the block's spikes into an event list (atomic cursor, bounded buffer, overflow counter). Per
projection ONE delivery kernel (:func:`_deliver_events_kernel`) walks that list with work per (event, chunk of
its CSR row): its cost follows the events, not N, and every outgoing projection of a population reads the one
compaction. Ring additions are relaxed integer atomics into the int64 fixed-point ring (deterministic sums).

Nothing here synchronises with the host and nothing reads a host step counter: the absolute step is a device
tensor, so a block can be captured as a CUDA graph and replayed. Offsets are int64 (slots x replicas x neurons
and events x row lengths can pass 2^31); grids are 2-D (neuron blocks x replicas) or fixed (delivery), never
one program per (step, replica, neuron). Integer arguments that change between calls are not specialised
(``do_not_specialize``), and FP contraction is off (``enable_fp_fusion=False``) so that voltages equal the
torch reference bit for bit. Tested on the CPU under ``TRITON_INTERPRET=1`` (tests/kernels/triton_check.py).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from torchsnn.kernels.fixed_point import FIXED_POINT_SCALE

LAUNCH = {"enable_fp_fusion": False}  # compile option of every launch: no FMA contraction (bit-identity)
DRIVE_NONE, DRIVE_TENSOR, DRIVE_POISSON, DRIVE_GAUSSIAN = 0, 1, 2, 3


@triton.jit
def _append_events(spike, flat, events_ptr, cursor_ptr, overflow_ptr, capacity):
    """Append the flat indices of this program's spikes to the event list (order across programs arbitrary)."""
    n_new = tl.sum(spike.to(tl.int64), axis=0)
    if n_new > 0:
        base = tl.atomic_add(cursor_ptr, n_new, sem="relaxed")
        pos = base + tl.cumsum(spike.to(tl.int64), axis=0) - 1
        tl.store(events_ptr + pos, flat, mask=spike & (pos < capacity))
        lost = tl.minimum(base + n_new - capacity, n_new)
        if lost > 0:
            tl.atomic_add(overflow_ptr, lost, sem="relaxed")


@triton.jit
def _uniform64(seed, offset):
    """A float64 uniform on [0, 1) with 53 random bits from one Philox draw (counter = ``offset``)."""
    r0, r1, _r2, _r3 = tl.randint4x(seed, offset)
    hi = (r0 >> 5).to(tl.float64)
    lo = (r1 >> 6).to(tl.float64)
    return (hi * 67108864.0 + lo) * 1.1102230246251565e-16


@triton.jit
def _invert(u, cdf_ptr, values_ptr, n_table, LOG_TABLE: tl.constexpr):
    """values[k], k = #{j : cdf[j] <= u} clamped to n_table - 1: ``searchsorted(right=True)`` by bisection."""
    lo = tl.zeros(u.shape, dtype=tl.int32)
    hi = tl.zeros(u.shape, dtype=tl.int32) + n_table
    for _ in tl.static_range(LOG_TABLE):
        active = lo < hi
        mid = (lo + hi) // 2
        c = tl.load(cdf_ptr + mid, mask=active, other=2.0)
        go = active & (c <= u)
        lo = tl.where(go, mid + 1, lo)
        hi = tl.where(active & ~go, mid, hi)
    return tl.load(values_ptr + tl.minimum(lo, n_table - 1))


@triton.jit(do_not_specialize=["n_steps", "record_first", "record_phase", "record_cap", "window_start", "rate_first"])
def _neuron_block_kernel(
    v_ptr, ref_ptr, ring_ptr, step_ptr, spikes_ptr,
    drive_ptr, cdf_ptr, values_ptr, n_table, seed_ptr, noise_scale, noise_offset,
    v_record_ptr, record_every, record_phase, record_first, record_cap,
    events_ptr, cursor_ptr, overflow_ptr, event_capacity,
    count_ptr, last_ptr, isi_sum_ptr, isi_sq_ptr, isi_n_ptr, window_start,
    rate_ptr, rate_first, rate_len,
    n_steps, n_slots, batch, size, decay, theta, v_reset, refractory_steps, inv_scale,
    DRIVE: tl.constexpr, LOG_TABLE: tl.constexpr, HAS_EVENTS: tl.constexpr, HAS_STATS: tl.constexpr,
    HAS_RATE: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    """Program (i, b): neurons i*BLOCK.. of replica b, for all ``n_steps`` steps from the absolute step t0 at
    ``step_ptr``. Step s: input = ring[(t0 + s) mod R] (ring units, then cleared) + drive; LIF update; spike ->
    statistics, population count, event list; voltage stored where s >= record_first and
    (t0 + s + record_phase) mod record_every == 0 (at most record_cap of them)."""
    b = tl.program_id(1).to(tl.int64)
    n = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = n < size
    count = batch * size
    offs = b * size + n
    t0 = tl.load(step_ptr)
    v = tl.load(v_ptr + offs, mask=mask, other=0.0)
    ref = tl.load(ref_ptr + offs, mask=mask, other=0)
    if HAS_STATS:
        cnt = tl.load(count_ptr + offs, mask=mask, other=0)
        last = tl.load(last_ptr + offs, mask=mask, other=-1)
        isi_sum = tl.load(isi_sum_ptr + offs, mask=mask, other=0.0)
        isi_sq = tl.load(isi_sq_ptr + offs, mask=mask, other=0.0)
        isi_n = tl.load(isi_n_ptr + offs, mask=mask, other=0)
    if DRIVE >= DRIVE_POISSON:
        seed = tl.load(seed_ptr)
    k = 0
    for s in range(0, n_steps):
        step = t0 + s
        ring_offs = (step % n_slots) * count + offs
        units = tl.load(ring_ptr + ring_offs, mask=mask, other=0)
        tl.store(ring_ptr + ring_offs, tl.zeros([BLOCK], dtype=tl.int64), mask=mask)
        x = units.to(tl.float32) * inv_scale
        if DRIVE == DRIVE_TENSOR:
            x = x + tl.load(drive_ptr + s * count + offs, mask=mask, other=0.0)
        if DRIVE == DRIVE_POISSON:
            x = x + _invert(_uniform64(seed, step * count + offs), cdf_ptr, values_ptr, n_table, LOG_TABLE)
        if DRIVE == DRIVE_GAUSSIAN:
            x = x + (tl.randn(seed, step * count + offs) * noise_scale + noise_offset)
        refractory = ref > 0
        vn = v * decay + x
        spike = (vn >= theta) & (~refractory) & mask
        v = tl.where(refractory | spike, v_reset, vn)
        ref = tl.where(spike, refractory_steps, tl.where(refractory, ref - 1, ref))
        tl.store(spikes_ptr + s * count + offs, spike.to(tl.int8), mask=mask)
        if (s >= record_first) & ((step + record_phase) % record_every == 0):
            if k < record_cap:
                tl.store(v_record_ptr + k * count + offs, v, mask=mask)
            k += 1
        if HAS_STATS:
            step_v = tl.zeros([BLOCK], dtype=tl.int64) + step  # a tensor (the interpreter mistypes scalar & tensor)
            inside = spike & (step_v >= window_start)
            valid = inside & (last >= window_start)
            d = (step_v - last).to(tl.float64)
            cnt += inside.to(tl.int32)
            isi_sum += tl.where(valid, d, 0.0)
            isi_sq += tl.where(valid, d * d, 0.0)
            isi_n += valid.to(tl.int32)
            last = tl.where(spike, step_v, last)
        if HAS_RATE:
            row = step - rate_first
            if (row >= 0) & (row < rate_len):
                tl.atomic_add(rate_ptr + row * batch + b, tl.sum(spike.to(tl.int32), axis=0), sem="relaxed")
        if HAS_EVENTS:
            _append_events(spike, (s * batch + b) * size + n, events_ptr, cursor_ptr, overflow_ptr, event_capacity)
    tl.store(v_ptr + offs, v, mask=mask)
    tl.store(ref_ptr + offs, ref, mask=mask)
    if HAS_STATS:
        tl.store(count_ptr + offs, cnt, mask=mask)
        tl.store(last_ptr + offs, last, mask=mask)
        tl.store(isi_sum_ptr + offs, isi_sum, mask=mask)
        tl.store(isi_sq_ptr + offs, isi_sq, mask=mask)
        tl.store(isi_n_ptr + offs, isi_n, mask=mask)


@triton.jit
def _compact_kernel(spikes_ptr, events_ptr, cursor_ptr, overflow_ptr, capacity, batch, size, BLOCK: tl.constexpr):
    """Program (i, b, s): the spikes of step s, replica b, neurons i*BLOCK.. appended to the event list."""
    b = tl.program_id(1).to(tl.int64)
    s = tl.program_id(2).to(tl.int64)
    n = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    flat = (s * batch + b) * size + n
    spike = tl.load(spikes_ptr + flat, mask=n < size, other=0) != 0
    _append_events(spike, flat, events_ptr, cursor_ptr, overflow_ptr, capacity)


@triton.jit(do_not_specialize=["delay"])
def _deliver_events_kernel(
    events_ptr, cursor_ptr, capacity, step_ptr, delay, row_ptr_ptr, post_ptr, weight_ptr, ring_ptr,
    batch, n_pre, n_post, n_slots, n_edges, chunks, scale,
    WEIGHT_MODE: tl.constexpr, BLOCK_E: tl.constexpr,
):  # fmt: skip
    """A fixed grid of programs shares the items (event, chunk of BLOCK_E edges of its row), ``chunks`` per
    event (= ceil(max out-degree / BLOCK_E)). Event (s, b, i) adds w to ring[(t0 + delay + s) mod R, b, post]
    for each edge of row i. WEIGHT_MODE 0: one weight; 1: (E,) shared; 2: (B, E); 3: (B, N_pre) per row."""
    pid = tl.program_id(0).to(tl.int64)
    n_programs = tl.num_programs(0).to(tl.int64)
    n_events = tl.minimum(tl.load(cursor_ptr), capacity)
    t0 = tl.load(step_ptr) + delay
    for item in range(pid, n_events * chunks, n_programs):
        flat = tl.load(events_ptr + item // chunks)
        neuron = flat % n_pre
        replica = (flat // n_pre) % batch
        slot = (t0 + flat // (n_pre * batch)) % n_slots
        end = tl.load(row_ptr_ptr + neuron + 1)
        edge = tl.load(row_ptr_ptr + neuron) + (item % chunks) * BLOCK_E + tl.arange(0, BLOCK_E)
        valid = edge < end
        post = tl.load(post_ptr + edge, mask=valid, other=0).to(tl.int64)
        if WEIGHT_MODE == 0:
            w = tl.zeros([BLOCK_E], dtype=tl.float32) + tl.load(weight_ptr)
        elif WEIGHT_MODE == 1:
            w = tl.load(weight_ptr + edge, mask=valid, other=0.0)
        elif WEIGHT_MODE == 2:
            w = tl.load(weight_ptr + replica * n_edges + edge, mask=valid, other=0.0)
        else:
            w = tl.zeros([BLOCK_E], dtype=tl.float32) + tl.load(weight_ptr + replica * n_pre + neuron)
        target = ring_ptr + (slot * batch + replica) * n_post + post
        tl.atomic_add(target, (w * scale).to(tl.int64), mask=valid, sem="relaxed")


@triton.jit(do_not_specialize=["n_steps"])
def _advance_kernel(step_ptr, cursor_ptr, n_cursors, n_steps, BLOCK: tl.constexpr):
    """After a block: t0 += n_steps, event cursors back to 0 (one launch)."""
    tl.store(step_ptr, tl.load(step_ptr) + n_steps)
    i = tl.arange(0, BLOCK)
    tl.store(cursor_ptr + i, tl.zeros([BLOCK], dtype=tl.int64), mask=i < n_cursors)


# ---------------------------------------------------------------------------------------------- launchers
def weight_mode(weight_mv: torch.Tensor, per_row: bool) -> int:
    return 3 if per_row else min(weight_mv.dim(), 2)


def delivery_programs(device: torch.device) -> int:
    """Size of the fixed delivery grid: enough programs to fill the GPU (a few per SM), few under the
    interpreter (each program is a Python loop there)."""
    if device.type != "cuda":
        return 3
    return 16 * torch.cuda.get_device_properties(device).multi_processor_count


def launch_delivery(
    events: torch.Tensor,
    cursor: torch.Tensor,
    step: torch.Tensor,
    delay: int,
    row_ptr: torch.Tensor,
    post_index: torch.Tensor,
    weight_mv: torch.Tensor,
    ring: torch.Tensor,
    per_row: bool,
    chunks: int,
    n_pre: int,
    programs: int,
    block_e: int = 128,
) -> None:
    """Deliver the event list (``cursor``: a 0-d int64 tensor) into the int64 ring (R, B, N_post)."""
    n_slots, batch, n_post = ring.shape
    _deliver_events_kernel[(programs,)](
        events, cursor, events.numel(), step, delay, row_ptr, post_index, weight_mv, ring,
        batch, n_pre, n_post, n_slots, post_index.numel(), chunks, FIXED_POINT_SCALE,
        WEIGHT_MODE=weight_mode(weight_mv, per_row), BLOCK_E=block_e, **LAUNCH,
    )  # fmt: skip


def deliver(
    spikes: torch.Tensor,
    row_ptr: torch.Tensor,
    post_index: torch.Tensor,
    weight_mv: torch.Tensor,
    ring: torch.Tensor,
    first_slot: int,
    per_row: bool = False,
    block_e: int = 128,
) -> int:
    """Add a block's events (spikes (M, B, N_pre)) into the int64 ring (R, B, N_post): compaction, then the
    event-list delivery. ``weight_mv``: signed float32 weights, 0-d, (E,), (B, E), or with ``per_row``
    (B, N_pre). Returns nothing to wait for (the ring is updated in stream order); the return value is the
    number of launches (2)."""
    if not per_row and weight_mv.dim() == 1 and weight_mv.numel() != post_index.numel():
        raise ValueError(f"weight_mv has {weight_mv.numel()} values for {post_index.numel()} edges")
    m, batch, n_pre = spikes.shape
    dev = spikes.device
    events = torch.empty(max(spikes.numel(), 1), dtype=torch.int64, device=dev)
    cursor = torch.zeros(2, dtype=torch.int64, device=dev)  # [cursor, overflow]
    block = 256
    _compact_kernel[(triton.cdiv(n_pre, block), batch, m)](
        spikes.contiguous().view(torch.int8), events, cursor, cursor[1:], events.numel(), batch, n_pre, BLOCK=block
    )
    degree = row_ptr[1:] - row_ptr[:-1]
    chunks = triton.cdiv(int(degree.max()) if degree.numel() else 0, block_e)
    step = torch.full((1,), first_slot % ring.shape[0], dtype=torch.int64, device=dev)
    w = weight_mv.to(device=dev, dtype=torch.float32).contiguous()
    launch_delivery(events, cursor, step, 0, row_ptr, post_index, w, ring, per_row, chunks, n_pre,
                    delivery_programs(dev), block_e)  # fmt: skip
    return 2


def record_plan(record_steps: list[int], n_steps: int, first_slot: int) -> tuple[int, int, int, int]:
    """(first, every, phase, count) such that the kernel records exactly ``record_steps``: s >= first and
    (first_slot + s + phase) mod every == 0. Raises ValueError unless they are evenly spaced steps of the block."""
    steps = sorted(set(record_steps))
    if any(s < 0 or s >= n_steps for s in steps):
        raise ValueError(f"record_steps must lie in [0, {n_steps}), got {steps}")
    if not steps:
        return n_steps, 1, 0, 0
    every = steps[1] - steps[0] if len(steps) > 1 else n_steps
    if any(s != steps[0] + i * every for i, s in enumerate(steps)):
        raise ValueError(f"record_steps must be evenly spaced, got {steps}")
    return steps[0], every, (-(first_slot + steps[0])) % every, len(steps)


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
    """``n_steps`` LIF steps for every (replica, neuron) with a given drive (M, B, N) or none; the ring's slots
    (ring units) are read and cleared. Returns spikes (M, B, N) bool and the voltages after ``record_steps``."""
    batch, size = v.shape
    first, every, phase, n_rec = record_plan(record_steps, n_steps, first_slot)
    spikes = torch.empty(n_steps, batch, size, dtype=torch.int8, device=v.device)
    v_record = torch.empty(max(n_rec, 1), batch, size, dtype=v.dtype, device=v.device)
    step = torch.full((1,), first_slot % ring.shape[0], dtype=torch.int64, device=v.device)
    neuron_block(
        v, refractory, ring, step, spikes, v_record, (first, every, phase, n_rec), n_steps,
        (decay, theta, v_reset, refractory_steps), drive=(DRIVE_TENSOR, drive) if drive is not None else None,
        block=block,
    )  # fmt: skip
    return spikes.view(torch.bool), [v_record[i] for i in range(n_rec)]


def neuron_block(
    v, ref, ring, step, spikes, v_record, record, n_steps, lif, drive=None, events=None, stats=None, rate=None,
    block: int = 1024,
) -> None:  # fmt: skip
    """Launch :func:`_neuron_block_kernel`. ``record`` = (first, every, phase, cap); ``lif`` = (decay, theta,
    v_reset, refractory_steps); ``drive`` = (DRIVE_TENSOR, (M, B, N)) | (DRIVE_POISSON, (cdf, values, seed)) |
    (DRIVE_GAUSSIAN, (scale, offset, seed)) | None; ``events`` = (events, cursor, overflow); ``stats`` = (dict of
    count, last, isi_sum, isi_sq, isi_n, window_start); ``rate`` = (counts (T, B) int32, first step)."""
    batch, size = v.shape
    block = max(16, min(block, triton.next_power_of_2(size)))  # small populations: no idle lanes
    mode, payload = drive if drive is not None else (DRIVE_NONE, None)
    dummy_f, dummy_i = v, step
    drive_t = payload if mode == DRIVE_TENSOR else dummy_f
    cdf, values, n_table = (payload[0], payload[1], payload[0].numel()) if mode == DRIVE_POISSON else (v, v, 1)
    seed = payload[-1] if mode in (DRIVE_POISSON, DRIVE_GAUSSIAN) else dummy_i
    scale, offset = (payload[0], payload[1]) if mode == DRIVE_GAUSSIAN else (0.0, 0.0)
    ev, cursor, overflow = events if events is not None else (dummy_i, dummy_i, dummy_i)
    st, window = stats if stats is not None else (None, 0)
    st_ptrs = [st[k] for k in ("count", "last", "isi_sum", "isi_sq", "isi_n")] if st else [ref, step, v, v, ref]
    rate_t, rate_first = rate if rate is not None else (dummy_i, 0)
    decay, theta, v_reset, refractory_steps = lif
    _neuron_block_kernel[(triton.cdiv(size, block), batch)](
        v, ref, ring, step, spikes,
        drive_t, cdf, values, n_table, seed, scale, offset,
        v_record, record[1], record[2], record[0], record[3],
        ev, cursor, overflow, ev.numel(),
        *st_ptrs, window,
        rate_t, rate_first, rate_t.shape[0] if rate is not None else 0,
        n_steps, ring.shape[0], batch, size, decay, theta, v_reset, refractory_steps, 1.0 / FIXED_POINT_SCALE,
        DRIVE=mode, LOG_TABLE=max(int(n_table).bit_length(), 1), HAS_EVENTS=events is not None,
        HAS_STATS=stats is not None, HAS_RATE=rate is not None, BLOCK=block, **LAUNCH,
    )  # fmt: skip


def advance(step: torch.Tensor, cursors: torch.Tensor, n_steps: int) -> None:
    """One launch: the device step counter moves on by ``n_steps``, the event cursors go back to 0."""
    _advance_kernel[(1,)](step, cursors, cursors.numel(), n_steps, BLOCK=triton.next_power_of_2(cursors.numel()))
