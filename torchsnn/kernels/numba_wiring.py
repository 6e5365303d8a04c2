"""numba kernels for wiring on the CPU (imported only when the wiring runs on the CPU with the compiled kernels on;
``torchsnn.scaffold.host_wiring`` calls them, the vectorised torch code of ``torchsnn.scaffold.edges`` is the CUDA
path and the reference).

The vectorised torch path needs a sort per chunk to find duplicates and to turn the edges, drawn by post neuron,
into a CSR by pre neuron. Sequential loops need neither: a mark per pre neuron (``mark[p] == j``: p is already a
partner of post j) finds repeated pairs in O(1), and a counting sort turns the edges, kept post-major in one int32
slot per stub, into the CSR (rows ascending in post because posts are visited in order).

Random numbers: splitmix64 (Steele, Lea & Flood 2014) from a 64-bit seed drawn from the wiring's torch.Generator,
so the same seed gives the same scaffold; bounded integers by Lemire's multiply-shift with rejection (exactly
uniform on [0, n), n < 2^32). Everything is single-threaded and deterministic.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_LOW32 = np.uint64(0xFFFFFFFF)
_TWO32 = np.uint64(1 << 32)


@njit(cache=True, nogil=True, inline="always")
def _next(state):  # pragma: no cover - compiled
    """(new state, the next 64 random bits): splitmix64; the state is a uint64 kept in a register by the caller."""
    state = state + _GOLDEN
    z = state
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return state, z ^ (z >> np.uint64(31))


@njit(cache=True, nogil=True, inline="always")
def _below(state, n):  # pragma: no cover - compiled
    """(new state, a uniform integer in [0, n)), 1 <= n < 2^32 (Lemire 2019: multiply-shift, rejection of the
    biased tail)."""
    bound = np.uint64(n)
    state, z = _next(state)
    m = (z >> np.uint64(32)) * bound
    low = m & _LOW32
    if low < bound:
        threshold = (_TWO32 - bound) % bound
        while low < threshold:
            state, z = _next(state)
            m = (z >> np.uint64(32)) * bound
            low = m & _LOW32
    return state, np.int64(m >> np.uint64(32))


@njit(cache=True, nogil=True)
def distinct_by_post(counts, n_pre, no_self, seed, slots):  # pragma: no cover - compiled
    """Post j draws counts[j] distinct pre neurons uniformly (rejection of repeats; without self-loops, values
    from n_pre - 1 shifted past j) into ``slots`` (int32, post-major: post j owns slots [sum_{i<j} counts_i, ...)).
    Repeated rejection of a value already drawn gives a uniform subset. Requires counts[j] <= candidates."""
    state = np.uint64(seed)
    mark = np.full(n_pre, -1, dtype=np.int64)
    m = n_pre - 1 if no_self else n_pre
    pos = 0
    for j in range(counts.shape[0]):
        for _ in range(counts[j]):
            state, v = _below(state, m)
            if no_self and v >= j:
                v += 1
            while mark[v] == j:
                state, v = _below(state, m)
                if no_self and v >= j:
                    v += 1
            mark[v] = j
            slots[pos] = v
            pos += 1


@njit(cache=True, nogil=True)
def shuffle_stubs(out_deg, seed, bucket, slots):  # pragma: no cover - compiled
    """``slots`` <- a uniformly random permutation of the stub list [0]*out_deg[0] + [1]*out_deg[1] + ...

    Two-level shuffle (Sanders 1998): every stub draws an i.i.d. uniform bucket label (one pass counts them, a
    second pass with the same random stream writes each stub to its bucket, in stub order), then each bucket of
    about ``bucket`` stubs (cache-sized) is shuffled by Fisher-Yates. Given the bucket sizes every order has the
    same probability, so the result is uniform."""
    total = slots.shape[0]
    n_buckets = max(1, total // bucket)
    state = np.uint64(seed)
    size = np.zeros(n_buckets + 1, dtype=np.int64)
    if n_buckets > 1:
        for i in range(out_deg.shape[0]):
            for _ in range(out_deg[i]):
                state, b = _below(state, n_buckets)
                size[b + 1] += 1
    else:
        size[1] = total
    for b in range(n_buckets):
        size[b + 1] += size[b]
    fill = size[:-1].copy()
    state = np.uint64(seed)  # the same labels again
    for i in range(out_deg.shape[0]):
        for _ in range(out_deg[i]):
            b = 0
            if n_buckets > 1:
                state, b = _below(state, n_buckets)
            slots[fill[b]] = i
            fill[b] += 1
    for b in range(n_buckets):
        lo = size[b]
        for t in range(size[b + 1] - lo - 1, 0, -1):
            state, u = _below(state, t + 1)
            u += lo
            x = slots[lo + t]
            slots[lo + t] = slots[u]
            slots[u] = x


@njit(cache=True, nogil=True)
def match_stubs(col_ptr, n_pre, square, rounds, state_seed, slots, report):  # pragma: no cover - compiled
    """Stub matching in place: ``slots[s]`` holds the pre stub matched to post stub s (post j owns slots
    [col_ptr[j], col_ptr[j + 1])). A pair that is a self-loop (``square``) or repeats an earlier pair of its post
    neuron is rejected (slot -1) and its stubs are matched again at random (Fisher-Yates over the rejected pre
    stubs) for up to ``rounds`` rounds, the rejected slots in post order; before a post neuron's re-matched stubs
    are checked, its current partners are marked (a new stamp per visit, so the marks are never cleared).

    ``report`` (int64, 5): self-loops and duplicates of the first matching, self-loops among those still
    unmatched at the end, all still unmatched (lost), and the rounds used."""
    state = np.uint64(state_seed)
    n_post = col_ptr.shape[0] - 1
    mark = np.full(n_pre, -1, dtype=np.int64)
    n_rej = 0
    n_self = 0
    for j in range(n_post):
        for s in range(col_ptr[j], col_ptr[j + 1]):
            p = slots[s]
            if (square and p == j) or mark[p] == j:
                n_rej += 1
                if square and p == j:
                    n_self += 1
            else:
                mark[p] = j
    rej_slot = np.empty(n_rej, dtype=np.int64)
    rej_post = np.empty(n_rej, dtype=np.int64)
    rej_pre = np.empty(n_rej, dtype=np.int64)
    mark[:] = -1
    r = 0
    for j in range(n_post):
        for s in range(col_ptr[j], col_ptr[j + 1]):
            p = slots[s]
            if (square and p == j) or mark[p] == j:
                rej_slot[r], rej_post[r], rej_pre[r] = s, j, p
                slots[s] = -1
                r += 1
            else:
                mark[p] = j
    report[0], report[1] = n_self, n_rej - n_self
    stamp = n_post  # marks below n_post were set above
    used = 0
    while n_rej > 0 and used < rounds:
        used += 1
        for t in range(n_rej - 1, 0, -1):  # the rejected pre stubs in a uniformly random order
            state, u = _below(state, t + 1)
            x = rej_pre[t]
            rej_pre[t] = rej_pre[u]
            rej_pre[u] = x
        keep = 0
        n_self = 0
        current = -1
        for t in range(n_rej):
            s, j, p = rej_slot[t], rej_post[t], rej_pre[t]
            if j != current:  # mark the partners post j has now
                current = j
                stamp += 1
                for q in range(col_ptr[j], col_ptr[j + 1]):
                    if slots[q] >= 0:
                        mark[slots[q]] = stamp
            bad = (square and p == j) or mark[p] == stamp
            if square and p == j:
                n_self += 1
            if bad:
                rej_slot[keep], rej_post[keep], rej_pre[keep] = s, j, p
                keep += 1
            else:
                slots[s] = p
                mark[p] = stamp
        n_rej = keep
    report[2], report[3], report[4] = n_self if used else report[0], n_rej, used


@njit(cache=True, nogil=True)
def row_counts(slots, counts):  # pragma: no cover - compiled
    """counts[p] += number of slots holding pre p (slots of -1 are empty)."""
    for s in range(slots.shape[0]):
        p = slots[s]
        if p >= 0:
            counts[p] += 1


@njit(cache=True, nogil=True)
def place(slots, col_ptr, row_ptr, post_index):  # pragma: no cover - compiled
    """Counting sort of the post-major slots into the CSR by pre neuron: post_index[fill_p++] = j for each slot of
    post j holding pre p, posts in increasing order (so every row is ascending)."""
    fill = row_ptr[:-1].copy()
    for j in range(col_ptr.shape[0] - 1):
        for s in range(col_ptr[j], col_ptr[j + 1]):
            p = slots[s]
            if p >= 0:
                post_index[fill[p]] = j
                fill[p] += 1
