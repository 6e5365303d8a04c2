"""Run a network for a given model time with monitors, a progress bar and periodic callbacks."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from torchsnn.checkpoint import CheckpointWriter
from torchsnn.errors import SimulationAbortedError
from torchsnn.monitors import Monitor, PopulationRateMonitor, RasterMonitor, SpikeStatsMonitor, SynchronyMonitor
from torchsnn.monitors.health import HealthMonitor
from torchsnn.network import Network
from torchsnn.validation import check_non_negative, check_positive, require


@dataclass
class SimulationResult:
    """Everything a run measured, on the CPU. Rates are per neuron over the window [transient, duration)."""

    dt_ms: float
    duration_ms: float
    transient_ms: float
    batch: int
    spike_stats: dict[str, dict[str, torch.Tensor]]
    population_rate: PopulationRateMonitor
    raster: dict[str, dict[str, torch.Tensor]]
    synchrony: dict[str, dict[str, Any]]
    wall_time_s: float
    extra: dict[str, Any] = field(default_factory=dict)
    #: the compute backend that ran it (``Backend.describe``: name, device, ring, graph replay, notes)
    backend: dict[str, Any] = field(default_factory=dict)

    def rates_hz(self, population: str) -> torch.Tensor:
        """(B, N) rates over the window."""
        return self.spike_stats[population]["rates_hz"]

    def summary(self) -> dict[str, dict[str, float]]:
        """Per population, pooled over replicas: mean/std/median rate, mean ISI CV, size, synchrony chi."""
        out = {}
        for name, st in self.spike_stats.items():
            rates = st["rates_hz"].flatten().numpy()
            cv = st["cv_isi"].flatten().numpy()
            cv = cv[np.isfinite(cv)]
            out[name] = {
                "rate_mean_hz": float(rates.mean()),
                "rate_std_hz": float(rates.std()),
                "rate_median_hz": float(np.median(rates)),
                "cv_isi_mean": float(cv.mean()) if cv.size else float("nan"),
                "n_neurons": int(st["rates_hz"].shape[-1]),
                "replicas": self.batch,
                "chi": float(self.synchrony[name]["chi"].mean()) if name in self.synchrony else float("nan"),
                "fraction_silent": float((st["counts"].flatten() == 0).double().mean()),
            }
        return out


class SimulationInterruptedError(RuntimeError):
    """The run was asked to stop (SIGINT / SIGTERM): it finished its block and wrote a checkpoint."""

    def __init__(self, message: str, checkpoint: Path | None, partial: SimulationResult) -> None:
        super().__init__(message)
        self.checkpoint = checkpoint
        self.partial = partial


def simulate(
    network: Network,
    *,
    duration_ms: float,
    transient_ms: float = 0.0,
    generator: torch.Generator | None = None,
    raster_neurons: int = 0,
    raster_ms: float = 1000.0,
    voltage_every_ms: float = 1.0,
    progress: bool = True,
    callbacks: Sequence[Callable[[int, PopulationRateMonitor], None]] = (),
    callback_every_ms: float = 100.0,
    extra_monitors: Sequence[Monitor] = (),
    health_every_ms: float = 0.0,
    max_rate_fraction: float = 0.5,
    checkpoints: CheckpointWriter | None = None,
    resume: dict[str, Any] | None = None,
    stop_requested: Callable[[], bool] | None = None,
) -> SimulationResult:
    """Advance ``network`` (already ``reset``) by ``duration_ms`` of model time.

    Args:
        duration_ms: total model time, transient included.
        transient_ms: start of the measurement window.
        generator: torch.Generator on the network's device (drive noise).
        raster_neurons, raster_ms: record spike times of that many neurons per population for that long.
        voltage_every_ms: sampling interval of voltages for the synchrony measure (0 disables it).
        progress: show a progress bar with model time and speed.
        callbacks: called every ``callback_every_ms`` of model time (and at the end) with (step, rate monitor).
        extra_monitors: further monitors that read every block.
        health_every_ms: run the health checks (non-finite state, runaway, weights out of bounds) this often
            (0: never); a failed check raises SimulationAbortedError carrying the partial result.
        checkpoints: writes a checkpoint whenever due, and when a stop is requested.
        resume: the ``simulation`` part of a checkpoint (the network and generator already restored): the run
            continues as if it had never stopped.
        stop_requested: polled after every block; when it returns True the run checkpoints and raises
            SimulationInterruptedError.
    """
    check_positive("duration_ms", duration_ms)
    check_non_negative("transient_ms", transient_ms)
    require(transient_ms < duration_ms, "transient_ms", transient_ms, f"must be below duration_ms ({duration_ms})")
    dt = network.dt_ms
    total = round(duration_ms / dt)
    start_step = int(resume["start_step"]) if resume else network.step_count
    window_start = start_step + round(transient_ms / dt)
    voltage_every = max(1, round(voltage_every_ms / dt)) if voltage_every_ms > 0 else 0
    named: dict[str, Monitor] = {
        "stats": SpikeStatsMonitor(window_start, dt),
        "rate": PopulationRateMonitor(window_start),
        "raster": RasterMonitor(window_start, raster_neurons, round(raster_ms / dt)),
    }
    if voltage_every:
        named["sync"] = SynchronyMonitor(window_start, voltage_every)
    if health_every_ms > 0:
        named["health"] = HealthMonitor(round(health_every_ms / dt), max_rate_fraction)
    named.update({f"extra{i}": mon for i, mon in enumerate(extra_monitors)})
    end = start_step + total
    network.sinks.clear()  # a fused backend's kernels update the buffers this run's monitors register
    for mon in named.values():
        mon.setup(network, start_step, end)
    callback_every = max(1, round(callback_every_ms / dt))
    next_callback = start_step + callback_every
    if resume:
        for key, mon in named.items():
            mon.load_state_dict(resume["monitors"][key], network.device)
        for cb, state in zip(callbacks, resume["callbacks"], strict=True):
            if state is not None:
                cb.load_state_dict(state)
        next_callback = int(resume["next_callback"])

    def state() -> dict[str, Any]:
        return {
            "start_step": start_step,
            "next_callback": next_callback,
            "monitors": {key: mon.state_dict() for key, mon in named.items()},
            "callbacks": [cb.state_dict() if hasattr(cb, "state_dict") else None for cb in callbacks],
        }

    def result(wall: float) -> SimulationResult:
        network.select_backend().check(network)
        return SimulationResult(
            dt_ms=dt,
            duration_ms=(network.step_count - start_step) * dt,
            transient_ms=transient_ms,
            batch=network.batch,
            spike_stats=named["stats"].result(),
            population_rate=named["rate"],
            raster=named["raster"].result(),
            synchrony=named["sync"].result() if "sync" in named else {},
            wall_time_s=wall,
            backend=network.select_backend().describe(),
        )

    interactive = sys.stderr.isatty()
    bar = tqdm(
        total=round(duration_ms),
        initial=round((network.step_count - start_step) * dt),
        unit="ms",
        desc="simulating (model time)",
        disable=not progress,
        dynamic_ncols=True,
        leave=False,
        mininterval=0.2 if interactive else 30.0,
    )
    wall0 = time.perf_counter()
    first = network.step_count
    try:
        while network.step_count < end:
            out = network.run_block(generator, end - network.step_count, voltage_every)
            for mon in named.values():
                mon.on_block(out)
            done_ms = (network.step_count - start_step) * dt
            bar.update(round(done_ms) - bar.n)
            speed = (network.step_count - first) * dt * 1e-3 / max(time.perf_counter() - wall0, 1e-9)
            bar.set_postfix_str(f"{speed:.3g} model s / wall s", refresh=False)
            if network.step_count >= next_callback or network.step_count >= end:
                for cb in callbacks:
                    cb(network.step_count, named["rate"])
                next_callback += callback_every
            if checkpoints is not None and checkpoints.due(network.step_count) and network.step_count < end:
                checkpoints.save(state())
            if stop_requested is not None and stop_requested() and network.step_count < end:
                path = checkpoints.save(state()) if checkpoints is not None else None
                raise SimulationInterruptedError(
                    f"stopped on request at t = {network.step_count * dt:.1f} ms",
                    path,
                    result(time.perf_counter() - wall0),
                )
    except SimulationAbortedError as err:
        err.partial = result(time.perf_counter() - wall0)
        raise
    finally:
        bar.close()
        network.sinks.clear()
    return result(time.perf_counter() - wall0)
