"""Your own network: a scaffold read from a file instead of wired from the seed (``scaffold=file scaffold.path=F``).

Accepted files (neuron ids are global, populations in the order of ``network.populations``: population ``P``
holds ids ``offset_P .. offset_P + size_P - 1``; ``post <- pre`` is an edge from ``pre`` to ``post``):

* ``.npz`` written by :func:`save_edges` / :meth:`SparseScaffold.export_edges` (arrays ``pre``, ``post`` and
  ``populations``, ``offsets``), or with per-block edge lists of local ids: arrays ``"<post><-<pre>:pre"`` and
  ``"<post><-<pre>:post"`` (e.g. ``"E<-I:pre"``);
* ``.npz`` of a ``scipy.sparse`` matrix (``scipy.sparse.save_npz``), shape (N, N), entry (post, pre) nonzero for
  an edge; its values are ignored (a weight of 1 in a binary adjacency matrix is no weight in mV);
* ``.csv`` with a header naming the columns ``pre`` and ``post`` (global ids) and optionally ``weight_mv`` and
  ``delay_ms``. The simulator has one weight and one delay per projection (weights differ per edge only under
  plasticity), so these columns must be constant within a block; they then replace that projection's
  ``weight_mv`` / ``delay_ms``.

The pipeline calls :func:`apply_file_scaffold` on the run config: every projection whose block the file holds gets
the connectivity rule :class:`FileBlock` (any rule it named is replaced, so none is needed), and
``meanfield.degrees`` becomes ``scaffold.theory_degrees`` (default ``scaffold``: the theory uses the realised
degrees, binned). The file scaffold draws nothing from the scaffold's random stream, so the dynamics of a run on an
exported scaffold are those of the run that wired it (same seed, same spikes).
"""

from __future__ import annotations

import copy
import csv
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from torchsnn.errors import ConfigError
from torchsnn.scaffold.degree_laws import DegreeLaw
from torchsnn.scaffold.rules import BlockDegreeLaws, ConnectivityRule, Wiring
from torchsnn.scaffold.scaffold import SparseScaffold
from torchsnn.validation import require

__all__ = ["EmpiricalDegree", "FileBlock", "apply_file_scaffold", "load_edge_file", "save_edges", "uses_file"]

FILE_RULE = "torchsnn.scaffold.from_file.FileBlock"


class EmpiricalDegree(DegreeLaw):
    """The degree law of an observed list of degrees: P(K = k) = #{i : k_i = k} / n."""

    family = "empirical"

    def __init__(self, degrees: np.ndarray) -> None:
        d = np.asarray(degrees, dtype=np.int64)
        require(d.size > 0 and int(d.min()) >= 0, "degrees", d.size, "need at least one non-negative degree")
        self.counts = np.bincount(d)
        self._cum = np.cumsum(self.counts) / d.size
        super().__init__(float(d.mean()))

    def params(self) -> dict[str, Any]:
        return {"n": int(self.counts.sum()), "max": int(self.counts.size - 1)}

    def with_mean(self, mean: float) -> EmpiricalDegree:
        require(
            abs(mean - self.mean_param) <= 1e-9 * max(1.0, mean),
            "mean",
            mean,
            f"is fixed by the data to {self.mean_param}",
        )
        return self

    def _cdf(self, k: np.ndarray) -> np.ndarray:
        idx = np.clip(k, -1, self._cum.size - 1).astype(np.int64)
        return np.where(idx < 0, 0.0, self._cum[np.maximum(idx, 0)])

    def _sf(self, k: np.ndarray) -> np.ndarray:
        return np.clip(1.0 - self._cdf(k), 0.0, 1.0)

    def _bounds(self, tail: float) -> tuple[int, int]:
        nonzero = np.flatnonzero(self.counts)
        return int(nonzero[0]), int(nonzero[-1])


@lru_cache(maxsize=4)
def _load_cached(path: str, mtime_ns: int, populations: tuple[tuple[str, int], ...]) -> dict[tuple[str, str], Any]:
    return _split_blocks(path, dict(populations))


def load_edge_file(path: str | Path, populations: Mapping[str, int]) -> dict[tuple[str, str], dict[str, Any]]:
    """Blocks of the file: (post, pre) -> {"pre": local ids, "post": local ids, "weight_mv", "delay_ms"} (the last
    two None unless the file gives them, constant per block)."""
    p = Path(path).expanduser()
    require(p.is_file(), "scaffold.path", str(path), "must be an existing .npz or .csv file")
    return _load_cached(str(p.resolve()), p.stat().st_mtime_ns, tuple((k, int(v)) for k, v in populations.items()))


