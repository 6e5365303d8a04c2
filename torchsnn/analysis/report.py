"""Markdown reports: sections of text, tables (lists of dicts) and figures, written next to the results."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if not math.isfinite(value) else f"{value:.4g}"
    return str(value)


def table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table from rows of equal keys."""
    if not rows:
        return "(no rows)"
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(_cell(row.get(k)) for k in keys) + " |" for row in rows]
    return "\n".join(lines)


def write_report(path: Path, title: str, sections: list[tuple[str, Any]]) -> Path:
    """Each section is (heading, content): a string, a list of row dicts (table), or a figure Path."""
    parts = [f"# {title}", ""]
    for heading, content in sections:
        parts += [f"## {heading}", ""]
        if isinstance(content, Path):
            parts.append(f"![{heading}]({content.name})")
        elif isinstance(content, list):
            parts.append(table(content))
        else:
            parts.append(str(content))
        parts.append("")
    path.write_text("\n".join(parts))
    return path
