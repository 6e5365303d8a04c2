"""The optional data a run writes for other tools: its network as an edge-list file and its spikes and weights as
NWB (``logging.export_scaffold`` / ``logging.nwb``)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torchsnn.config import BuiltRun
    from torchsnn.simulation import SimulationResult

log = logging.getLogger("torchsnn")


def write_exports(run_dir: Path, cfg: dict[str, Any], built: BuiltRun, sim: SimulationResult) -> None:
    """Optional data out: ``logging.export_scaffold`` (edge-list npz) and ``logging.nwb`` (spikes and weights)."""
    logs = cfg.get("logging") or {}
    if logs.get("export_scaffold"):
        from torchsnn.scaffold.from_file import save_edges

        log.info("scaffold edges: %s", save_edges(built.scaffold, run_dir / "scaffold_edges.npz"))
    if logs.get("nwb"):
        from torchsnn.io.nwb import write_nwb

        log.info("NWB file: %s", write_nwb(run_dir / "run.nwb", sim, built.network, cfg))