def _split_blocks(path: str, populations: dict[str, int]) -> dict[tuple[str, str], dict[str, Any]]:
    names = list(populations)
    offsets = np.cumsum([0, *populations.values()])
    n_total = int(offsets[-1])
    extra: dict[str, np.ndarray] = {}
    if path.endswith(".csv"):
        pre, post, extra = _read_csv(path)
    elif path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as data:
            keys = set(data.files)
            if {"indptr", "indices", "format", "shape"} <= keys:
                from scipy import sparse

                m = sparse.load_npz(path).tocoo()
                require(
                    m.shape == (n_total, n_total),
                    "scaffold.path",
                    f"matrix {m.shape}",
                    f"must be ({n_total}, {n_total}) for populations {populations}",
                )
                post, pre = m.row.astype(np.int64), m.col.astype(np.int64)
            elif {"pre", "post"} <= keys:
                if "populations" in keys:
                    stored = [str(x) for x in data["populations"]]
                    require(
                        stored == names, "scaffold.path", stored, f"the file's populations must be {names} (in order)"
                    )
                    require(
                        np.array_equal(data["offsets"], offsets[:-1]),
                        "scaffold.path",
                        list(data["offsets"]),
                        f"population offsets must be {list(offsets[:-1])} (sizes {populations})",
                    )
                pre, post = data["pre"].astype(np.int64), data["post"].astype(np.int64)
            else:
                return _per_block_npz(path, data, populations)
    else:
        raise ConfigError("scaffold.path", path, "must end in .npz or .csv")
    for side, ids in (("pre", pre), ("post", post)):
        require(
            ids.size == 0 or (int(ids.min()) >= 0 and int(ids.max()) < n_total),
            "scaffold.path",
            f"{side} ids {int(ids.min())}..{int(ids.max())}",
            f"must lie in [0, {n_total}) (populations {populations})",
        )
    pre_pop, post_pop = np.searchsorted(offsets, pre, "right") - 1, np.searchsorted(offsets, post, "right") - 1
    blocks = {}
    for i, post_name in enumerate(names):
        for j, pre_name in enumerate(names):
            sel = (post_pop == i) & (pre_pop == j)
            if not sel.any():
                continue
            block = {"pre": pre[sel] - offsets[j], "post": post[sel] - offsets[i]}
            for col in ("weight_mv", "delay_ms"):
                block[col] = _constant(extra[col][sel], col, f"{post_name}<-{pre_name}") if col in extra else None
            blocks[(post_name, pre_name)] = block
    return blocks


def _per_block_npz(path: str, data: Any, populations: dict[str, int]) -> dict[tuple[str, str], dict[str, Any]]:
    blocks = {}
    for key in data.files:
        require(
            ":" in key and "<-" in key,
            "scaffold.path",
            key,
            "npz keys must be pre/post (global ids) or '<post><-<pre>:pre' / ':post'",
        )
        name, side = key.rsplit(":", 1)
        post, pre = name.split("<-", 1)
        require(
            post in populations and pre in populations,
            "scaffold.path",
            key,
            f"populations must be among {list(populations)}",
        )
        blocks.setdefault((post, pre), {"weight_mv": None, "delay_ms": None})[side] = data[key].astype(np.int64)
    for (post, pre), b in blocks.items():
        require(
            "pre" in b and "post" in b and b["pre"].shape == b["post"].shape,
            "scaffold.path",
            f"{post}<-{pre}",
            "needs ':pre' and ':post' arrays of equal length",
        )
    return blocks


def _read_csv(path: str) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames or []
        require(
            {"pre", "post"} <= set(fields),
            "scaffold.path",
            fields,
            "a CSV needs a header with columns pre, post (and optionally weight_mv, delay_ms)",
        )
        rows = list(reader)
    pre = np.array([int(r["pre"]) for r in rows], dtype=np.int64)
    post = np.array([int(r["post"]) for r in rows], dtype=np.int64)
    extra = {c: np.array([float(r[c]) for r in rows]) for c in ("weight_mv", "delay_ms") if c in fields}
    return pre, post, extra


def _constant(values: np.ndarray, column: str, block: str) -> float:
    require(
        bool(np.all(values == values[0])),
        f"scaffold.path: {column}",
        f"{values.min()}..{values.max()} in block {block}",
        "must be constant within a block: the simulator has one weight and one delay per projection",
    )
    return float(values[0])


