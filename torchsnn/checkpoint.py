"""Checkpoints: everything a run needs to continue exactly where it stopped, written atomically, read safely.

A checkpoint holds the network's state (neuron state, ring buffers, traces, weights, step counters), the dynamics
generator's state, every monitor's accumulated state, the callbacks' progress, the run's config and where the run
started. Files are written to a temporary name and renamed (a crash never leaves a half-written checkpoint); only
the newest ``keep`` are kept. On the CPU a resumed run is bit-identical to an uninterrupted one.

**Format** (:data:`FORMAT`): a dict of plain tensors, numbers, strings, lists and dicts only, loaded with
``torch.load(weights_only=True)`` so that no file can run code when it is read. It carries ``format``, the
``code_version`` that wrote it, ``config_fingerprint`` (a hash of the config that decides the results: everything
but ``logging`` and ``resume``) and ``fingerprint`` (a hash of the wiring). Anything else (another format or code
version, a config that does not match its fingerprint, a truncated, empty or foreign file, a pickled object) is a
:class:`~torchsnn.errors.CheckpointError`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import pickle
from pathlib import Path
from typing import Any

import torch

from torchsnn import __version__
from torchsnn.errors import CheckpointError
from torchsnn.network import Network

FORMAT = 2
REQUIRED = ("format", "code_version", "config", "config_fingerprint", "step", "time_ms", "fingerprint")
log = logging.getLogger("torchsnn")


def config_fingerprint(config: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of ``config`` without ``logging`` and ``resume`` (they change no result)."""
    relevant = {k: v for k, v in config.items() if k not in ("logging", "resume")}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()[:16]


def scaffold_fingerprint(network: Network) -> str:
    """A hash of the wiring, so a checkpoint is never restored into a different network."""
    h = hashlib.sha256()
    for name, proj in network.projections.items():
        h.update(name.encode())
        h.update(proj.row_ptr.cpu().numpy().tobytes())
        h.update(proj.post_index.cpu().numpy().tobytes())
    return h.hexdigest()[:16]


class CheckpointWriter:
    """Writes ``checkpoint_<step>.pt`` into ``directory`` every ``every_steps`` model steps (and on demand).

    A failed write (read-only folder, full disk) is logged and counted in ``failures``; the run goes on and the
    previous checkpoints stay."""

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
        self.config_fingerprint = config_fingerprint(config)
        self.written: list[Path] = sorted(self.directory.glob("checkpoint_*.pt"))
        self.next_step = network.step_count + self.every_steps
        self.failures: list[str] = []

    def due(self, step: int) -> bool:
        return step >= self.next_step

    def save(self, simulation_state: dict[str, Any]) -> Path | None:
        """Write a checkpoint of the current state; returns its path, or None when the write failed (logged)."""
        step = self.network.step_count
        while self.next_step <= step:
            self.next_step += self.every_steps
        payload = {
            "format": FORMAT,
            "code_version": __version__,
            "config": self.config,
            "config_fingerprint": self.config_fingerprint,
            "step": step,
            "time_ms": step * self.network.dt_ms,
            "fingerprint": self.fingerprint,
            "network": self.network.checkpoint_state(),
            "generator": self.generator.get_state(),
            "simulation": simulation_state,
        }
        path = self.directory / f"checkpoint_{step:012d}.pt"
        tmp = path.with_suffix(".pt.tmp")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            torch.save(payload, tmp)
            tmp.replace(path)
        except (OSError, RuntimeError) as exc:  # torch reports a failed write as RuntimeError
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            message = f"checkpoint at t = {step * self.network.dt_ms:.1f} ms not written ({exc}); the run goes on"
            log.error("%s", message)
            self.failures.append(message)
            return None
        self.written = [p for p in self.written if p != path] + [path]
        for old in self.written[: -self.keep]:
            old.unlink(missing_ok=True)
        self.written = self.written[-self.keep :]
        return path

    @property
    def last(self) -> Path | None:
        return self.written[-1] if self.written else None


