"""Directed configuration model with prescribed in/out-degree laws and in/out correlation r (theory.md §2).

1. Degrees: in a square block each neuron draws (K_i, L_i) through the Gaussian copula calibrated so that
   Pearson(K, L) = r; otherwise K (post neurons) and L (pre neurons) are drawn independently. The out-degree mean
   follows from counting edges from both ends: n_post E[K] = n_pre E[L].
2. The stub sums are made equal by adding (uniformly chosen pre neurons) or removing (uniformly chosen stubs)
   single out-stubs; the number is reported as ``stubs_adjusted``.
3. Random stub matching; self-loops (square blocks) and repeated edges are removed and their stubs matched again,
   for up to ``rewire_rounds`` rounds, keeping only new edges that are neither self-loops nor duplicates.
   What is still unmatched at the end is lost and reported (``self_loops_removed``, ``duplicates_removed``).

All of it runs as vectorised torch code on the generator's device (edges.py: chunked sorted keys, CSR by
counting placement); on the CPU with the compiled kernels on, steps 3 and the CSR run as sequential numba loops
with the same law (host_wiring.py). The same seed gives the same scaffold on the same device.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from torchsnn.errors import ConfigError
from torchsnn.scaffold import host_wiring
from torchsnn.scaffold.copula import calibrate_copula, sample_correlated_degrees
from torchsnn.scaffold.degree_laws import BinomialDegree, DegreeLaw
from torchsnn.scaffold.edges import EdgeSet, distinct_uniform, sample_table, shuffle, take, torch_generator
from torchsnn.scaffold.rules import BlockDegreeLaws, ConnectivityRule, Rng, Wiring
from torchsnn.validation import check_int, check_range, require

MAX_EXCESS_PROBABILITY = 1e-6  # a law may exceed the number of candidate partners at most this often


class ConfigurationModel(ConnectivityRule):
    """Configuration-model wiring with degree laws ``in_degree`` (and ``out_degree``) and correlation ``r``."""

    def __init__(
        self, in_degree: DegreeLaw, out_degree: DegreeLaw | None = None, r: float = 0.0, rewire_rounds: int = 20
    ) -> None:
        require(isinstance(in_degree, DegreeLaw), "in_degree", in_degree, "must be a DegreeLaw")
        require(
            out_degree is None or isinstance(out_degree, DegreeLaw),
            "out_degree",
            out_degree,
            "must be a DegreeLaw or None (then the in-degree family with the derived mean)",
        )
        self.in_degree, self.out_degree = in_degree, out_degree
        self.r = check_range("r", r, -1.0, 1.0)
        self.rewire_rounds = check_int("rewire_rounds", rewire_rounds, 0)

    def _resolve(self, n_pre: int, n_post: int, square: bool) -> tuple[DegreeLaw, DegreeLaw, float | None]:
        """The complete in/out laws for this block (means, n_trials set) and the copula rho (square blocks)."""
        self.check_sizes(n_pre, n_post, square)
        m_in, m_out = self.candidates(n_pre, n_post, square)
        law_in = self.in_degree
        require(
            law_in.mean_param is not None,
            "in_degree.mean",
            None,
            "must be given (only the out-degree mean is derived, from n_post * mean_in = n_pre * mean_out)",
        )
        if isinstance(law_in, BinomialDegree) and law_in.n_trials is None:
            law_in = _at("in_degree", law_in.with_trials, m_in)
        mean_out = n_post * float(law_in.mean_param) / n_pre
        shape = self.out_degree if self.out_degree is not None else law_in
        if self.out_degree is not None and self.out_degree.mean_param is not None:
            given = float(self.out_degree.mean_param)
            require(
                math.isclose(given, mean_out, rel_tol=1e-3, abs_tol=1e-9),
                "out_degree.mean",
                given,
                f"must equal n_post * in_degree.mean / n_pre = {mean_out:.6g} (each edge has one end on each "
                "side), or be None to derive it",
            )
            law_out = shape
        else:
            law_out = _at("out_degree", shape.with_mean, mean_out)
        if isinstance(law_out, BinomialDegree) and (law_out.n_trials is None or self.out_degree is None):
            law_out = _at("out_degree", BinomialDegree, law_out.mean_param, m_out)
        for name, law, m, side in (
            ("in_degree", law_in, m_in, "presynaptic"),
            ("out_degree", law_out, m_out, "postsynaptic"),
        ):
            excess = float(law.sf(m))
            require(
                excess <= MAX_EXCESS_PROBABILITY,
                name,
                law,
                f"gives degrees above the {m} {side} candidates with probability {excess:.3g} > "
                f"{MAX_EXCESS_PROBABILITY:g} (a neuron cannot have more distinct partners than exist): "
                "lower the mean or cv, or enlarge the population",
            )
        require(
            square or self.r == 0.0,
            "r",
            self.r,
            "must be 0 in a non-square block (a neuron's in- and "
            "out-degree are correlated only within a population's block onto itself)",
        )
        rho = calibrate_copula(law_in, law_out, self.r, field="r") if square else None
        return law_in, law_out, rho

    def _validate(self, n_pre: int, n_post: int, square: bool) -> None:
        self._resolve(n_pre, n_post, square)

    def degree_laws(self, n_pre: int, n_post: int, square: bool) -> BlockDegreeLaws:
        law_in, law_out, rho = self._resolve(n_pre, n_post, square)
        return BlockDegreeLaws(law_in, law_out, rho, self.r)

    def connect(self, n_pre: int, n_post: int, square: bool, rng: Rng) -> Wiring:
        law_in, law_out, rho = self._resolve(n_pre, n_post, square)
        m_in, m_out = self.candidates(n_pre, n_post, square)
        gen = torch_generator(rng)
        if square:
            k, out_deg = sample_correlated_degrees(law_in, law_out, rho, n_post, gen)
        else:
            k, out_deg = _sample(law_in, n_post, gen), _sample(law_out, n_pre, gen)
        clipped = int((k > m_in).sum() + (out_deg > m_out).sum())
        k, out_deg = k.clamp_(max=m_in), out_deg.clamp_(max=m_out)
        out_deg, adjusted = _equalise(int(k.sum()), out_deg, m_out, gen)
        if host_wiring.enabled(gen, n_pre):
            row_ptr, post_index, lost = host_wiring.match(k, out_deg, n_pre, square, self.rewire_rounds, gen)
        else:
            edges, lost = _match(k, out_deg, n_pre, n_post, square, self.rewire_rounds, gen)
            row_ptr, post_index = edges.to_csr()
        report: dict[str, Any] = {
            "n_edges": int(post_index.numel()),
            "stubs_adjusted": adjusted,
            "degrees_clipped": clipped,
            **lost,
            "r_requested": self.r,
            "copula_rho": rho,
        }
        if square:
            kin = torch.bincount(post_index, minlength=n_post).double()
            kout = row_ptr.diff().double()
            ok = bool(kin.std() > 0) and bool(kout.std() > 0)
            report["r_realised"] = float(torch.corrcoef(torch.stack((kin, kout)))[0, 1]) if ok else float("nan")
        return Wiring(row_ptr, post_index, report)


def _sample(law: DegreeLaw, n: int, gen: torch.Generator) -> Tensor:
    k, cdf, _ = law._table
    return sample_table(k, cdf, n, gen)


def _at(prefix: str, make: Any, *args: Any) -> DegreeLaw:
    try:
        return make(*args)
    except ConfigError as err:
        raise err.at(prefix) from None


def _equalise(total_in: int, out_deg: Tensor, cap: int, gen: torch.Generator) -> tuple[Tensor, int]:
    """Out-degrees summing to total_in: add stubs to uniform pre neurons (below ``cap``) or remove random stubs."""
    out_deg = out_deg.clone()
    n = out_deg.numel()
    diff = total_in - int(out_deg.sum())
    if diff < 0:
        stubs = distinct_uniform(int(out_deg.sum()), -diff, gen)
        owner = torch.searchsorted(torch.cumsum(out_deg, 0), stubs, right=True)
        out_deg -= torch.bincount(owner, minlength=n)
    remaining = max(diff, 0)
    while remaining:
        out_deg += torch.bincount(torch.randint(0, n, (remaining,), generator=gen, device=gen.device), minlength=n)
        over = (out_deg - cap).clamp_(min=0)
        out_deg -= over
        remaining = int(over.sum())
    return out_deg, abs(diff)


def _match(
    k: Tensor, out_deg: Tensor, n_pre: int, n_post: int, square: bool, rounds: int, gen: torch.Generator
) -> tuple[EdgeSet, dict[str, int]]:
    """Random stub matching, then re-matching of self-loops and repeated pairs for up to ``rounds`` rounds.

    Post stubs are in post order, so each chunk of post neurons (EdgeSet) owns a contiguous run of stubs; a
    rejected edge gives back its two stubs (its pre and post), which are matched again at random.
    """
    dev = gen.device
    total = int(k.sum())
    edges = EdgeSet(n_pre, n_post, total, dev)
    pre_stubs = torch.repeat_interleave(torch.arange(n_pre, device=dev), out_deg)
    pre_stubs = shuffle(pre_stubs, gen)
    stops = torch.tensor([edges.chunk_range(i)[1] - 1 for i in range(len(edges.starts))], device=dev)
    bounds = [0, *take(torch.cumsum(k, 0), stops).tolist()]  # stub runs of the chunks
    counts: dict[str, int] = {}
    rej_pre, rej_post, n_self = [], [], 0
    for index in range(len(edges.starts)):
        start, stop = edges.chunk_range(index)
        a, b = bounds[index], bounds[index + 1]
        post = torch.repeat_interleave(torch.arange(start, stop, device=dev), k[start:stop])
        p, q, s = edges.insert(index, pre_stubs[a:b], post, no_self=square)
        rej_pre.append(p), rej_post.append(q)
        n_self += s
    del pre_stubs
    pre, post = torch.cat(rej_pre), torch.cat(rej_post)
    for attempt in range(rounds + 1):
        if attempt:
            pre, post, n_self = _rematch(edges, pre, post, square, gen)
        n_dup = int(pre.numel()) - n_self
        if attempt == 0:
            counts.update(self_loops_initial=n_self, duplicates_initial=n_dup)
        counts.update(self_loops_removed=n_self, duplicates_removed=n_dup, rewire_rounds_used=attempt)
        if pre.numel() == 0:
            break
    return edges, counts


def _rematch(
    edges: EdgeSet, pre: Tensor, post: Tensor, square: bool, gen: torch.Generator
) -> tuple[Tensor, Tensor, int]:
    """Match the rejected stubs again at random; returns the edges rejected this round and the self-loops."""
    pre = shuffle(pre, gen)
    post, order = torch.sort(post, stable=True)
    pre = take(pre, order)
    chunk = torch.div(post, edges.width, rounding_mode="floor")
    sizes = torch.bincount(chunk, minlength=len(edges.starts)).tolist()
    out_pre, out_post, n_self = [], [], 0
    for index, (p, q) in enumerate(zip(pre.split(sizes), post.split(sizes), strict=True)):
        if q.numel():
            rp, rq, s = edges.insert(index, p, q, no_self=square)
            out_pre.append(rp), out_post.append(rq)
            n_self += s
    empty = torch.zeros(0, dtype=torch.int64, device=gen.device)
    return torch.cat([empty, *out_pre]), torch.cat([empty, *out_post]), n_self
