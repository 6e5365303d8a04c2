"""The harness's table (text) and its JSON record."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

COLUMNS = ("scenario", "variant", "B", "build s", "wall s", "RTF", "events/s", "peak MB", "rate Hz (E/I)", "notes")


def _num(x: Any, fmt: str) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return format(x, fmt)


def _rates(r: dict) -> str:
    rates = r.get("rate_mean_hz")
    if not rates:
        return "-"
    return "/".join(f"{v:.2f}" for v in rates.values())


def _notes(r: dict) -> str:
    if "skipped" in r:
        return "skipped: " + r["skipped"].splitlines()[0][:110]
    notes = []
    for key, value in (r.get("ratios") or {}).items():
        other = key.split(" / ")[-1]
        notes.append(f"x{value:.2f} vs {other}")
    if r.get("identical_spike_counts_compiled_vs_ref") is not None and "torch-ref" in r["variant"]:
        notes.append("spikes identical to compiled" if r["identical_spike_counts_compiled_vs_ref"] else "SPIKES DIFFER")
    if r.get("peer"):
        notes.append(f"build {r['build_s']:.1f} s")
    for w in r.get("rate_warnings") or []:
        notes.append("WARNING " + w)
    if r["scenario"] == "meanfield":
        notes.append(
            f"{r['iterations']} it, residual {r['residual']:.1e}, {'converged' if r['converged'] else 'NOT converged'}"
            f", process {r['process_s']:.1f} s"
        )
    if r.get("bytes_per_synapse") is not None:
        notes.append(f"{r['bytes_per_synapse']:.1f} B/synapse, {r['n_synapses']:.2e} synapses")
    if r.get("speedup_vs_b1_events") and r.get("batch", 1) > 1:
        notes.append(f"x{r['speedup_vs_b1_events']:.2f} aggregate events/s vs B=1")
    return "; ".join(notes)


def table(rows: list[dict]) -> str:
    cells = [list(COLUMNS)]
    for r in rows:
        cells.append(
            [
                r["scenario"],
                r.get("variant", "-"),
                str(r.get("batch", "-")),
                _num(r.get("build_s"), ".2f"),
                _num(r.get("wall_s"), ".3f"),
                _num(r.get("rtf"), ".3f"),
                _num(r.get("events_per_s"), ".3g"),
                _num(r.get("peak_mem_mb"), ".0f"),
                _rates(r),
                _notes(r),
            ]
        )
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS) - 1)]
    lines = []
    for k, row in enumerate(cells):
        lines.append(" | ".join(c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)) + " | " + row[-1])
        if k == 0:
            lines.append("-+-".join("-" * w for w in widths) + "-+-" + "-" * 5)
    return "\n".join(lines)


def markdown_table(rows: list[dict]) -> str:
    """The same table in Markdown (for benchmarks/README.md)."""
    out = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for line in table(rows).splitlines()[2:]:
        parts = [p.strip() for p in line.split(" | ")]
        out.append("| " + " | ".join(parts) + " |")
    return "\n".join(out)


def write_json(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, default=_default) + "\n")


def _default(x: Any) -> Any:
    if hasattr(x, "tolist"):
        return x.tolist()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON serialisable: {type(x)}")
