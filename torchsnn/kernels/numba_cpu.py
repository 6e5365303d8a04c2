"""numba kernels for the CPU (imported only when the ``numba_cpu`` backend is chosen): a whole min-delay block
of LIF updates per population, and event-driven delivery over the CSR rows of the neurons that spiked.

They operate in place on the tensors' memory (``tensor.numpy()`` shares it) and reproduce the torch reference
bit for bit: float32 arithmetic in the same order (decay, then + input; the input is ring + drive), events
delivered in the order (step, replica, neuron, edge) that ``nonzero`` + ``index_add_`` use.
"""

from __future__ import annotations

import numba
from numba import njit


@njit(cache=True, nogil=True)
def lif_block(
    v, refractory, ring, first_slot, drive, spikes, record_steps, v_record, decay, theta, v_reset, refractory_steps
):  # pragma: no cover - compiled
    """M steps of LIF dynamics; ring slots read and cleared; spikes (M, B, N) written; voltages copied after
    the steps flagged in ``record_steps``."""
    n_steps = spikes.shape[0]
    n_slots, batch, size = ring.shape
    has_drive = drive.shape[0] > 0
    k = 0
    for s in range(n_steps):
        slot = (first_slot + s) % n_slots
        for b in range(batch):
            for n in range(size):
                x = ring[slot, b, n]
                if has_drive:
                    x = x + drive[s, b, n]
                ring[slot, b, n] = 0.0
                if refractory[b, n] > 0:
                    refractory[b, n] -= 1
                    v[b, n] = v_reset
                    spikes[s, b, n] = False
                else:
                    vn = v[b, n] * decay + x
                    if vn >= theta:
                        v[b, n] = v_reset
                        refractory[b, n] = refractory_steps
                        spikes[s, b, n] = True
                    else:
                        v[b, n] = vn
                        spikes[s, b, n] = False
        if record_steps[s]:
            v_record[k, :, :] = v
            k += 1


@njit(cache=True, nogil=True)
def deliver_scalar(spikes, row_ptr, post_index, weight, ring, first_slot):  # pragma: no cover - compiled
    n_steps, batch, n_pre = spikes.shape
    n_slots = ring.shape[0]
    for s in range(n_steps):
        slot = (first_slot + s) % n_slots
        for b in range(batch):
            for i in range(n_pre):
                if spikes[s, b, i]:
                    for e in range(row_ptr[i], row_ptr[i + 1]):
                        ring[slot, b, post_index[e]] += weight


@njit(cache=True, nogil=True)
def deliver_per_row(spikes, row_ptr, post_index, weight, ring, first_slot):  # pragma: no cover - compiled
    """``weight`` is (B, N_pre): one weight per presynaptic neuron and replica."""
    n_steps, batch, n_pre = spikes.shape
    n_slots = ring.shape[0]
    for s in range(n_steps):
        slot = (first_slot + s) % n_slots
        for b in range(batch):
            for i in range(n_pre):
                if spikes[s, b, i]:
                    w = weight[b, i]
                    for e in range(row_ptr[i], row_ptr[i + 1]):
                        ring[slot, b, post_index[e]] += w


@njit(cache=True, nogil=True)
def deliver_per_edge(spikes, row_ptr, post_index, weight, ring, first_slot):  # pragma: no cover - compiled
    """``weight`` is (B, E) (a shared (E,) vector is passed as a (1, E) view)."""
    n_steps, batch, n_pre = spikes.shape
    n_slots = ring.shape[0]
    shared = weight.shape[0] == 1
    for s in range(n_steps):
        slot = (first_slot + s) % n_slots
        for b in range(batch):
            wb = 0 if shared else b
            for i in range(n_pre):
                if spikes[s, b, i]:
                    for e in range(row_ptr[i], row_ptr[i + 1]):
                        ring[slot, b, post_index[e]] += weight[wb, e]


@njit(cache=True, nogil=True)
def invert_table(u, cdf, guide, values, out):  # pragma: no cover - compiled
    """out[i] = values[k], k = #{j : cdf[j] <= u[i]} clamped to the table (inversion sampling; the integer
    ``torch.searchsorted(cdf, u, right=True)`` gives). ``guide[g]`` = #{j : cdf[j] <= g / G} starts the
    search (Chen & Asau's guide table), so a draw costs about one comparison."""
    n = cdf.shape[0]
    n_guide = guide.shape[0]
    for i in range(u.shape[0]):
        x = u[i]
        k = guide[min(int(x * n_guide), n_guide - 1)]
        while k < n - 1 and cdf[k] <= x:
            k += 1
        out[i] = values[k]


@njit(cache=True, nogil=True)
def spike_statistics(spikes, first_step, window_start, count, last, isi_sum, isi_sq, isi_n):  # pragma: no cover
    """Per neuron: spike count inside the window, and sums of the inter-spike intervals whose two spikes lie in
    the window (``last`` holds the step of each neuron's previous spike, -1 if none)."""
    n_steps, batch, size = spikes.shape
    for s in range(n_steps):
        step = first_step + s
        if step < window_start:
            for b in range(batch):
                for n in range(size):
                    if spikes[s, b, n]:
                        last[b, n] = step
            continue
        for b in range(batch):
            for n in range(size):
                if spikes[s, b, n]:
                    count[b, n] += 1
                    prev = last[b, n]
                    if prev >= window_start:
                        d = float(step - prev)
                        isi_sum[b, n] += d
                        isi_sq[b, n] += d * d
                        isi_n[b, n] += 1
                    last[b, n] = step


@njit(cache=True, nogil=True)
def relax_separable(w, f_pre, f_post, pre_index, post_index, decay, w_min, w_max, sign):  # pragma: no cover
    """Exact relaxation of signed per-edge weights w (B, E) towards |target| = f_pre[pre] f_post[post]:
    |w| <- clip(t + (|w| - t) decay, w_min, w_max), the sign kept."""
    batch, n_edges = w.shape
    for b in range(batch):
        for e in range(n_edges):
            t = f_pre[b, pre_index[e]] * f_post[b, post_index[e]]
            m = t + (w[b, e] * sign - t) * decay
            if m < w_min:
                m = w_min
            elif m > w_max:
                m = w_max
            w[b, e] = m * sign


__all__ = [
    "deliver_per_edge",
    "deliver_per_row",
    "deliver_scalar",
    "invert_table",
    "lif_block",
    "numba",
    "relax_separable",
    "spike_statistics",
]
