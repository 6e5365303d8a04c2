"""What a run leaves in its folder: summary.json, per-neuron table, figures."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from torchsnn.scaffold import SparseScaffold
from torchsnn.simulation import SimulationResult


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return None if not math.isfinite(float(obj)) else float(obj)
    if isinstance(obj, (complex, np.complexfloating)):
        return [_json_safe(float(obj.real)), _json_safe(float(obj.imag))]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.ndarray):
        return _json_safe(obj.tolist())
    return obj


def write_json(path: Path, data: dict[str, Any]) -> Path:
    """Write atomically (temp file + rename): a crash never leaves a half-written file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(_json_safe(data), indent=2, sort_keys=False))
    tmp.replace(path)
    return path


def write_neuron_table(path: Path, result: SimulationResult, scaffold: SparseScaffold) -> Path:
    """One row per neuron and replica: population, index, replica, rate, ISI CV, in- and out-degree per block."""
    pops = list(result.spike_stats)
    in_cols = sorted({f"in_degree_from_{pre}" for post in pops for pre in scaffold.in_degrees(post)})
    out_cols = sorted({f"out_degree_to_{post}" for pre in pops for post in scaffold.out_degrees(pre)})
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["population", "neuron", "replica", "rate_hz", "cv_isi", *in_cols, *out_cols])
        for name in pops:
            rates = result.spike_stats[name]["rates_hz"].numpy()
            cvs = result.spike_stats[name]["cv_isi"].numpy()
            k_in = {f"in_degree_from_{pre}": d.numpy() for pre, d in scaffold.in_degrees(name).items()}
            k_out = {f"out_degree_to_{post}": d.numpy() for post, d in scaffold.out_degrees(name).items()}
            n = rates.shape[-1]
            zeros = np.zeros(n, dtype=np.int64)
            cols_in = [k_in.get(c, zeros) for c in in_cols]
            cols_out = [k_out.get(c, zeros) for c in out_cols]
            for b in range(rates.shape[0]):
                for i in range(n):
                    writer.writerow(
                        [
                            name,
                            i,
                            b,
                            f"{rates[b, i]:.6g}",
                            f"{cvs[b, i]:.4g}",
                            *(int(c[i]) for c in cols_in),
                            *(int(c[i]) for c in cols_out),
                        ]
                    )
    tmp.replace(path)
    return path
