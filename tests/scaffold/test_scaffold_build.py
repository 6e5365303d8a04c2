"""SparseScaffold: building several blocks, CSR invariants, degree views, save/load and edge export."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from torchsnn.errors import ConfigError
from torchsnn.scaffold import (
    ConfigurationModel,
    FixedInDegree,
    GammaDegree,
    PairwiseBernoulli,
    ScaffoldBlock,
    SparseScaffold,
)

POPS = {"E": 800, "I": 200}


@pytest.fixture(scope="module")
def scaffold() -> SparseScaffold:
    rules = {
        ("E", "E"): ConfigurationModel(GammaDegree(40, 0.7), r=0.4),
        ("E", "I"): FixedInDegree(20),
        ("I", "E"): PairwiseBernoulli(0.1),
    }  # no I <- I block
    return SparseScaffold.build(POPS, rules, np.random.default_rng(17))


def test_csr_invariants(scaffold: SparseScaffold) -> None:
    assert scaffold.offsets == {"E": 0, "I": 800} and scaffold.n_total == 1000
    for (post, pre), b in scaffold.blocks.items():
        assert (b.post, b.pre, b.n_post, b.n_pre) == (post, pre, POPS[post], POPS[pre])
        assert b.row_ptr.dtype == torch.int64 and b.row_ptr.shape == (b.n_pre + 1,) and int(b.row_ptr[0]) == 0
        assert b.post_index.dtype == torch.int32 and int(b.row_ptr[-1]) == b.n_edges
        for i in range(0, b.n_pre, 37):  # rows strictly ascending (sorted, no duplicates)
            row = b.post_index[b.row_ptr[i] : b.row_ptr[i + 1]]
            assert torch.all(row[1:] > row[:-1])
        assert b.pre_index().dtype == torch.int32 and b.pre_index().shape == (b.n_edges,)
        assert int(b.in_degree().sum()) == int(b.out_degree().sum()) == b.n_edges
    assert torch.all(scaffold.block("E", "I").in_degree() == 20)


def test_degree_views(scaffold: SparseScaffold) -> None:
    ins = scaffold.in_degrees("I")
    assert set(ins) == {"E", "I"} and torch.all(ins["I"] == 0) and ins["E"].shape == (200,)
    outs = scaffold.out_degrees("I")
    assert torch.equal(outs["E"], scaffold.block("E", "I").out_degree()) and torch.all(outs["I"] == 0)
    k, p = scaffold.empirical_rho("E", "I")
    assert np.array_equal(k, [20]) and np.allclose(p, [1.0])
    k_star, p_star = scaffold.empirical_rho_star("I", "E", via="I")  # E neurons receive no I <- I input ...
    assert np.array_equal(k_star, [20]) and p_star.sum() == pytest.approx(1.0)  # ... but 20 from I (E <- I)
    assert scaffold.realised_r("E", "E") == pytest.approx(scaffold.block("E", "E").report["r_realised"])


def test_save_load_round_trip(scaffold: SparseScaffold, tmp_path) -> None:
    path = tmp_path / "scaffold.pt"
    scaffold.save(path)
    torch.load(path, weights_only=True)  # plain data only
    loaded = SparseScaffold.load(path)
    assert loaded.populations == scaffold.populations and list(loaded.blocks) == list(scaffold.blocks)
    for key, b in scaffold.blocks.items():
        c = loaded.blocks[key]
        assert torch.equal(b.row_ptr, c.row_ptr) and torch.equal(b.post_index, c.post_index)
        assert c.report == b.report
    assert loaded.summary() == scaffold.summary()


def test_export_edges_consistent_with_csr(scaffold: SparseScaffold) -> None:
    e = scaffold.export_edges()
    assert list(e["block_names"]) == ["E<-E", "E<-I", "I<-E"] and list(e["offsets"]) == [0, 800]
    assert e["pre"].size == e["post"].size == e["block"].size == sum(b.n_edges for b in scaffold.blocks.values())
    for code, ((post, pre), b) in enumerate(scaffold.blocks.items()):
        sel = e["block"] == code
        assert np.array_equal(e["pre"][sel] - scaffold.offsets[pre], b.pre_index().numpy())
        assert np.array_equal(e["post"][sel] - scaffold.offsets[post], b.post_index.numpy())
    rebuilt = ScaffoldBlock.from_edges("I", "E", 200, 800, e["pre"][e["block"] == 2], e["post"][e["block"] == 2] - 800)
    assert torch.equal(rebuilt.row_ptr, scaffold.block("I", "E").row_ptr)


def test_summary(scaffold: SparseScaffold) -> None:
    s = scaffold.summary()
    assert s["E<-I"]["in_mean"] == 20 and s["E<-I"]["in_cv"] == 0 and s["E<-I"]["realised_r"] is None
    assert s["E<-E"]["in_cv"] == pytest.approx(0.7, rel=0.1) and abs(s["E<-E"]["realised_r"] - 0.4) < 0.15
    assert s["E<-E"]["report"]["n_edges"] == s["E<-E"]["n_edges"]


def test_unsorted_edges_are_sorted_and_duplicates_refused() -> None:
    b = ScaffoldBlock.from_edges("A", "B", 3, 2, np.array([1, 0, 1]), np.array([0, 2, 1]))
    assert b.row_ptr.tolist() == [0, 1, 3] and b.post_index.tolist() == [2, 0, 1]
    with pytest.raises(ConfigError, match="duplicate"):
        ScaffoldBlock.from_edges("A", "B", 3, 2, np.array([1, 1]), np.array([0, 0]))


def test_build_errors_name_the_projection() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ConfigError) as err:
        SparseScaffold.build(POPS, {("E", "I"): FixedInDegree(500)}, rng)
    assert err.value.field == "projections[E<-I].indegree" and "500" in str(err.value) and "200" in str(err.value)
    with pytest.raises(ConfigError, match=r"projections\[E<-X\]"):
        SparseScaffold.build(POPS, {("E", "X"): FixedInDegree(5)}, rng)
    with pytest.raises(ConfigError, match=r"populations.E = -5"):
        SparseScaffold.build({"E": -5}, {}, rng)
    state = rng.bit_generator.state
    with pytest.raises(ConfigError) as err:  # every rule is validated before any wiring: the generator is untouched
        SparseScaffold.build(
            POPS, {("E", "E"): FixedInDegree(10), ("I", "E"): ConfigurationModel(GammaDegree(30, 0.5), r=0.5)}, rng
        )
    assert err.value.field == "projections[I<-E].r" and rng.bit_generator.state == state
