"""Wiring on the CPU by the numba kernels (torchsnn/scaffold/host_wiring.py, torchsnn/kernels/numba_wiring.py):
uniform subsets and shuffles (chi-square at fixed seeds), the counting-sort CSR against a sort, the matching's
invariants and report, reproducibility, and the same degree laws as the torch path (the CUDA path)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from scipy import stats

from torchsnn import kernels
from torchsnn.scaffold import ConfigurationModel, FixedInDegree, GammaDegree, PairwiseBernoulli, host_wiring

pytest.importorskip("numba")
from torchsnn.kernels import numba_wiring

RULES = {
    "fixed": FixedInDegree(60),
    "pairwise": PairwiseBernoulli(0.02),
    "configuration": ConfigurationModel(GammaDegree(40, 0.7), r=0.4),
}


@pytest.fixture
def kernels_switch():
    """Set the CPU kernels on or off inside a test; restored afterwards."""
    before = kernels.set_cpu_kernels(kernels.cpu_kernels_enabled())
    yield kernels.set_cpu_kernels
    kernels.set_cpu_kernels(before)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("no_self", [False, True])
def test_distinct_subsets_are_uniform(no_self: bool) -> None:
    """6 pre neurons, 2 partners per post: C(6, 2) = 15 subsets (C(5, 2) = 10 without post j itself); 12,000
    posts (no_self: 2,000 calls of 6 posts), chi-square p > 1e-3 for every post position, no repeats."""
    n_pre, draws = 6, 2000
    found: dict[int, dict[tuple[int, ...], int]] = {j: {} for j in range(n_pre)}
    slots = np.empty(2 * n_pre, dtype=np.int32)
    for rep in range(draws):
        numba_wiring.distinct_by_post(np.full(n_pre, 2, dtype=np.int64), n_pre, no_self, 1000 + rep, slots)
        for j in range(n_pre):
            pair = tuple(sorted(slots[2 * j : 2 * j + 2].tolist()))
            assert pair[0] != pair[1] and not (no_self and j in pair)
            found[j][pair] = found[j].get(pair, 0) + 1
    n_subsets = math.comb(n_pre - int(no_self), 2)
    for j in range(n_pre):
        assert len(found[j]) == n_subsets
        assert stats.chisquare(list(found[j].values())).pvalue > 1e-3


@pytest.mark.parametrize(("out_deg", "bucket"), [([1, 1, 1, 1], 2), ([2, 1, 1], 1), ([1, 1, 1, 1], 8)])
def test_stub_shuffle_is_uniform(out_deg: list[int], bucket: int) -> None:
    """All distinct arrangements of the stub multiset equally likely (24 or 12), through the two-level path
    (2 or 4 buckets) and the one-bucket path; 9,600 shuffles, chi-square p > 1e-3."""
    deg = np.array(out_deg, dtype=np.int64)
    stubs = np.repeat(np.arange(deg.size), deg)
    arrangements = {p: 0 for p in set(itertools.permutations(stubs.tolist()))}
    slots = np.empty(stubs.size, dtype=np.int32)
    for rep in range(9600):
        numba_wiring.shuffle_stubs(deg, 77 + rep, bucket, slots)
        arrangements[tuple(slots.tolist())] += 1
    assert stats.chisquare(list(arrangements.values())).pvalue > 1e-3


def test_counting_sort_csr_equals_the_sorted_keys() -> None:
    """The CSR of post-major slots (some empty) equals the one from sorting the keys pre * n_post + post."""
    rng = np.random.default_rng(3)
    n_pre, k = 50, rng.integers(0, 9, size=40)
    col_ptr = torch.zeros(k.size + 1, dtype=torch.int64)
    torch.cumsum(torch.from_numpy(k), 0, out=col_ptr[1:])
    pre = rng.integers(-1, n_pre, size=int(k.sum())).astype(np.int32)  # -1: an unmatched slot
    post = np.repeat(np.arange(k.size), k)
    row_ptr, post_index = host_wiring._csr(torch.from_numpy(pre.copy()), col_ptr, n_pre)
    keep = pre >= 0
    keys = np.sort(pre[keep].astype(np.int64) * k.size + post[keep], kind="stable")
    assert row_ptr.tolist() == [0, *np.cumsum(np.bincount(keys // k.size, minlength=n_pre)).tolist()]
    assert post_index.tolist() == (keys % k.size).tolist()


@pytest.mark.parametrize("rounds", [0, 20])
def test_matching_invariants_and_report(rounds: int) -> None:
    """A dense square block (means 40 of 200): realised degrees never exceed the stubs, no self-loops or repeats,
    edges + lost stubs = all stubs, and the report's counts add up."""
    rng = np.random.default_rng(8)
    n = 200
    k = torch.from_numpy(rng.integers(20, 60, size=n))
    out = torch.from_numpy(rng.permutation(k.numpy()))
    row_ptr, post_index, rep = host_wiring.match(k, out, n, True, rounds, _gen(5))
    pre = torch.repeat_interleave(torch.arange(n), row_ptr.diff())
    keys = pre * n + post_index.long()
    assert torch.all(keys[1:] > keys[:-1]) and not torch.any(pre == post_index.long())
    assert torch.all(torch.bincount(post_index, minlength=n) <= k) and torch.all(row_ptr.diff() <= out)
    lost = rep["self_loops_removed"] + rep["duplicates_removed"]
    assert post_index.numel() + lost == int(k.sum())
    assert rep["self_loops_initial"] + rep["duplicates_initial"] > 0  # density 0.2: repeats are certain
    if rounds == 0:
        assert rep["rewire_rounds_used"] == 0 and lost == rep["self_loops_initial"] + rep["duplicates_initial"]
    else:
        assert 0 < rep["rewire_rounds_used"] <= rounds and lost < rep["duplicates_initial"]