def latest_checkpoint(path: Path) -> Path:
    """``path`` itself if it is a file, else the newest checkpoint inside the folder (or its checkpoints/)."""
    path = Path(path)
    if path.is_file():
        return path
    for folder in (path, path / "checkpoints"):
        found = sorted(folder.glob("checkpoint_*.pt"))
        if found:
            return found[-1]
    raise CheckpointError(f"no checkpoint_*.pt in {path} or {path / 'checkpoints'}")


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read and check a checkpoint (``weights_only=True``: plain data only); CheckpointError if it is not one."""
    file = latest_checkpoint(path)
    try:
        payload = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{file} holds objects other than plain tensors and data, refused ({first})") from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise CheckpointError(f"{file} is not a readable checkpoint ({type(exc).__name__}: {exc})") from None
    check_payload(payload, file)
    return payload


def check_payload(payload: Any, file: Path | str = "checkpoint") -> None:
    """Format, code version and config fingerprint of a loaded checkpoint."""
    if not isinstance(payload, dict) or any(k not in payload for k in REQUIRED):
        keys = sorted(payload) if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(f"{file} is not a torchsnn checkpoint (needs {', '.join(REQUIRED)}; has {keys})")
    if payload["format"] != FORMAT:
        raise CheckpointError(f"{file} has checkpoint format {payload['format']!r}; this code reads format {FORMAT}")
    if payload["code_version"] != __version__:
        raise CheckpointError(
            f"{file} was written by torchsnn {payload['code_version']!r}; this is {__version__}: resume with that "
            "version, or start a new run"
        )
    if (
        not isinstance(payload["config"], dict)
        or config_fingerprint(payload["config"]) != payload["config_fingerprint"]
    ):
        raise CheckpointError(f"{file}: the stored config does not match its fingerprint (edited or corrupted)")


def restore(payload: dict[str, Any], network: Network, generator: torch.Generator) -> None:
    """Put the checkpointed state into a freshly built network of the same config and seed.

    Refuses (CheckpointError) a different wiring and a state whose buffers differ from the network's (a missing
    buffer would otherwise silently keep its fresh random value)."""
    if scaffold_fingerprint(network) != payload["fingerprint"]:
        raise CheckpointError(
            "the checkpoint belongs to a different network (scaffold fingerprint differs): resume with "
            "the config stored in the checkpoint"
        )
    state = payload.get("network")
    if not isinstance(state, dict) or not isinstance(state.get("buffers"), dict):
        raise CheckpointError("the checkpoint holds no network state")
    structure = {"row_ptr", "post_index", "pre_index_long", "post_index_long"}
    expected = {k for k in network.state_dict() if k.rpartition(".")[2] not in structure}
    missing, extra = sorted(expected - set(state["buffers"])), sorted(set(state["buffers"]) - expected)
    if missing or extra:
        raise CheckpointError(
            f"the checkpoint's network state does not fit this network (missing: {missing or 'none'}; "
            f"unknown: {extra or 'none'})"
        )
    network.restore_state(state)
    generator.set_state(payload["generator"])


def extend_checkpoint(payload: dict[str, Any], duration_ms: float) -> None:
    """Make a checkpoint's monitor state fit a longer run of ``duration_ms`` (resume of a finished run with a longer
    ``simulation.duration_ms``). The one buffer sized by the run's length is the population-rate monitor's
    per-step counts, shape (steps of the run, B): zero-padded to the new number of steps (the steps not yet
    simulated); everything else (spike statistics, raster, synchrony, weights) accumulates and needs nothing."""
    dt = float(payload["config"]["simulation"]["dt_ms"])
    steps = round(float(duration_ms) / dt)
    counts = ((payload.get("simulation") or {}).get("monitors") or {}).get("rate", {}).get("counts", {})
    for name, c in counts.items():
        if not isinstance(c, torch.Tensor) or c.ndim != 2 or c.shape[0] > steps:
            raise CheckpointError(f"the checkpoint's population-rate counts of {name} do not fit {duration_ms} ms")
        counts[name] = torch.cat([c, c.new_zeros(steps - c.shape[0], c.shape[1])])
