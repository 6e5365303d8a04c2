"""Connectivity rules for one block post <- pre (NEST names where they exist; theory.md §2).

A rule validates its parameters against the block (``validate``: ConfigError before any work), wires it
(``connect``: a CSR on the generator's device, no duplicates; a numpy Generator seeds a CPU torch
one) and states the degree laws the mean-field
theory needs (``degree_laws``). ``square`` means the block connects a population to itself: then there are no
autapses (unless a rule allows them) and a neuron's in- and out-degree may be correlated.

Edges are handled as keys ``pre * n_post + post``; sorted keys are the CSR order by presynaptic neuron.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from torchsnn.scaffold import host_wiring
from torchsnn.scaffold.degree_laws import BinomialDegree, DegreeLaw, FixedDegree
from torchsnn.scaffold.edges import EdgeSet, sample_table, torch_generator
from torchsnn.validation import check_int, check_range, require

Rng = torch.Generator | np.random.Generator


@dataclass
class Wiring:
    """The edges of one block as CSR by presynaptic neuron, on the wiring device: the targets of pre neuron i are
    ``post_index[row_ptr[i]:row_ptr[i + 1]]`` (ascending, no duplicates); ``row_ptr`` int64, ``post_index`` int32."""

    row_ptr: Tensor
    post_index: Tensor
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def n_edges(self) -> int:
        return int(self.post_index.numel())

    @property
    def pre(self) -> Tensor:
        """(n_edges,) int64: the presynaptic neuron of each edge."""
        rows = torch.arange(self.row_ptr.numel() - 1, device=self.row_ptr.device)
        return torch.repeat_interleave(rows, self.row_ptr.diff())

    @property
    def post(self) -> Tensor:
        """(n_edges,) int64: the postsynaptic neuron of each edge."""
        return self.post_index.long()


@dataclass
class BlockDegreeLaws:
    """What the mean-field theory needs about a block: rho_K (in), the out-degree law, the copula and r."""

    in_degree: DegreeLaw
    out_degree: DegreeLaw
    copula_rho: float | None
    r: float


class ConnectivityRule(ABC):
    """Base class: ``_validate``, ``connect`` and ``degree_laws`` per rule."""

    allow_autapses: bool = False

    def validate(self, n_pre: int, n_post: int, square: bool) -> None:
        """Raise ConfigError (field, value, what is allowed) if the rule cannot wire this block."""
        self.check_sizes(n_pre, n_post, square)
        self._validate(n_pre, n_post, square)

    @staticmethod
    def check_sizes(n_pre: int, n_post: int, square: bool) -> None:
        check_int("n_pre", n_pre, 1)
        check_int("n_post", n_post, 1)
        require(not square or n_pre == n_post, "n_post", n_post, f"a square block needs n_post == n_pre = {n_pre}")

    @abstractmethod
    def _validate(self, n_pre: int, n_post: int, square: bool) -> None:
        """Rule-specific checks (sizes already valid)."""

    def candidates(self, n_pre: int, n_post: int, square: bool) -> tuple[int, int]:
        """Possible partners (pre per post neuron, post per pre neuron): one fewer without autapses."""
        drop = int(square and not self.allow_autapses)
        return n_pre - drop, n_post - drop

    @abstractmethod
    def connect(self, n_pre: int, n_post: int, square: bool, rng: Rng) -> Wiring:
        """Wire the block (validates first) with the random stream ``rng`` (a torch.Generator on the wiring
        device; the same seed gives the same wiring on the same device)."""

    @abstractmethod
    def degree_laws(self, n_pre: int, n_post: int, square: bool) -> BlockDegreeLaws:
        """The in- and out-degree laws of the block (what the mean-field theory needs)."""


class FixedInDegree(ConnectivityRule):
    """Each post neuron draws ``indegree`` distinct pre neurons uniformly (NEST ``fixed_indegree``).

    Out-degrees are then exactly Binomial(n_post', indegree / n_pre') (n' = candidates: n - 1 without autapses in
    a square block): each post neuron chooses a given pre neuron independently with probability indegree / n_pre'.
    """

    def __init__(self, indegree: int, allow_autapses: bool = False) -> None:
        self.indegree = check_int("indegree", indegree, 0)
        self.allow_autapses = bool(allow_autapses)

    def _validate(self, n_pre: int, n_post: int, square: bool) -> None:
        m_in, _ = self.candidates(n_pre, n_post, square)
        require(
            self.indegree <= m_in,
            "indegree",
            self.indegree,
            f"must be <= {m_in}, the number of distinct presynaptic candidates"
            + (" (n_pre - 1: no autapses)" if m_in < n_pre else " (n_pre)"),
        )

    def connect(self, n_pre: int, n_post: int, square: bool, rng: Rng) -> Wiring:
        self.validate(n_pre, n_post, square)
        gen = torch_generator(rng)
        counts = torch.full((n_post,), self.indegree, dtype=torch.int64, device=gen.device)
        row_ptr, post_index = sample_distinct(counts, n_pre, n_post, square and not self.allow_autapses, gen)
        return Wiring(row_ptr, post_index, {"n_edges": int(post_index.numel())})

    def degree_laws(self, n_pre: int, n_post: int, square: bool) -> BlockDegreeLaws:
        self.validate(n_pre, n_post, square)
        m_in, m_out = self.candidates(n_pre, n_post, square)
        out = BinomialDegree(m_out * self.indegree / m_in if m_in else 0.0, m_out)
        return BlockDegreeLaws(FixedDegree(self.indegree), out, None, 0.0)


class PairwiseBernoulli(ConnectivityRule):
    """Each (pre, post) pair is connected independently with probability p (NEST ``pairwise_bernoulli``).

    Drawn as K_j ~ Binomial(n_pre', p) per post neuron, then K_j distinct pre neurons uniformly: the same law.
    In a square block K_i and L_i involve disjoint pairs, so they are independent (r = 0).
    """

    def __init__(self, p: float, allow_autapses: bool = False) -> None:
        self.p = check_range("p", p, 0.0, 1.0)
        self.allow_autapses = bool(allow_autapses)

    def _validate(self, n_pre: int, n_post: int, square: bool) -> None:
        """Any p in [0, 1] (checked by the constructor) suits any block."""

    def connect(self, n_pre: int, n_post: int, square: bool, rng: Rng) -> Wiring:
        self.validate(n_pre, n_post, square)
        gen = torch_generator(rng)
        m_in, _ = self.candidates(n_pre, n_post, square)
        k, cdf, _ = BinomialDegree(m_in * self.p, m_in)._table
        counts = sample_table(k, cdf, n_post, gen)
        row_ptr, post_index = sample_distinct(counts, n_pre, n_post, square and not self.allow_autapses, gen)
        return Wiring(row_ptr, post_index, {"n_edges": int(post_index.numel())})

    def degree_laws(self, n_pre: int, n_post: int, square: bool) -> BlockDegreeLaws:
        self.validate(n_pre, n_post, square)
        m_in, m_out = self.candidates(n_pre, n_post, square)
        return BlockDegreeLaws(BinomialDegree(m_in * self.p, m_in), BinomialDegree(m_out * self.p, m_out), None, 0.0)


def sample_distinct(
    counts: Tensor, n_pre: int, n_post: int, no_self: bool, gen: torch.Generator
) -> tuple[Tensor, Tensor]:
    """CSR (row_ptr, post_index) where post neuron j gets counts[j] distinct pre neurons, uniformly.

    Per chunk of post neurons: draw with replacement, keep the first copy of each pair, redraw one partner for
    each rejected copy until none is left (label-symmetric, hence uniform subsets). Dense blocks (more than half
    of the pairs) draw the missing pairs instead and take the complement. ``no_self`` excludes pre == post
    (values drawn from n_pre - 1 and shifted past j). On the CPU with the compiled kernels on, the same law by
    sequential rejection (host_wiring.py).
    """
    m = n_pre - int(no_self)
    dev = gen.device
    total = int(counts.sum())
    if total > 0.5 * m * n_post:
        return _complement(sample_distinct(m - counts, n_pre, n_post, no_self, gen), n_pre, n_post, no_self)
    if host_wiring.enabled(gen, n_pre):
        return host_wiring.sample_distinct(counts, n_pre, no_self, gen)
    edges = EdgeSet(n_pre, n_post, total, dev)
    for index in range(len(edges.starts)):
        start, stop = edges.chunk_range(index)
        rows = torch.repeat_interleave(torch.arange(start, stop, dtype=edges.dtype, device=dev), counts[start:stop])
        while rows.numel():
            vals = torch.randint(0, max(m, 1), (rows.numel(),), generator=gen, device=dev, dtype=edges.dtype)
            if no_self:
                vals += vals >= rows
            _, rows, _ = edges.insert(index, vals, rows)
    return edges.to_csr()


def _complement(csr: tuple[Tensor, Tensor], n_pre: int, n_post: int, no_self: bool) -> tuple[Tensor, Tensor]:
    """The CSR of all pairs not in ``csr`` (nor pre == post with ``no_self``); dense blocks only (one byte a pair)."""
    row_ptr, post_index = csr
    dev = row_ptr.device
    mask = torch.ones(n_pre, n_post, dtype=torch.bool, device=dev)
    pre = torch.repeat_interleave(torch.arange(n_pre, device=dev), row_ptr.diff())
    mask[pre, post_index.long()] = False
    if no_self:
        mask.fill_diagonal_(False)
    out_ptr = torch.zeros(n_pre + 1, dtype=torch.int64, device=dev)
    torch.cumsum(mask.sum(1), 0, out=out_ptr[1:])
    return out_ptr, torch.nonzero(mask)[:, 1].to(torch.int32)
