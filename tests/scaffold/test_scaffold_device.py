"""Wiring on the device (torchsnn/scaffold/edges.py): reproducibility from the torch Generator, the primitives
(uniform shuffle and subsets, merge, CSR placement with int64 offsets), and the new builders against the host
numpy builder they replaced (benchmarks/wiring_reference.py), statistically."""

from __future__ import annotations

import importlib.util
import itertools
import math

import numpy as np
import pytest
import torch
from scipy import stats
from testkit import REPO

from torchsnn.scaffold import (
    ConfigurationModel,
    FixedInDegree,
    GammaDegree,
    LognormalDegree,
    PairwiseBernoulli,
    SparseScaffold,
    edges,
)

RULES = {
    "fixed": FixedInDegree(50),
    "pairwise": PairwiseBernoulli(0.03),
    "configuration": ConfigurationModel(GammaDegree(40, 0.7), r=0.4),
}


def _reference():
    spec = importlib.util.spec_from_file_location("wiring_reference", REPO / "benchmarks" / "wiring_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.reference_connect


def _gen(seed: int, device: str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


@pytest.mark.parametrize("name", list(RULES))
def test_same_seed_same_scaffold_other_seed_other_scaffold(name: str, monkeypatch) -> None:
    monkeypatch.setitem(edges.CHUNK_EDGES, "cpu", 2048)  # many chunks: placement and re-matching across chunks
    rule = RULES[name]
    a, b, c = (rule.connect(1500, 1500, True, _gen(s)) for s in (7, 7, 8))
    assert torch.equal(a.row_ptr, b.row_ptr) and torch.equal(a.post_index, b.post_index)
    assert a.report == b.report
    assert not (a.n_edges == c.n_edges and torch.equal(a.post_index, c.post_index))


def test_chunked_wiring_equals_the_law_of_one_chunk(monkeypatch) -> None:
    """The chunking is an implementation detail: with 40 chunks the configuration model still realises the
    requested degrees and r (r sd at n = 4,000: about 0.015; 0.05 is > 3 sd)."""
    monkeypatch.setitem(edges.CHUNK_EDGES, "cpu", 4096)
    law = GammaDegree(40, 0.7)
    w = ConfigurationModel(law, r=0.4).connect(4000, 4000, True, _gen(3))
    kin = torch.bincount(w.post_index, minlength=4000).double()
    kout = w.row_ptr.diff().double()
    assert int(kin.sum()) == int(kout.sum()) == w.n_edges == w.report["n_edges"]
    assert abs(float(kin.mean()) - law.mean) < 5 * math.sqrt(law.variance / 4000)
    assert abs(w.report["r_realised"] - 0.4) < 0.05
    assert w.report["self_loops_removed"] + w.report["duplicates_removed"] <= 1e-3 * w.n_edges


def test_shuffle_is_uniform_over_permutations(monkeypatch) -> None:
    """4 elements in 2 blocks of 2 and 2 buckets (the two-level path): 24 orders, 9,600 draws, 400 expected each;
    chi-square p-value above 1e-3 at a fixed seed."""
    monkeypatch.setitem(edges.CHUNK_EDGES, "cpu", 2)
    gen = _gen(11)
    x = torch.arange(4)
    index = {p: i for i, p in enumerate(itertools.permutations(range(4)))}
    counts = np.zeros(24)
    for _ in range(9600):
        counts[index[tuple(edges.shuffle(x, gen).tolist())]] += 1
    assert stats.chisquare(counts).pvalue > 1e-3


def test_distinct_uniform_and_merge() -> None:
    gen = _gen(5)
    hits = torch.zeros(50)
    for _ in range(2000):
        s = edges.distinct_uniform(50, 10, gen)
        assert s.numel() == 10 and torch.all(s[1:] > s[:-1])
        hits[s] += 1
    # each element is chosen with probability 1/5: 400 expected, sd 17.9; 5 sd
    assert float((hits - 400).abs().max()) < 5 * math.sqrt(2000 * 0.2 * 0.8)
    assert edges.distinct_uniform(6, 5, gen).tolist() != []  # dense: the complement path
    a, b = torch.tensor([1, 4, 9, 10]), torch.tensor([0, 5, 11])
    assert edges.merge_sorted(a, b).tolist() == sorted(a.tolist() + b.tolist())


def test_int64_index_arithmetic_past_2_31() -> None:
    """Keys, fill offsets and positions beyond 2^31 (a block of 3e9 pre neurons, CSR offsets near 5e9) stay
    exact, without allocating anything of that size."""
    n_pre, n_post = 3_000_000_000, 4
    chunks = edges.EdgeSet(n_pre, n_post, expected_edges=4, device=torch.device("cpu"))
    assert chunks.width == 4 and len(chunks.starts) == 1
    assert chunks.dtype == torch.int64  # pre * width + post does not fit int32
    pre = torch.tensor([2_999_999_999, 2_500_000_000, 2_999_999_999, 7], dtype=torch.int64)
    post = torch.tensor([3, 1, 3, 0], dtype=torch.int64)
    rej_pre, rej_post, _ = chunks.insert(0, pre, post)
    assert rej_pre.tolist() == [2_999_999_999] and rej_post.tolist() == [3]  # the repeated pair
    keys = chunks.keys[0]
    assert keys.tolist() == sorted(
        int(p) * chunks.width + int(q) for p, q in {(7, 0), (2_500_000_000, 1), (2_999_999_999, 3)}
    )
    # CSR placement of a chunk whose rows start past 2^31: positions are fill[pre] + rank in the chunk
    width, start = 1000, 4000
    first = torch.tensor([0 * width + 5, 0 * width + 7, 2 * width + 1], dtype=torch.int64)
    later = torch.tensor([0 * width + 6, 1 * width + 0], dtype=torch.int64)
    fill = torch.tensor([5_000_000_000, 2**31 + 3, 2**32], dtype=torch.int64)
    placed, count = edges.csr_positions(first, later, width, start, fill)
    (pos_a, post_a), (pos_b, post_b) = placed
    assert count.tolist() == [3, 1, 1]
    assert pos_a.tolist() == [5_000_000_000, 5_000_000_002, 2**32] and post_a.tolist() == [4005, 4007, 4001]
    assert pos_b.tolist() == [5_000_000_001, 2**31 + 3] and post_b.tolist() == [4006, 4000]


def _ks(a: np.ndarray, b: np.ndarray) -> float:
    return float(stats.ks_2samp(a, b).pvalue)


@pytest.mark.parametrize(
    ("rule", "n", "square"),
    [
        (FixedInDegree(200), 5000, True),
        (PairwiseBernoulli(0.02), 4000, True),
        (ConfigurationModel(LognormalDegree(60, 0.8), r=0.5), 5000, True),
        (ConfigurationModel(GammaDegree(30, 0.5)), 5000, False),
    ],
    ids=["fixed", "pairwise", "configuration_r", "configuration_rect"],
)
def test_device_builder_matches_the_host_builder_statistically(rule, n: int, square: bool) -> None:
    """Same rule, independent seeds: the in- and out-degree samples of the new (torch) and old (numpy) builders
    come from the same law (two-sample KS p > 1e-3), the edge counts agree within 5 sd of their spread, and the
    realised r agrees (each has sd ~ 0.012 at n = 5,000: 0.06 is 3.5 sd of the difference)."""
    reference_connect = _reference()
    row_ptr, post_index, _ = reference_connect(rule, n, n, square, np.random.default_rng(21))
    w = rule.connect(n, n, square, _gen(21))
    kin_old, kout_old = np.bincount(post_index, minlength=n), np.diff(row_ptr)
    kin_new = torch.bincount(w.post_index, minlength=n).numpy()
    kout_new = w.row_ptr.diff().numpy()
    for old, new in ((kin_old, kin_new), (kout_old, kout_new)):
        if old.std() > 0:
            assert _ks(old, new) > 1e-3
        else:
            assert np.array_equal(old, new)
    spread = math.sqrt(2 * n) * max(kin_old.std(), kout_old.std(), 1.0)  # sd of a sum of n degrees, twice
    assert abs(int(post_index.size) - w.n_edges) < 5 * spread
    if square and isinstance(rule, ConfigurationModel):
        r_old = np.corrcoef(kin_old, kout_old)[0, 1]
        assert abs(w.report["r_realised"] - r_old) < 0.06


def test_build_wires_on_the_generator_device_from_a_numpy_seed_too() -> None:
    pops = {"E": 400, "I": 100}
    rules = {("E", "E"): FixedInDegree(20), ("I", "E"): ConfigurationModel(GammaDegree(10, 0.5))}
    a = SparseScaffold.build(pops, rules, np.random.default_rng(4))
    b = SparseScaffold.build(pops, rules, np.random.default_rng(4))
    for key in rules:
        assert a.block(*key).row_ptr.device.type == "cpu"
        assert torch.equal(a.block(*key).post_index, b.block(*key).post_index)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", list(RULES))
def test_cuda_wiring_is_reproducible_and_matches_the_cpu_statistically(name: str) -> None:
    rule, n = RULES[name], 3000
    a, b = (rule.connect(n, n, True, _gen(9, "cuda")) for _ in range(2))
    assert a.row_ptr.device.type == "cuda" and a.post_index.dtype == torch.int32
    assert torch.equal(a.row_ptr, b.row_ptr) and torch.equal(a.post_index, b.post_index)
    c = rule.connect(n, n, True, _gen(9))
    for new, old in (
        (torch.bincount(a.post_index, minlength=n).cpu().numpy(), torch.bincount(c.post_index, minlength=n).numpy()),
        (a.row_ptr.diff().cpu().numpy(), c.row_ptr.diff().numpy()),
    ):
        if old.std() > 0:
            assert _ks(old, new) > 1e-3
    keys = a.pre.cpu() * n + a.post.cpu()
    assert torch.all(keys[1:] > keys[:-1]) and not torch.any(a.pre == a.post)
