"""Run a network for a given model time with monitors, a progress bar and periodic callbacks."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from torchsnn.monitors import Monitor, PopulationRateMonitor, RasterMonitor, SpikeStatsMonitor, SynchronyMonitor
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
    """
    check_positive("duration_ms", duration_ms)
    check_non_negative("transient_ms", transient_ms)
    require(transient_ms < duration_ms, "transient_ms", transient_ms, f"must be below duration_ms ({duration_ms})")
    dt = network.dt_ms
    total = round(duration_ms / dt)
    window_start = round(transient_ms / dt)
    voltage_every = max(1, round(voltage_every_ms / dt)) if voltage_every_ms > 0 else 0
    stats = SpikeStatsMonitor(window_start, dt)
    pop_rate = PopulationRateMonitor(window_start)
    raster = RasterMonitor(window_start, raster_neurons, round(raster_ms / dt))
    monitors: list[Monitor] = [stats, pop_rate, raster, *extra_monitors]
    sync = SynchronyMonitor(window_start, voltage_every) if voltage_every else None
    if sync is not None:
        monitors.append(sync)
    start_step = network.step_count
    for mon in monitors:
        mon.window_start_step += start_step
        mon.setup(network, start_step + total)
    callback_every = max(1, round(callback_every_ms / dt))
    next_callback = start_step + callback_every
    interactive = sys.stderr.isatty()
    bar = tqdm(
        total=round(duration_ms),
        unit="ms",
        desc="simulating (model time)",
        disable=not progress,
        dynamic_ncols=True,
        leave=False,
        mininterval=0.2 if interactive else 30.0,
    )
    wall0 = time.perf_counter()
    end = start_step + total
    while network.step_count < end:
        out = network.run_block(generator, end - network.step_count, voltage_every)
        for mon in monitors:
            mon.on_block(out)
        done_ms = (network.step_count - start_step) * dt
        bar.update(round(done_ms) - bar.n)
        elapsed = time.perf_counter() - wall0
        bar.set_postfix_str(f"{done_ms * 1e-3 / max(elapsed, 1e-9):.3g} model s / wall s", refresh=False)
        if network.step_count >= next_callback or network.step_count >= end:
            for cb in callbacks:
                cb(network.step_count, pop_rate)
            next_callback += callback_every
    bar.close()
    wall = time.perf_counter() - wall0
    return SimulationResult(
        dt_ms=dt,
        duration_ms=duration_ms,
        transient_ms=transient_ms,
        batch=network.batch,
        spike_stats=stats.result(),
        population_rate=pop_rate,
        raster=raster.result(),
        synchrony=sync.result() if sync is not None else {},
        wall_time_s=wall,
    )
