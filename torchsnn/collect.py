"""Gather the runs of a sweep into one table: ``python -m torchsnn.collect <multirun folder> [--x KEY] [--y KEY]``.

Every job folder below the given one that holds a ``summary.json`` (and, where it has a ``status.json``, finished
with status ``complete``) becomes a row: its Hydra overrides (``.hydra/overrides.yaml``) as columns, then every
number of its summary flattened to dotted keys (``comparison.E.ks``). The other job folders (failed, interrupted,
refused at validation: a folder with only ``run.log`` and ``.hydra/``) are skipped and listed with their status and
the error from their ``run.log``. Writes ``collected.csv`` and, with ``--x``/``--y``, ``collected.png`` (y against
x, one line per value of the other overrides).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import textwrap
from pathlib import Path
from typing import Any

import yaml

from torchsnn.runguard import read_status


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(node, (int, float, str, bool)) or node is None:
        return {prefix: node}
    return {}


def overrides_of(job: Path) -> dict[str, str]:
    path = job / ".hydra" / "overrides.yaml"
    if not path.exists():
        return {}
    return dict(item.lstrip("+").split("=", 1) for item in yaml.safe_load(path.read_text()) or [] if "=" in item)


def first_error(job: Path) -> str:
    """The first ERROR line of a job's ``run.log`` (Hydra's log of the job; the cause), without its time stamp."""
    log = job / "run.log"
    lines = log.read_text(errors="replace").splitlines() if log.is_file() else []
    errors = [line.split("] - ", 1)[-1] for line in lines if "[ERROR]" in line]
    return errors[0] if errors else "no error logged"


def collect(folder: Path) -> list[dict[str, Any]]:
    """One row per complete run below ``folder``; every other job folder is named with why it is skipped."""
    rows = []
    jobs = {p.parent for p in folder.rglob(".hydra") if p.is_dir()} | {p.parent for p in folder.rglob("status.json")}
    for job in sorted(j for j in jobs if not (j / "summary.json").exists()):
        status = read_status(job)
        why = f"status {status.get('status')}: " if status else ""
        print(f"skipped {job} (no summary.json; {why}{first_error(job)})")
    for summary in sorted(folder.rglob("summary.json")):
        job = summary.parent
        status = read_status(job)
        if status is not None and status.get("status") != "complete":  # interrupted, failed, still running
            print(f"skipped {job} (status {status.get('status')})")
            continue
        row: dict[str, Any] = {"job": str(job.relative_to(folder))}
        row.update({f"override.{k}": v for k, v in overrides_of(job).items()})
        row.update(flatten(json.loads(summary.read_text())))
        rows.append(row)
    return rows


def write_csv(rows: list[dict[str, Any]], path: Path) -> Path:
    keys = list(dict.fromkeys(k for row in rows for k in row))
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    return path


def plot(rows: list[dict[str, Any]], x: str, y: str, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    overrides = sorted({k for row in rows for k in row if k.startswith("override.") and k != x})
    varying = [k for k in overrides if len({str(row.get(k)) for row in rows}) > 1]
    fixed = [f"{k.removeprefix('override.')}={rows[0].get(k)}" for k in overrides if k not in varying]
    groups: dict[tuple, list[tuple[float, float]]] = {}
    for row in rows:
        if x in row and y in row and row[y] is not None:
            groups.setdefault(tuple(row.get(k) for k in varying), []).append((float(row[x]), float(row[y])))
    fig, ax = plt.subplots(figsize=(7.5, 4))
    for k, (label, points) in enumerate(sorted(groups.items(), key=lambda kv: str(kv[0]))):
        points.sort()
        name = ", ".join(f"{o.removeprefix('override.')}={v}" for o, v in zip(varying, label, strict=True)) or y
        ax.plot([p[0] for p in points], [p[1] for p in points], "o-", color=f"C{k % 10}", label=name)
    ax.set_xlabel(x.removeprefix("override."))
    ax.set_ylabel(y)
    if fixed:
        ax.set_title(textwrap.fill(", ".join(fixed), 90), fontsize=8)
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path, help="a multirun folder (or any folder holding run folders)")
    parser.add_argument("--x", help="column for the x axis, e.g. override.scaffold.r")
    parser.add_argument("--y", default="comparison.E.ks", help="column for the y axis")
    args = parser.parse_args(argv)
    rows = collect(args.folder)
    if not rows:
        print(f"no summary.json below {args.folder}")
        return 1
    out = write_csv(rows, args.folder / "collected.csv")
    print(f"{len(rows)} runs -> {out}")
    if args.x:
        print(f"figure -> {plot(rows, args.x, args.y, args.folder / 'collected.png')}")
    keys = [k for k in rows[0] if k.startswith("override.")] + [args.y]
    for row in rows:
        values = [row.get(k) for k in keys]
        print(
            "  ".join(
                f"{k.removeprefix('override.')}={v:.4g}"
                if isinstance(v, float) and math.isfinite(v)
                else f"{k.removeprefix('override.')}={v}"
                for k, v in zip(keys, values, strict=True)
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
