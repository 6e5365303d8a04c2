"""scaffold=file: networks read from npz edge lists, scipy.sparse matrices and CSV; the export/load round trip gives
the same spikes for the same seed; the theory uses the file's realised degrees."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import sparse
from testkit import brunel_size_overrides, compose_plain

from torchsnn.config import build_network
from torchsnn.errors import ConfigError
from torchsnn.scaffold.from_file import apply_file_scaffold, load_edge_file, save_edges
from torchsnn.simulation import simulate

SMALL = [
    "+experiment=brunel_ai",
    *brunel_size_overrides(400, 100, 40, 10),
    "simulation.duration_ms=300",
    "simulation.transient_ms=100",
    "simulation.raster_neurons=400",
    "simulation.raster_ms=200",
    "logging.progress=false",
]
SIZES = {"E": 400, "I": 100}


def _spikes(cfg):
    built = build_network(cfg)
    torch.manual_seed(0)
    result = simulate(built.network, duration_ms=300, transient_ms=100, generator=built.generator, raster_neurons=400)
    return built, {n: (r["step"].numpy(), r["neuron"].numpy()) for n, r in result.raster.items()}


def test_round_trip_same_spikes(tmp_path: Path):
    cfg = compose_plain(*SMALL)
    built, spikes = _spikes(cfg)
    path = save_edges(built.scaffold, tmp_path / "edges.npz")
    cfg_file = compose_plain(*SMALL, "scaffold=file", f"scaffold.path={path}")
    built_file, spikes_file = _spikes(cfg_file)
    for key, block in built.scaffold.blocks.items():
        other = built_file.scaffold.blocks[key]
        assert torch.equal(block.row_ptr, other.row_ptr) and torch.equal(block.post_index, other.post_index)
    assert sum(s.size for s, _ in spikes.values()) > 100  # the network is active: the comparison means something
    for name in spikes:
        np.testing.assert_array_equal(spikes[name][0], spikes_file[name][0])
        np.testing.assert_array_equal(spikes[name][1], spikes_file[name][1])


def _edges_of(cfg):
    built = build_network(cfg)
    return built.scaffold.export_edges(), built.scaffold


def test_scipy_sparse_and_csv_and_per_block_npz_give_the_same_blocks(tmp_path: Path):
    edges, scaffold = _edges_of(compose_plain(*SMALL))
    n = sum(SIZES.values())
    matrix = sparse.csr_matrix((np.ones(edges["pre"].size), (edges["post"], edges["pre"])), shape=(n, n))
    sparse.save_npz(tmp_path / "m.npz", matrix)
    with open(tmp_path / "e.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["pre", "post", "weight_mv", "delay_ms"])
        for a, b in zip(edges["pre"], edges["post"], strict=True):
            same_e = a < 400
            w.writerow([a, b, 0.1 if same_e else 0.5, 1.5])
    per_block = {}
    for (post, pre), b in scaffold.blocks.items():
        per_block[f"{post}<-{pre}:pre"] = b.pre_index().numpy()
        per_block[f"{post}<-{pre}:post"] = b.post_index.numpy()
    np.savez(tmp_path / "b.npz", **per_block)
    for name in ("m.npz", "e.csv", "b.npz"):
        blocks = load_edge_file(tmp_path / name, SIZES)
        assert set(blocks) == set(scaffold.blocks)
        for key, b in scaffold.blocks.items():
            order = np.lexsort((blocks[key]["post"], blocks[key]["pre"]))
            np.testing.assert_array_equal(blocks[key]["pre"][order], b.pre_index().numpy())
            np.testing.assert_array_equal(blocks[key]["post"][order], b.post_index.numpy())
    assert load_edge_file(tmp_path / "e.csv", SIZES)[("E", "I")]["weight_mv"] == 0.5


def test_projections_need_no_rule_and_theory_uses_realised_degrees(tmp_path: Path):
    edges, _ = _edges_of(compose_plain(*SMALL))
    np.savez(tmp_path / "edges.npz", **edges)
    cfg = compose_plain(*SMALL, "scaffold=file", f"scaffold.path={tmp_path / 'edges.npz'}")
    for p in cfg["network"]["projections"].values():
        p.pop("connectivity")
    out = apply_file_scaffold(cfg)
    assert out["meanfield"]["degrees"] == "scaffold"
    assert all(p["connectivity"]["_target_"].endswith("FileBlock") for p in out["network"]["projections"].values())
    assert cfg["network"]["projections"]["EE"].get("connectivity") is None  # the caller's config is left alone


def test_bad_files_are_refused_with_the_field(tmp_path: Path):
    np.savez(tmp_path / "e.npz", pre=np.array([0, 900]), post=np.array([1, 2]))
    with pytest.raises(ConfigError, match=r"scaffold.path.*\[0, 500\)"):
        load_edge_file(tmp_path / "e.npz", SIZES)
    with pytest.raises(ConfigError, match=r"scaffold\.path"):
        load_edge_file(tmp_path / "missing.npz", SIZES)
    (tmp_path / "w.csv").write_text("pre,post,weight_mv\n0,1,0.1\n2,1,0.2\n")
    with pytest.raises(ConfigError, match="constant within a block"):
        load_edge_file(tmp_path / "w.csv", SIZES)
