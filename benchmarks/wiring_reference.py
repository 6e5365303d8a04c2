"""The host (numpy) wiring that torchsnn used before the device wiring (``torchsnn/scaffold/edges.py``), kept only
as the reference of the ``wiring`` benchmark scenario and of the statistical comparison in
``tests/scaffold/test_scaffold_device.py``. Same algorithms: draws with replacement and redraws for fixed
in-degree / pairwise Bernoulli, Gaussian copula + stub matching with re-matching rounds for the configuration
model; the rule's (pre, post) arrays are turned into the CSR as ``ScaffoldBlock.from_edges`` did (int64 keys
``pre * n_post + post``, sorted unless already in order)."""

from __future__ import annotations

import math

import numpy as np

from torchsnn.scaffold import ConfigurationModel, FixedInDegree, PairwiseBernoulli
from torchsnn.scaffold.degree_laws import DegreeLaw


def reference_connect(rule, n_pre: int, n_post: int, square: bool, rng: np.random.Generator):
    """(row_ptr int64 (n_pre + 1,), post_index int32, report) of the block, wired on the host as before."""
    rule.validate(n_pre, n_post, square)
    no_self = square and not rule.allow_autapses
    report: dict = {}
    if isinstance(rule, FixedInDegree):
        keys = _sample_distinct(np.full(n_post, rule.indegree, dtype=np.int64), n_pre, n_post, no_self, rng)
    elif isinstance(rule, PairwiseBernoulli):
        m_in, _ = rule.candidates(n_pre, n_post, square)
        counts = rng.binomial(m_in, rule.p, size=n_post).astype(np.int64)
        keys = _sample_distinct(counts, n_pre, n_post, no_self, rng)
    elif isinstance(rule, ConfigurationModel):
        keys, report = _configuration_model(rule, n_pre, n_post, square, rng)
    else:
        raise TypeError(f"no reference wiring for {type(rule).__name__}")
    return (*_from_edges(keys // n_post, keys % n_post, n_pre, n_post), report)


def _from_edges(pre_idx: np.ndarray, post_idx: np.ndarray, n_pre: int, n_post: int) -> tuple[np.ndarray, np.ndarray]:
    """The former ``ScaffoldBlock.from_edges``: the rule returned (pre, post) arrays, the block rebuilt the keys."""
    keys = np.asarray(pre_idx, dtype=np.int64) * n_post + np.asarray(post_idx, dtype=np.int64)
    if keys.size > 1 and not np.all(keys[1:] > keys[:-1]):
        keys = np.sort(keys)
    pre_sorted = keys // n_post
    row_ptr = np.zeros(n_pre + 1, dtype=np.int64)
    np.cumsum(np.bincount(pre_sorted, minlength=n_pre), out=row_ptr[1:])
    return row_ptr, (keys % n_post).astype(np.int32)


def _sample_distinct(counts, n_pre, n_post, no_self, rng) -> np.ndarray:
    m = n_pre - int(no_self)
    if counts.sum() > 0.5 * m * n_post:
        missing = _sample_distinct(m - counts, n_pre, n_post, no_self, rng)
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


def _draw(rows, m, n_post, no_self, rng) -> np.ndarray:
    if rows.size == 0:
        return np.zeros(0, dtype=np.int64)
    vals = rng.integers(0, m, size=rows.size, dtype=np.int64)
    if no_self:
        vals += vals >= rows
    return vals * n_post + rows


def _from_normal(law: DegreeLaw, z: np.ndarray) -> np.ndarray:
    k, a = law.normal_thresholds()
    return k[np.minimum(np.searchsorted(a, z, side="left"), k.size - 1)]


def _configuration_model(rule, n_pre, n_post, square, rng):
    law_in, law_out, rho = rule._resolve(n_pre, n_post, square)
    m_in, m_out = rule.candidates(n_pre, n_post, square)
    if square:
        z1 = rng.standard_normal(n_post)
        z2 = rho * z1 + math.sqrt(max(1.0 - rho * rho, 0.0)) * rng.standard_normal(n_post)
        k, out_deg = _from_normal(law_in, z1), _from_normal(law_out, z2)
    else:
        k, out_deg = law_in.sample(n_post, rng), law_out.sample(n_pre, rng)
    k, out_deg = np.minimum(k, m_in), np.minimum(out_deg, m_out)
    out_deg, adjusted = _equalise(k.sum(), out_deg, m_out, rng)
    keys, lost = _match(k, out_deg, n_pre, n_post, square, rule.rewire_rounds, rng)
    return keys, {"n_edges": int(keys.size), "stubs_adjusted": adjusted, **lost}


def _equalise(total_in, out_deg, cap, rng):
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


def _match(k, out_deg, n_pre, n_post, square, rounds, rng):
    post = np.repeat(np.arange(n_post, dtype=np.int64), k)
    pre = rng.permutation(np.repeat(np.arange(n_pre, dtype=np.int64), out_deg))
    first = np.zeros(0, dtype=np.int64)
    later = np.zeros(0, dtype=np.int64)
    counts: dict = {}
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


def _contains(sorted_keys, keys):
    if sorted_keys.size == 0:
        return np.zeros(keys.size, dtype=bool)
    idx = np.minimum(np.searchsorted(sorted_keys, keys), sorted_keys.size - 1)
    return sorted_keys[idx] == keys