@pytest.mark.parametrize("name", list(RULES))
def test_same_seed_same_scaffold_and_the_switch_selects_the_path(name: str, kernels_switch) -> None:
    rule = RULES[name]
    kernels_switch(True)
    a, b = (rule.connect(1500, 1500, True, _gen(7)) for _ in range(2))
    assert torch.equal(a.row_ptr, b.row_ptr) and torch.equal(a.post_index, b.post_index) and a.report == b.report
    kernels_switch(False)
    c = rule.connect(1500, 1500, True, _gen(7))
    assert not (a.n_edges == c.n_edges and torch.equal(a.post_index, c.post_index))  # the torch path ran


@pytest.mark.parametrize(("name", "square"), [("fixed", True), ("pairwise", False), ("configuration", True)])
def test_kernels_and_torch_path_give_the_same_laws(name: str, square: bool, kernels_switch) -> None:
    """Same rule, independent streams: in- and out-degree samples of the two CPU paths come from one law (KS
    p > 1e-3), edge counts within 5 sd, realised r within 0.06 (about 3.5 sd of the difference at n = 5,000);
    every row ascending, no autapses in square blocks."""
    rule, n = RULES[name], 5000
    kernels_switch(True)
    w_k = rule.connect(n, n, square, _gen(31))
    kernels_switch(False)
    w_t = rule.connect(n, n, square, _gen(32))
    deg = {}
    for tag, w in (("kernels", w_k), ("torch", w_t)):
        keys = w.pre * n + w.post
        assert torch.all(keys[1:] > keys[:-1]) and not (square and torch.any(w.pre == w.post))
        deg[tag] = (torch.bincount(w.post_index, minlength=n).numpy(), w.row_ptr.diff().numpy())
    for a, b in zip(deg["kernels"], deg["torch"], strict=True):
        if b.std() > 0:
            assert stats.ks_2samp(a, b).pvalue > 1e-3
        else:
            assert np.array_equal(a, b)
    spread = math.sqrt(2 * n) * max(float(deg["torch"][0].std()), float(deg["torch"][1].std()), 1.0)
    assert abs(w_k.n_edges - w_t.n_edges) < 5 * spread
    if name == "configuration":
        assert abs(w_k.report["r_realised"] - w_t.report["r_realised"]) < 0.06
        assert set(w_k.report) == set(w_t.report)


def test_kernels_only_for_cpu_generators_int32_pre_indices_and_the_switch(kernels_switch) -> None:
    kernels_switch(True)
    assert host_wiring.enabled(_gen(0), 1000)
    assert not host_wiring.enabled(_gen(0), 2**31)  # int32 slots: larger blocks take the torch path (int64 keys)
    kernels_switch(False)
    assert not host_wiring.enabled(_gen(0), 1000)