class FileBlock(ConnectivityRule):
    """The edges of block ``post <- pre`` as read from ``path`` (see the module docstring); wires nothing at random.

    ``in_degree`` (``{"mean": ...}``) only informs the memory estimate made before the file is read again."""

    allow_autapses = True  # the file decides

    def __init__(self, path: str, post: str, pre: str, sizes: Mapping[str, int], in_degree: Any = None) -> None:
        self.path, self.post, self.pre, self.sizes = str(path), post, pre, dict(sizes)

    def _block(self) -> dict[str, Any]:
        blocks = load_edge_file(self.path, self.sizes)
        require((self.post, self.pre) in blocks, "scaffold.path", self.path, f"holds no block {self.post}<-{self.pre}")
        return blocks[(self.post, self.pre)]

    def _validate(self, n_pre: int, n_post: int, square: bool) -> None:
        require(
            (n_pre, n_post) == (self.sizes[self.pre], self.sizes[self.post]),
            "network.populations",
            (n_pre, n_post),
            f"must match the sizes the file was read with {self.sizes}",
        )
        self._block()

    def connect(self, n_pre: int, n_post: int, square: bool, rng: np.random.Generator) -> Wiring:
        self.validate(n_pre, n_post, square)
        b = self._block()
        device = rng.device if isinstance(rng, torch.Generator) else torch.device("cpu")
        pre = torch.as_tensor(np.asarray(b["pre"]), dtype=torch.int64, device=device)
        post = torch.as_tensor(np.asarray(b["post"]), dtype=torch.int64, device=device)
        keys = torch.unique(pre * n_post + post)  # sorted by (pre, post): CSR order, duplicates merged
        counts = torch.bincount(keys // n_post, minlength=n_pre)
        row_ptr = torch.zeros(n_pre + 1, dtype=torch.int64, device=device)
        row_ptr[1:] = torch.cumsum(counts, 0)
        report = {"source": self.path, "duplicates_removed": int(pre.numel() - keys.numel())}
        return Wiring(row_ptr, (keys % n_post).to(torch.int32), report)

    def degree_laws(self, n_pre: int, n_post: int, square: bool) -> BlockDegreeLaws:
        """The file's in- and out-degree marginals; in/out correlation only through theory_degrees=scaffold."""
        b = self._block()
        k_in, k_out = np.bincount(b["post"], minlength=n_post), np.bincount(b["pre"], minlength=n_pre)
        r = float(np.corrcoef(k_in, k_out)[0, 1]) if square and k_in.std() > 0 and k_out.std() > 0 else 0.0
        return BlockDegreeLaws(EmpiricalDegree(k_in), EmpiricalDegree(k_out), None, r)


def uses_file(cfg: Mapping[str, Any]) -> bool:
    """True when the run config reads its scaffold from a file (``scaffold.path`` set)."""
    return bool((cfg.get("scaffold") or {}).get("path"))


def apply_file_scaffold(cfg: dict[str, Any]) -> dict[str, Any]:
    """A copy of the plain run config with the file's blocks as connectivity (see the module docstring).

    Unchanged when ``scaffold.path`` is not set; idempotent. Raises ConfigError (field, value, what is allowed)."""
    if not uses_file(cfg):
        return cfg
    out = copy.deepcopy(cfg)
    scaffold = out["scaffold"]
    path = str(Path(str(scaffold["path"])).expanduser())
    sizes = {n: int(p["size"]) for n, p in out["network"]["populations"].items()}
    blocks = load_edge_file(path, sizes)
    projections = out["network"].get("projections") or {}
    by_block = {(p["post"], p["pre"]): name for name, p in projections.items()}
    for key in blocks:
        require(
            key in by_block,
            "scaffold.path",
            f"block {key[0]}<-{key[1]}",
            f"needs a projection in network.projections (post {key[0]}, pre {key[1]}: weight_mv, delay_ms)",
        )
    for name, p in projections.items():
        key = (p["post"], p["pre"])
        if key in blocks:
            b = blocks[key]
            mean_in = b["post"].size / sizes[p["post"]]
            p["connectivity"] = {
                "_target_": FILE_RULE,
                "path": path,
                "post": key[0],
                "pre": key[1],
                "sizes": sizes,
                "in_degree": {"mean": mean_in},
            }
            for col in ("weight_mv", "delay_ms"):
                if b[col] is not None:
                    p[col] = b[col]
        elif not (isinstance(p.get("connectivity"), Mapping) and "_target_" in p["connectivity"]):
            raise ConfigError(
                f"network.projections.{name}.connectivity",
                p.get("connectivity"),
                f"the file {path} holds no block {key[0]}<-{key[1]}: name a connectivity rule or add it to the file",
            )
    degrees = scaffold.get("theory_degrees", "scaffold")
    require(
        degrees in ("scaffold", "laws"),
        "scaffold.theory_degrees",
        degrees,
        "must be scaffold (realised degrees) or laws (the file's degree marginals)",
    )
    out.setdefault("meanfield", {})["degrees"] = degrees
    return out


def save_edges(scaffold: SparseScaffold, path: str | Path) -> Path:
    """Write ``scaffold`` as an edge-list ``.npz`` that ``scaffold=file scaffold.path=<path>`` reads back."""
    path = Path(path)
    np.savez_compressed(path, **scaffold.export_edges())
    return path
