"""Edge sets built on the wiring device (CPU or CUDA) with vectorised torch code, and their CSR.

Randomness comes only from one ``torch.Generator`` on the wiring device, so the same seed gives the same scaffold
on the same device. Every index that can pass 2^31 (edge counts, keys, offsets, ``row_ptr``) is int64.

An :class:`EdgeSet` keeps the unique edges of a block post <- pre in *chunks* of consecutive post neurons
[start, start + width): in each chunk an edge is the local key ``pre * width + (post - start)``, kept sorted and
unique. Sorted local keys are pre-major, so duplicates are adjacent and the CSR by presynaptic neuron follows
without a global sort (:meth:`EdgeSet.to_csr`):

    row_ptr = [0, cumsum(L_i)],   L_i = sum over chunks of the chunk's count of pre i
    position of an edge = fill_i + (its rank among pre i's edges in the chunk),  fill_i += chunk count of i

Chunks are processed in increasing post order, so every CSR row is ascending in post. A chunk holds about
``CHUNK_EDGES`` edges: small enough for its sort to run in cache on the CPU and to bound the temporaries.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from torchsnn.validation import require

CHUNK_EDGES = {"cpu": 1 << 18, "cuda": 1 << 24}  # expected edges per chunk (CPU: the sort runs in cache)


def torch_generator(rng: torch.Generator | np.random.Generator | None, device: torch.device | str | None = None):
    """The wiring generator: ``rng`` itself (a torch.Generator on ``device``), or a torch.Generator on ``device``
    seeded from one draw of a numpy Generator (so numpy-seeded callers keep one reproducible stream)."""
    if isinstance(rng, torch.Generator):
        require(
            device is None or torch.device(device).type == rng.device.type,
            "device",
            str(device),
            f"must be the generator's device ({rng.device}): wiring draws on the generator's device",
        )
        return rng
    require(isinstance(rng, np.random.Generator), "rng", type(rng).__name__, "must be a torch or numpy Generator")
    gen = torch.Generator(device=torch.device(device or "cpu"))
    gen.manual_seed(int(rng.integers(0, 2**63 - 1)))
    return gen


def sample_table(values: np.ndarray, cdf: np.ndarray, n: int, gen: torch.Generator) -> Tensor:
    """n draws (int64, on the generator's device) by inversion: values[min{i : cdf_i >= U}], U uniform [0, 1)."""
    dev = gen.device
    u = torch.rand(n, dtype=torch.float64, generator=gen, device=dev)
    cdf_t = torch.as_tensor(cdf, dtype=torch.float64, device=dev)
    idx = torch.searchsorted(cdf_t, u, side="left").clamp_(max=cdf_t.numel() - 1)
    return take(torch.as_tensor(values, dtype=torch.int64, device=dev), idx)


def distinct_uniform(n: int, m: int, gen: torch.Generator) -> Tensor:
    """A uniform random m-subset of range(n), sorted (int64): draws with replacement, redraws what is missing
    (label-symmetric, hence uniform over subsets). Memory O(m)."""
    require(0 <= m <= n, "m", m, f"must lie in [0, {n}]")
    if 2 * m > n:  # dense: the complement of a small subset
        drop = distinct_uniform(n, n - m, gen)
        keep = torch.ones(n, dtype=torch.bool, device=gen.device)
        keep.scatter_(0, drop, False)
        return torch.nonzero(keep).squeeze(1)
    out = torch.zeros(0, dtype=torch.int64, device=gen.device)
    while out.numel() < m:
        new = torch.randint(0, n, (m - out.numel(),), generator=gen, device=gen.device)
        out = torch.unique(torch.cat((out, new)))
    return out


def shuffle(x: Tensor, gen: torch.Generator) -> Tensor:
    """A uniformly random permutation of ``x`` in cache-sized pieces (two-level shuffle, Sanders 1998).

    1. The input is cut into blocks; block j sends n_jb elements to bucket b, (n_j1, ..., n_jB) multinomial with
       equal cell probabilities (as if every element drew an i.i.d. bucket label): a random permutation of the
       block is cut into consecutive pieces of these sizes.
    2. Each bucket (pieces in block order) is shuffled on its own; the buckets are concatenated.
    Uniform: given the bucket sizes n_b, every order has probability B^-n prod_b 1 / n_b!, whatever the order.
    """
    n, dev = x.numel(), x.device
    block = CHUNK_EDGES.get(dev.type, CHUNK_EDGES["cuda"])
    n_buckets = -(-n // block)
    if n_buckets <= 1:
        return take(x, torch.randperm(n, generator=gen, device=dev))
    starts = list(range(0, n, block))
    left = torch.tensor([min(block, n - a) for a in starts], dtype=torch.float64, device=dev)
    sizes = torch.empty(len(starts), n_buckets, dtype=torch.int64, device=dev)
    for b in range(n_buckets - 1):  # multinomial counts as a chain of conditional binomials, all blocks at once
        draw = torch.binomial(left, torch.full_like(left, 1.0 / (n_buckets - b)), generator=gen)
        sizes[:, b] = draw.to(torch.int64)
        left -= draw
    sizes[:, -1] = left.to(torch.int64)
    bucket_size = sizes.sum(0)
    dest = (torch.cumsum(bucket_size, 0) - bucket_size).view(1, -1) + torch.cumsum(sizes, 0) - sizes
    sizes_h, dest_h = sizes.tolist(), dest.tolist()
    y = torch.empty_like(x)
    for j, a in enumerate(starts):
        piece = x[a : a + block]
        piece = take(piece, torch.randperm(piece.numel(), generator=gen, device=dev))
        offset = 0
        for b, size in enumerate(sizes_h[j]):
            y[dest_h[j][b] : dest_h[j][b] + size] = piece[offset : offset + size]
            offset += size
    for part in y.split(bucket_size.tolist()):
        part.copy_(take(part, torch.randperm(part.numel(), generator=gen, device=dev)))
    return y


def take(x: Tensor, index: Tensor) -> Tensor:
    """x[index] for 1-D x (index_select: several times faster than advanced indexing on the CPU)."""
    return torch.index_select(x, 0, index)


def merge_sorted(a: Tensor, b: Tensor) -> Tensor:
    """The sorted union of two sorted int64 tensors with no common element (O(len a + len b), no sort)."""
    if b.numel() == 0:
        return a
    if a.numel() == 0:
        return b
    out = torch.empty(a.numel() + b.numel(), dtype=a.dtype, device=a.device)
    slot = torch.searchsorted(a, b)  # b_j goes before a[slot_j]: a_i moves up by #{j : slot_j <= i}
    out.scatter_(0, slot + torch.arange(b.numel(), device=b.device), b)
    shift = torch.cumsum(torch.bincount(slot, minlength=a.numel() + 1)[: a.numel()], 0)
    out.scatter_(0, torch.arange(a.numel(), device=a.device) + shift, a)
    return out


def sorted_contains(sorted_keys: Tensor, keys: Tensor) -> Tensor:
    """Whether each of ``keys`` is in the sorted tensor ``sorted_keys``."""
    if sorted_keys.numel() == 0:
        return torch.zeros(keys.shape, dtype=torch.bool, device=keys.device)
    idx = torch.searchsorted(sorted_keys, keys).clamp_(max=sorted_keys.numel() - 1)
    return take(sorted_keys, idx) == keys


def csr_positions(
    first: Tensor, later: Tensor, width: int, start: int, fill: Tensor
) -> tuple[list[tuple[Tensor, Tensor]], Tensor]:
    """Where the edges of one chunk go in the CSR: [(positions int64, post indices)] for ``first`` and ``later``,
    and the chunk's count per pre neuron.

    ``first`` and ``later`` are disjoint sorted local keys pre * width + (post - start); their merged order is
    computed, not materialised: later_j sits at slot_j + j (slot_j = #{first < later_j}) and first_i at
    i + #{j : slot_j <= i}. ``fill[i]`` is the CSR position of pre i's next free slot (int64: may exceed 2^31);
    an edge goes to fill[pre] + (merged index - first merged index of its pre).
    """
    dev = first.device
    n_a, n_b = first.numel(), later.numel()
    idx_a = torch.arange(n_a, device=dev)
    if n_b:
        slot = torch.searchsorted(first, later)
        idx_a += torch.cumsum(torch.bincount(slot, minlength=n_a + 1)[:n_a], 0)
        idx_b = slot + torch.arange(n_b, device=dev)
    else:
        idx_b = idx_a[:0]
    pre_a = torch.div(first, width, rounding_mode="floor")
    pre_b = torch.div(later, width, rounding_mode="floor")
    count = torch.bincount(pre_a, minlength=fill.numel()) + torch.bincount(pre_b, minlength=fill.numel())
    shift = fill - (torch.cumsum(count, 0) - count)  # fill_i - first merged index of pre i in the chunk
    out = []
    for keys, idx, pre in ((first, idx_a, pre_a), (later, idx_b, pre_b)):
        out.append((idx + take(shift, pre), keys - pre * width + start))
    return out, count


class EdgeSet:
    """The unique edges of a block post <- pre, in chunks of ``width`` consecutive post neurons (module doc)."""

    def __init__(self, n_pre: int, n_post: int, expected_edges: float, device: torch.device) -> None:
        self.n_pre, self.n_post, self.device = int(n_pre), int(n_post), device
        per_post = max(float(expected_edges) / max(self.n_post, 1), 1.0)
        chunk = CHUNK_EDGES.get(torch.device(device).type, CHUNK_EDGES["cuda"])
        self.width = int(min(self.n_post, max(1, chunk // per_post)))
        self.starts = list(range(0, self.n_post, self.width)) or [0]
        # local keys are int32 when pre * width + post fits (half the sort's traffic), else int64
        self.dtype = torch.int32 if self.n_pre * self.width < 2**31 else torch.int64
        empty = torch.zeros(0, dtype=self.dtype, device=device)
        self.keys: list[Tensor] = [empty for _ in self.starts]  # the first accepted batch of each chunk
        self.later: list[Tensor] = [empty for _ in self.starts]  # accepted later (small; merged in to_csr)

    def chunk_range(self, index: int) -> tuple[int, int]:
        """Post neurons [start, stop) of chunk ``index``."""
        start = self.starts[index]
        return start, min(start + self.width, self.n_post)

    @property
    def n_edges(self) -> int:
        return sum(int(k.numel()) for k in self.keys) + sum(int(k.numel()) for k in self.later)

    def insert(self, index: int, pre: Tensor, post: Tensor, no_self: bool = False) -> tuple[Tensor, Tensor, int]:
        """Add candidate edges (integer tensors; every post in chunk ``index``); keep the first copy of each new
        pair.

        Returns the rejected edges (pre, post), sorted by key, and how many of them were self-loops (with
        ``no_self``); the others repeat a pair already present or drawn earlier in this call."""
        start, stop = self.chunk_range(index)
        width = stop - start
        keys, _ = torch.sort(pre.to(self.dtype) * width + (post.to(self.dtype) - start), stable=True)
        bad = torch.zeros(keys.numel(), dtype=torch.bool, device=keys.device)
        bad[1:] = keys[1:] == keys[:-1]
        bad |= sorted_contains(self.keys[index], keys) | sorted_contains(self.later[index], keys)
        n_self = 0
        if no_self:
            pre_of = torch.div(keys, width, rounding_mode="floor")
            loop = pre_of == keys - pre_of * width + start
            n_self = int(loop.sum())
            bad |= loop
        good = torch.masked_select(keys, ~bad)
        if self.keys[index].numel() == 0:
            self.keys[index] = good
        else:
            self.later[index] = merge_sorted(self.later[index], good)
        rejected = torch.masked_select(keys, bad)
        rej_pre = torch.div(rejected, width, rounding_mode="floor").long()
        return rej_pre, rejected.long() - rej_pre * width + start, n_self

    def to_csr(self) -> tuple[Tensor, Tensor]:
        """(row_ptr int64 (n_pre + 1,), post_index int32 (n_edges,)): rows ascending; the chunks are released."""
        dev = self.device
        counts = torch.zeros(self.n_pre, dtype=torch.int64, device=dev)
        for index, (first, later) in enumerate(zip(self.keys, self.later, strict=True)):
            width = self.chunk_range(index)[1] - self.starts[index]
            for keys in (first, later):
                counts += torch.bincount(torch.div(keys, width, rounding_mode="floor"), minlength=self.n_pre)
        row_ptr = torch.zeros(self.n_pre + 1, dtype=torch.int64, device=dev)
        torch.cumsum(counts, 0, out=row_ptr[1:])
        post_index = torch.empty(int(row_ptr[-1]), dtype=torch.int32, device=dev)
        fill = row_ptr[:-1].clone()
        for index in range(len(self.keys)):
            start, stop = self.chunk_range(index)
            first, later = self.keys[index], self.later[index]
            self.keys[index] = self.later[index] = first[:0]  # released chunk by chunk
            placed, count = csr_positions(first, later, stop - start, start, fill)
            del first, later
            for pos, post in placed:
                post_index.scatter_(0, pos, post.to(torch.int32))
            fill += count
        return row_ptr, post_index
