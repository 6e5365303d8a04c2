"""Connectivity rules for one block post <- pre (NEST names where they exist; theory.md §2).

A rule validates its parameters against the block (``validate``: ConfigError before any work), wires it
(``connect``: local int64 indices, one entry per edge, no duplicates) and states the degree laws the mean-field
theory needs (``degree_laws``). ``square`` means the block connects a population to itself: then there are no
autapses (unless a rule allows them) and a neuron's in- and out-degree may be correlated.

Edges are handled as keys ``pre * n_post + post``; sorted keys are the CSR order by presynaptic neuron.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from torchsnn.scaffold.degree_laws import BinomialDegree, DegreeLaw, FixedDegree
from torchsnn.validation import check_int, check_range, require


@dataclass
class Wiring:
    """The edges of one block: local indices (int64), one entry per edge, no duplicates."""

    pre: np.ndarray
    post: np.ndarray
    report: dict[str, Any] = field(default_factory=dict)


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
    def connect(self, n_pre: int, n_post: int, square: bool, rng: np.random.Generator) -> Wiring:
        """Wire the block (validates first)."""

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

    def connect(self, n_pre: int, n_post: int, square: bool, rng: np.random.Generator) -> Wiring:
        self.validate(n_pre, n_post, square)
        counts = np.full(n_post, self.indegree, dtype=np.int64)
        keys = sample_distinct(counts, n_pre, n_post, square and not self.allow_autapses, rng)
        return Wiring(keys // n_post, keys % n_post, {"n_edges": int(keys.size)})

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

    def connect(self, n_pre: int, n_post: int, square: bool, rng: np.random.Generator) -> Wiring:
        self.validate(n_pre, n_post, square)
        m_in, _ = self.candidates(n_pre, n_post, square)
        counts = rng.binomial(m_in, self.p, size=n_post).astype(np.int64)
        keys = sample_distinct(counts, n_pre, n_post, square and not self.allow_autapses, rng)
        return Wiring(keys // n_post, keys % n_post, {"n_edges": int(keys.size)})

    def degree_laws(self, n_pre: int, n_post: int, square: bool) -> BlockDegreeLaws:
        self.validate(n_pre, n_post, square)
        m_in, m_out = self.candidates(n_pre, n_post, square)
        return BlockDegreeLaws(BinomialDegree(m_in * self.p, m_in), BinomialDegree(m_out * self.p, m_out), None, 0.0)


def sample_distinct(counts: np.ndarray, n_pre: int, n_post: int, no_self: bool, rng: np.random.Generator) -> np.ndarray:
    """Sorted edge keys pre * n_post + post: post neuron j gets counts[j] distinct pre neurons, uniformly.

    Draws with replacement and redraws the duplicates until none is left (any label-symmetric procedure gives
    uniform subsets). Dense blocks (more than half of the pairs) draw the missing pairs instead and take the
    complement. ``no_self`` excludes pre == post (values are drawn from n_pre - 1 and shifted past j).
    """
    m = n_pre - int(no_self)
    if counts.sum() > 0.5 * m * n_post:
        missing = sample_distinct(m - counts, n_pre, n_post, no_self, rng)
        mask = np.ones(n_pre * n_post, dtype=bool)
        mask[missing] = False
        if no_self:
            mask[np.arange(n_post) * (n_post + 1)] = False
        return np.flatnonzero(mask).astype(np.int64)
    rows = np.repeat(np.arange(n_post, dtype=np.int64), counts)
    keys = np.sort(_draw(rows, m, n_post, no_self, rng))
    while keys.size:
        dup = keys[1:] == keys[:-1]
        if not dup.any():
            break
        redo = keys[1:][dup] % n_post
        keys = keys[np.concatenate(([True], ~dup))]
        new = np.sort(_draw(redo, m, n_post, no_self, rng))
        keys = np.insert(keys, np.searchsorted(keys, new), new)
    return keys


def _draw(rows: np.ndarray, m: int, n_post: int, no_self: bool, rng: np.random.Generator) -> np.ndarray:
    if rows.size == 0:
        return np.zeros(0, dtype=np.int64)
    vals = rng.integers(0, m, size=rows.size, dtype=np.int64)
    if no_self:
        vals += vals >= rows
    return vals * n_post + rows
