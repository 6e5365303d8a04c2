"""The binary scaffold of a network: one CSR block (by presynaptic neuron) per population pair post <- pre.

Besides the edges, a scaffold gives what the mean-field theory needs (theory.md §2): the empirical in-degree law
rho_K of each block and the law rho*_K of the in-degree of the presynaptic neuron of a random edge,

    rho*_K(k) = sum_i 1{K_i = k} L_i / sum_i L_i      (L_i: out-degree of pre neuron i towards the block's post)

the empirical counterpart of E[L | K = k] rho_K(k) / E[L].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from torchsnn.errors import ConfigError
from torchsnn.scaffold.edges import torch_generator
from torchsnn.scaffold.rules import ConnectivityRule
from torchsnn.validation import check_int, require

FORMAT = "torchsnn.scaffold/1"


@dataclass
class ScaffoldBlock:
    """Connectivity post <- pre in CSR by presynaptic neuron: the targets of pre neuron i are
    ``post_index[row_ptr[i]:row_ptr[i + 1]]`` (sorted ascending)."""

    post: str
    pre: str
    n_post: int
    n_pre: int
    row_ptr: torch.Tensor  # (n_pre + 1,) int64
    post_index: torch.Tensor  # (n_edges,) int32
    report: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_edges(
        cls,
        post: str,
        pre: str,
        n_post: int,
        n_pre: int,
        pre_idx: np.ndarray,
        post_idx: np.ndarray,
        report: dict[str, Any] | None = None,
    ) -> ScaffoldBlock:
        """Build the CSR from edge lists (sorted here unless already in (pre, post) order; duplicates refused)."""
        keys = np.asarray(pre_idx, dtype=np.int64) * n_post + np.asarray(post_idx, dtype=np.int64)
        if keys.size > 1 and not np.all(keys[1:] > keys[:-1]):
            keys = np.sort(keys)
            require(
                bool(np.all(keys[1:] > keys[:-1])),
                f"blocks[{post}<-{pre}]",
                "duplicate edges",
                "a scaffold block holds each (pre, post) pair at most once",
            )
        pre_sorted = keys // n_post
        require(
            keys.size == 0 or (int(pre_sorted[-1]) < n_pre and int(keys[0]) >= 0),
            f"blocks[{post}<-{pre}]",
            "edge index out of range",
            f"pre in [0, {n_pre}), post in [0, {n_post})",
        )
        row_ptr = np.zeros(n_pre + 1, dtype=np.int64)
        np.cumsum(np.bincount(pre_sorted, minlength=n_pre), out=row_ptr[1:])
        post_index = torch.from_numpy((keys % n_post).astype(np.int32))
        return cls(post, pre, n_post, n_pre, torch.from_numpy(row_ptr), post_index, _plain(report or {}))

    @property
    def n_edges(self) -> int:
        return int(self.post_index.numel())

    def in_degree(self) -> torch.Tensor:
        """(n_post,) int64: number of pre partners of each post neuron (on the block's device)."""
        return torch.bincount(self.post_index, minlength=self.n_post)

    def out_degree(self) -> torch.Tensor:
        """(n_pre,) int64: number of post partners of each pre neuron."""
        return self.row_ptr.diff()

    def pre_index(self) -> torch.Tensor:
        """(n_edges,) int32: the presynaptic neuron (CSR row) of each edge."""
        rows = torch.arange(self.n_pre, dtype=torch.int32, device=self.row_ptr.device)
        return torch.repeat_interleave(rows, self.out_degree())


class SparseScaffold:
    """All blocks of a network, keyed (post, pre); populations in a fixed order with global offsets."""

    def __init__(self, populations: dict[str, int], blocks: dict[tuple[str, str], ScaffoldBlock]) -> None:
        self.populations = {name: _check_population(name, n) for name, n in populations.items()}
        for (post, pre), b in blocks.items():
            where = f"blocks[{post}<-{pre}]"
            require(
                post in self.populations and pre in self.populations,
                where,
                (post, pre),
                f"populations must be among {list(self.populations)}",
            )
            require(
                (b.post, b.pre, b.n_post, b.n_pre) == (post, pre, self.populations[post], self.populations[pre]),
                where,
                (b.post, b.pre, b.n_post, b.n_pre),
                "must match its key and the population sizes",
            )
            require(
                tuple(b.row_ptr.shape) == (b.n_pre + 1,) and int(b.row_ptr[-1]) == b.n_edges,
                where,
                tuple(b.row_ptr.shape),
                "row_ptr must have n_pre + 1 entries ending at n_edges",
            )
        self.blocks = dict(blocks)
        self.offsets: dict[str, int] = {}
        total = 0
        for name, n in self.populations.items():
            self.offsets[name] = total
            total += n
        self.n_total = total

    @classmethod
    def build(
        cls,
        populations: dict[str, int],
        rules: dict[tuple[str, str], ConnectivityRule],
        rng: torch.Generator | np.random.Generator,
        device: torch.device | str | None = None,
    ) -> SparseScaffold:
        """Validate every rule against its block (ConfigError at ``projections[post<-pre]...``), then wire on
        ``device`` (default: the generator's, or the CPU for a numpy Generator, which then seeds one torch
        Generator on the device after validation). The blocks are built in ``rules`` order from one stream."""
        pops = {name: _check_population(name, n) for name, n in populations.items()}
        for (post, pre), rule in rules.items():
            where = f"projections[{post}<-{pre}]"
            require(post in pops and pre in pops, where, (post, pre), f"populations must be among {list(pops)}")
            require(isinstance(rule, ConnectivityRule), where, rule, "must be a ConnectivityRule")
            try:
                rule.validate(pops[pre], pops[post], post == pre)
            except ConfigError as err:
                raise err.at(where) from None
        blocks = {}
        gen = torch_generator(rng, device) if rules else None
        for (post, pre), rule in rules.items():
            w = rule.connect(pops[pre], pops[post], post == pre, gen)
            blocks[(post, pre)] = ScaffoldBlock(
                post, pre, pops[post], pops[pre], w.row_ptr, w.post_index, _plain(w.report)
            )
        return cls(pops, blocks)

    # ------------------------------------------------------------------ degrees and degree laws
    def block(self, post: str, pre: str) -> ScaffoldBlock:
        require((post, pre) in self.blocks, "block", f"{post}<-{pre}", f"must be one of {self.block_names()}")
        return self.blocks[(post, pre)]

    def block_names(self) -> list[str]:
        return [f"{post}<-{pre}" for post, pre in self.blocks]

    def in_degrees(self, post: str) -> dict[str, torch.Tensor]:
        """pre -> (n_post,) in-degree (int64, on the CPU) of each ``post`` neuron from ``pre`` (zeros where there
        is no block)."""
        n = self._size(post)
        return {
            pre: self.blocks[(post, pre)].in_degree().cpu()
            if (post, pre) in self.blocks
            else torch.zeros(n, dtype=torch.int64)
            for pre in self.populations
        }

    def out_degrees(self, pre: str) -> dict[str, torch.Tensor]:
        """post -> (n_pre,) out-degree (int64, on the CPU) of each ``pre`` neuron towards ``post`` (zeros where
        there is no block)."""
        n = self._size(pre)
        return {
            post: self.blocks[(post, pre)].out_degree().cpu()
            if (post, pre) in self.blocks
            else torch.zeros(n, dtype=torch.int64)
            for post in self.populations
        }

    def empirical_rho(self, post: str, pre: str) -> tuple[np.ndarray, np.ndarray]:
        """The law of K^{post,pre} over post neurons: (k values, probabilities)."""
        k, counts = np.unique(self.block(post, pre).in_degree().cpu().numpy(), return_counts=True)
        return k, counts / counts.sum()

    def empirical_rho_star(self, post: str, pre: str, via: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The law of the in-degree K^{pre,via} of the presynaptic neuron of a random edge of block post <- pre.

        Each pre neuron i counts with weight L_i, its out-degree towards ``post``; ``via`` defaults to ``pre``.
        """
        via = pre if via is None else via
        self._size(via)
        weight = self.block(post, pre).out_degree().cpu().numpy().astype(float)
        require(weight.sum() > 0, "block", f"{post}<-{pre}", "has no edges: rho* is undefined")
        k_pre = self.in_degrees(pre)[via].numpy()
        k, inverse = np.unique(k_pre, return_inverse=True)
        mass = np.bincount(inverse, weights=weight, minlength=k.size)
        keep = mass > 0
        return k[keep], mass[keep] / mass.sum()

    def realised_r(self, post: str, pre: str) -> float:
        """Pearson r of the in- and out-degree of each neuron in a square block (NaN if one is constant)."""
        require(post == pre, "block", f"{post}<-{pre}", "realised r is defined for square blocks (post == pre)")
        b = self.block(post, pre)
        kin, kout = b.in_degree().double().cpu().numpy(), b.out_degree().double().cpu().numpy()
        if kin.std() == 0 or kout.std() == 0:
            return float("nan")
        return float(np.corrcoef(kin, kout)[0, 1])

    # ------------------------------------------------------------------ persistence and export
    def save(self, path: str | Path) -> None:
        """One file (torch.save of tensors, numbers and strings only: loadable with weights_only=True)."""
        blocks = [
            {
                "post": b.post,
                "pre": b.pre,
                "n_post": b.n_post,
                "n_pre": b.n_pre,
                "row_ptr": b.row_ptr.cpu(),
                "post_index": b.post_index.cpu(),
                "report": _plain(b.report),
            }
            for b in self.blocks.values()
        ]
        torch.save({"format": FORMAT, "populations": dict(self.populations), "blocks": blocks}, Path(path))

    @classmethod
    def load(cls, path: str | Path) -> SparseScaffold:
        data = torch.load(Path(path), weights_only=True)
        require(
            isinstance(data, dict) and data.get("format") == FORMAT,
            "path",
            str(path),
            f"must be a scaffold saved by SparseScaffold.save (format {FORMAT})",
        )
        blocks = {
            (d["post"], d["pre"]): ScaffoldBlock(
                d["post"], d["pre"], d["n_post"], d["n_pre"], d["row_ptr"], d["post_index"], d["report"]
            )
            for d in data["blocks"]
        }
        return cls(data["populations"], blocks)

    def export_edges(self) -> dict[str, np.ndarray]:
        """All edges with global indices (population offsets): 'pre', 'post', 'block' (code into 'block_names'),
        'block_names', 'populations' and 'offsets' (in population order)."""
        pre, post, code = [], [], []
        for i, b in enumerate(self.blocks.values()):
            pre.append(b.pre_index().cpu().numpy().astype(np.int64) + self.offsets[b.pre])
            post.append(b.post_index.cpu().numpy().astype(np.int64) + self.offsets[b.post])
            code.append(np.full(b.n_edges, i, dtype=np.int32))
        empty_i64 = [np.zeros(0, dtype=np.int64)]
        return {
            "pre": np.concatenate(pre + empty_i64),
            "post": np.concatenate(post + empty_i64),
            "block": np.concatenate([*code, np.zeros(0, dtype=np.int32)]),
            "block_names": np.array(self.block_names(), dtype=str),
            "populations": np.array(list(self.populations), dtype=str),
            "offsets": np.array(list(self.offsets.values()), dtype=np.int64),
        }

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per block: n_edges, mean / cv of the in- and out-degree, realised r (square blocks), wiring report."""
        out = {}
        for (post, pre), b in self.blocks.items():
            kin, kout = b.in_degree().double(), b.out_degree().double()
            out[f"{post}<-{pre}"] = {
                "n_edges": b.n_edges,
                **_mean_cv("in", kin),
                **_mean_cv("out", kout),
                "realised_r": self.realised_r(post, pre) if post == pre else None,
                "report": dict(b.report),
            }
        return out

    def _size(self, name: str) -> int:
        require(name in self.populations, "population", name, f"must be one of {list(self.populations)}")
        return self.populations[name]


def _check_population(name: Any, n: Any) -> int:
    require(isinstance(name, str) and name != "", "populations", name, "names must be non-empty strings")
    return check_int(f"populations.{name}", n, 1)


def _mean_cv(side: str, x: torch.Tensor) -> dict[str, float]:
    mean = float(x.mean()) if x.numel() else 0.0
    std = float(x.std(unbiased=False)) if x.numel() else 0.0
    return {f"{side}_mean": mean, f"{side}_cv": std / mean if mean > 0 else 0.0}


def _plain(value: Any) -> Any:
    """Numbers, strings, lists and dicts only (numpy scalars to Python), so that weights_only loading works."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
