"""Directed configuration model with prescribed in/out-degree laws and in/out correlation r (theory.md §2).

1. Degrees: in a square block each neuron draws (K_i, L_i) through the Gaussian copula calibrated so that
   Pearson(K, L) = r; otherwise K (post neurons) and L (pre neurons) are drawn independently. The out-degree mean
   follows from counting edges from both ends: n_post E[K] = n_pre E[L].
2. The stub sums are made equal by adding (uniformly chosen pre neurons) or removing (uniformly chosen stubs)
   single out-stubs; the number is reported as ``stubs_adjusted``.
3. Random stub matching; self-loops (square blocks) and repeated edges are removed and their stubs matched again,
   for up to ``rewire_rounds`` rounds, keeping only new edges that are neither self-loops nor duplicates.
   What is still unmatched at the end is lost and reported (``self_loops_removed``, ``duplicates_removed``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from torchsnn.errors import ConfigError
from torchsnn.scaffold.copula import calibrate_copula, sample_correlated_degrees
from torchsnn.scaffold.degree_laws import BinomialDegree, DegreeLaw
from torchsnn.scaffold.rules import BlockDegreeLaws, ConnectivityRule, Wiring
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

    def connect(self, n_pre: int, n_post: int, square: bool, rng: np.random.Generator) -> Wiring:
        law_in, law_out, rho = self._resolve(n_pre, n_post, square)
        m_in, m_out = self.candidates(n_pre, n_post, square)
        if square:
            k, out_deg = sample_correlated_degrees(law_in, law_out, rho, n_post, rng)
        else:
            k, out_deg = law_in.sample(n_post, rng), law_out.sample(n_pre, rng)
        clipped = int(np.sum(k > m_in) + np.sum(out_deg > m_out))
        k, out_deg = np.minimum(k, m_in), np.minimum(out_deg, m_out)
        out_deg, adjusted = _equalise(k.sum(), out_deg, m_out, rng)
        keys, lost = _match(k, out_deg, n_pre, n_post, square, self.rewire_rounds, rng)
        pre, post = keys // n_post, keys % n_post
        report: dict[str, Any] = {
            "n_edges": int(keys.size),
            "stubs_adjusted": adjusted,
            "degrees_clipped": clipped,
            **lost,
            "r_requested": self.r,
            "copula_rho": rho,
        }
        if square:
            kin, kout = np.bincount(post, minlength=n_post), np.bincount(pre, minlength=n_pre)
            ok = kin.std() > 0 and kout.std() > 0
            report["r_realised"] = float(np.corrcoef(kin, kout)[0, 1]) if ok else float("nan")
        return Wiring(pre, post, report)


def _at(prefix: str, make: Any, *args: Any) -> DegreeLaw:
    try:
        return make(*args)
    except ConfigError as err:
        raise err.at(prefix) from None


def _equalise(total_in: int, out_deg: np.ndarray, cap: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Out-degrees summing to total_in: add stubs to uniform pre neurons (below ``cap``) or remove random stubs."""
    out_deg = out_deg.copy()
    diff = int(total_in - out_deg.sum())
    if diff < 0:
        stubs = rng.choice(int(out_deg.sum()), size=-diff, replace=False)
        out_deg -= np.bincount(np.searchsorted(np.cumsum(out_deg), stubs, side="right"), minlength=out_deg.size)
    remaining = max(diff, 0)
    while remaining:
        out_deg += np.bincount(rng.integers(0, out_deg.size, size=remaining), minlength=out_deg.size)
        over = np.maximum(out_deg - cap, 0)
        out_deg -= over
        remaining = int(over.sum())
    return out_deg, abs(diff)


def _match(
    k: np.ndarray, out_deg: np.ndarray, n_pre: int, n_post: int, square: bool, rounds: int, rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, int]]:
    """Random stub matching with re-matching of self-loops and duplicates; sorted unique keys pre * n_post + post.

    A rejected edge is fully described by its key, so its two stubs are recovered from the key itself.
    """
    post = np.repeat(np.arange(n_post, dtype=np.int64), k)
    pre = rng.permutation(np.repeat(np.arange(n_pre, dtype=np.int64), out_deg))
    first = np.zeros(0, dtype=np.int64)  # sorted edges accepted in the first round
    later = np.zeros(0, dtype=np.int64)  # sorted edges accepted in re-matching rounds
    counts: dict[str, int] = {}
    for attempt in range(rounds + 1):
        keys = pre * n_post + post
        self_loop = (pre == post) if square else np.zeros(keys.size, dtype=bool)
        other = keys[~self_loop]
        known = _contains(first, other) | _contains(later, other)
        rest = np.sort(other[~known])
        repeat = np.concatenate((np.zeros(min(rest.size, 1), dtype=bool), rest[1:] == rest[:-1]))
        accepted = rest[~repeat]
        if attempt == 0:
            first = accepted
        else:
            later = np.insert(later, np.searchsorted(later, accepted), accepted)
        rejected = np.concatenate((keys[self_loop], other[known], rest[repeat]))
        n_self = int(self_loop.sum())
        n_dup = keys.size - n_self - accepted.size
        if attempt == 0:
            counts.update(self_loops_initial=n_self, duplicates_initial=n_dup)
        counts.update(self_loops_removed=n_self, duplicates_removed=n_dup, rewire_rounds_used=attempt)
        if n_self + n_dup == 0 or attempt == rounds:
            break
        pre, post = rng.permutation(rejected // n_post), rejected % n_post
    return np.insert(first, np.searchsorted(first, later), later), counts


def _contains(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    if sorted_keys.size == 0:
        return np.zeros(keys.size, dtype=bool)
    idx = np.minimum(np.searchsorted(sorted_keys, keys), sorted_keys.size - 1)
    return sorted_keys[idx] == keys
