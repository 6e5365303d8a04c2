"""Checkpoints: everything a run needs to continue exactly where it stopped, written atomically.

A checkpoint holds the network's state (neuron state, ring buffers, traces, weights, step counters), the dynamics
generator's state, every monitor's accumulated state, the callbacks' progress, the run's config and where the run
started. Files are written to a temporary name and renamed (a crash never leaves a half-written checkpoint); only
the newest ``keep`` are kept. On the CPU a resumed run is bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

from torchsnn.network import Network

FORMAT = 1


def scaffold_fingerprint(network: Network) -> str:
    """A hash of the wiring, so a checkpoint is never restored into a different network."""
    h = hashlib.sha256()
    for name, proj in network.projections.items():
        h.update(name.encode())
        h.update(proj.row_ptr.cpu().numpy().tobytes())
        h.update(proj.post_index.cpu().numpy().tobytes())
    return h.hexdigest()[:16]


class CheckpointWriter:
    """Writes ``checkpoint_<step>.pt`` into ``directory`` every ``every_steps`` model steps (and on demand)."""

    def __init__(
        self,
        directory: Path,
        every_steps: int,
        network: Network,
        generator: torch.Generator,
        config: dict[str, Any],
        keep: int = 3,
    ) -> None:
        self.directory = Path(directory)
        self.every_steps = max(1, int(every_steps))
        self.network, self.generator, self.config = network, generator, config
        self.keep = max(1, int(keep))
        self.fingerprint = scaffold_fingerprint(network)
        self.written: list[Path] = sorted(self.directory.glob("checkpoint_*.pt"))
        self.next_step = network.step_count + self.every_steps

    def due(self, step: int) -> bool:
        return step >= self.next_step

    def save(self, simulation_state: dict[str, Any]) -> Path:
        """Write a checkpoint of the current state; returns its path."""
        step = self.network.step_count
        self.directory.mkdir(parents=True, exist_ok=True)
        payload = {
            "format": FORMAT,
            "config": self.config,
            "step": step,
            "time_ms": step * self.network.dt_ms,
            "fingerprint": self.fingerprint,
            "network": self.network.checkpoint_state(),
            "generator": self.generator.get_state(),
            "simulation": simulation_state,
        }
        path = self.directory / f"checkpoint_{step:012d}.pt"
        tmp = path.with_suffix(".pt.tmp")
        torch.save(payload, tmp)
        tmp.replace(path)
        self.written = [p for p in self.written if p != path] + [path]
        for old in self.written[: -self.keep]:
            old.unlink(missing_ok=True)
        self.written = self.written[-self.keep :]
        while self.next_step <= step:
            self.next_step += self.every_steps
        return path


def latest_checkpoint(path: Path) -> Path:
    """``path`` itself if it is a file, else the newest checkpoint inside the folder (or its checkpoints/)."""
    path = Path(path)
    if path.is_file():
        return path
    for folder in (path, path / "checkpoints"):
        found = sorted(folder.glob("checkpoint_*.pt"))
        if found:
            return found[-1]
    raise FileNotFoundError(f"no checkpoint_*.pt in {path} or {path / 'checkpoints'}")


def load_checkpoint(path: Path) -> dict[str, Any]:
    payload = torch.load(latest_checkpoint(path), map_location="cpu", weights_only=False)
    if payload.get("format") != FORMAT:
        raise ValueError(f"checkpoint format {payload.get('format')} is not {FORMAT}")
    return payload


def restore(payload: dict[str, Any], network: Network, generator: torch.Generator) -> None:
    """Put the checkpointed state into a freshly built network of the same config and seed."""
    if scaffold_fingerprint(network) != payload["fingerprint"]:
        raise ValueError(
            "the checkpoint belongs to a different network (scaffold fingerprint differs): resume with "
            "the config stored in the checkpoint"
        )
    network.restore_state(payload["network"])
    generator.set_state(payload["generator"])
