"""Shared by the peer scripts, which run in the peers' own virtual environments (numpy only, no torchsnn).

The harness writes the network once: ``<stem>.npz`` holds the global edge arrays of ``Network.export_edges()``
(``pre``, ``post`` int32, ``weight_mv`` float32, ``delay_ms`` float32) and ``<stem>.json`` the rest (populations
with their offsets and sizes, neuron parameters, Poisson drive, time step, warm-up and timed durations, seed,
threads). A peer script writes its result JSON to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

import numpy as np


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--edges", required=True, help="<stem>.npz written by the harness (spec in <stem>.json)")
    parser.add_argument("--out", required=True, help="result JSON")
    parser.add_argument("--threads", type=int, default=None, help="override the spec's thread count")
    return parser.parse_args()


def load_network(edges_path: str) -> tuple[dict, dict[str, np.ndarray]]:
    path = Path(edges_path)
    spec = json.loads(path.with_suffix(".json").read_text())
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    return spec, arrays


def uniform_parameters(spec: dict) -> tuple[dict, dict]:
    """The neuron parameters and the drive shared by every population (the peer scripts build one group)."""
    pops = spec["populations"]
    neuron = pops[0]["neuron"]
    drive = pops[0]["drive"]
    for p in pops[1:]:
        if p["neuron"] != neuron or p["drive"] != drive:
            raise SystemExit(f"peer scripts need identical neuron/drive parameters in every population: {pops}")
    return neuron, drive


def summarise(spec: dict, arrays: dict[str, np.ndarray], counts: list[np.ndarray], walls: list[float]) -> dict:
    """Figures of the timed segments (``spec["repeats"]`` of ``duration_ms`` each, after the warm-up): the
    median wall time and the median synaptic events (spikes of each neuron x its out-degree) per wall second
    are the headline figures; rates are pooled over the segments."""
    n_total = sum(p["size"] for p in spec["populations"])
    out_degree = np.bincount(arrays["pre"], minlength=n_total).astype(np.int64)
    counts = [np.asarray(c, dtype=np.int64) for c in counts]
    model_s = spec["duration_ms"] * 1e-3
    events = [int((c * out_degree).sum()) for c in counts]
    eps = [e / w for e, w in zip(events, walls, strict=True)]
    total = np.sum(counts, axis=0)
    rates = {}
    for p in spec["populations"]:
        c = total[p["offset"] : p["offset"] + p["size"]]
        rates[p["name"]] = float(c.mean() / (model_s * len(counts)))
    wall = float(np.median(walls))
    return {
        "wall_s": wall,
        "model_s": model_s,
        "rtf": wall / model_s,
        "repeats": len(walls),
        "walls_s": list(walls),
        "events_per_s_each": eps,
        "spikes": int(total.sum()),
        "synaptic_events": int(np.median(events)),
        "events_per_s": float(np.median(eps)),
        "rate_mean_hz": rates,
        "rate_mean_all_hz": float(total.sum() / n_total / (model_s * len(counts))),
    }


def peak_rss_mb() -> float:
    """Peak resident set size of this process (VmHWM; ru_maxrss where /proc is missing)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def write(out: str, result: dict) -> None:
    Path(out).write_text(json.dumps(result, indent=2))


class Stopwatch:
    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    def lap(self) -> float:
        t, self.t0 = self.t0, time.perf_counter()
        return self.t0 - t


def limit_threads(n: int) -> None:
    """Pin BLAS/OpenMP pools before the peer is imported."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)
