"""Shared pieces of the harness: machine description, config composition, memory probes, the timed run."""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import platform
import resource
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "conf"
WARMUP_MS = 100.0  # excluded from every timing (performance.md: 0.1 s warm-up)


# ------------------------------------------------------------------------------------------------ options
@dataclass
class Options:
    duration_ms: float = 1000.0
    warmup_ms: float = WARMUP_MS
    device: str = "cpu"
    peers: tuple[str, ...] = ()
    threads: int = 1
    repeats: int = 3
    batch_sizes: tuple[int, ...] | None = None
    scale_sizes: tuple[int, ...] | None = None
    scale_on_cpu: bool = False
    reference: bool = True
    seed: int | None = None
    workdir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()))

    @property
    def cuda(self) -> bool:
        return self.device.startswith("cuda")


# ------------------------------------------------------------------------------------------------ machine
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_revision() -> str | None:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
        return rev + ("-dirty" if dirty.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def machine_info(device: str) -> dict[str, Any]:
    import numba

    info: dict[str, Any] = {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numba": numba.__version__,
        "numpy": np.__version__,
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "git": git_revision(),
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
        info["cuda"] = torch.version.cuda
    return info


# ------------------------------------------------------------------------------------------------ config
def compose(overrides: Sequence[str]) -> dict[str, Any]:
    """The run config composed from conf/ with Hydra's compose API, as a plain dict."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = hydra_compose("config", overrides=list(overrides))
    return OmegaConf.to_container(cfg, resolve=True)


def experiment_exists(name: str) -> bool:
    return (CONF_DIR / "experiment" / f"{name}.yaml").exists()


# ------------------------------------------------------------------------------------------------ memory
def _proc_status_kb(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def trim_heap() -> None:
    """Collect garbage and hand free heap memory back to the OS (glibc ``malloc_trim``), so that RSS figures
    measure live memory rather than what the allocator kept from earlier work in this process."""
    import ctypes
    import gc

    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class MemoryProbe:
    """Peak memory of a phase.

    CPU: peak resident set size of this process during the phase (VmHWM after resetting it through
    /proc/self/clear_refs; where that is unavailable, ``getrusage`` max RSS, which cannot be reset, so only
    increases over the previous peak show) minus the RSS ``baseline_mb`` given (taken before the network was
    built), i.e. what the network and the run hold at their peak. The heap is trimmed before each reading of the
    baseline and each reset of the peak, so memory the allocator kept from earlier phases is not counted.
    CUDA: ``torch.cuda.max_memory_allocated`` (reset at the start of the phase) minus the allocation
    ``baseline_mb``.
    """

    def __init__(self, device: str) -> None:
        self.cuda = device.startswith("cuda")
        self.device = device

    def current_mb(self) -> float:
        if self.cuda:
            return torch.cuda.memory_allocated(self.device) / 2**20
        trim_heap()
        kb = _proc_status_kb("VmRSS")
        return kb / 1024 if kb is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def start(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            return
        trim_heap()
        with contextlib.suppress(OSError):
            Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS

    def peak_mb(self) -> float:
        if self.cuda:
            torch.cuda.synchronize(self.device)
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        kb = _proc_status_kb("VmHWM")
        return kb / 1024 if kb is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(torch.device(device))


# ------------------------------------------------------------------------------------------------ runs
def out_degrees(network) -> dict[str, np.ndarray]:
    """Out-degree of every neuron, summed over the projections leaving its population (numpy int64)."""
    deg = {name: np.zeros(pop.size, dtype=np.int64) for name, pop in network.populations.items()}
    for proj in network.projections.values():
        deg[proj.pre] += (proj.row_ptr[1:] - proj.row_ptr[:-1]).cpu().numpy()
    return deg


def n_synapses(network) -> int:
    return int(sum(p.n_edges for p in network.projections.values()))


def dynamics_generator(cfg: dict[str, Any], device: torch.device | str) -> torch.Generator:
    """The generator ``build_network`` seeds from the run's seed (so a reset reproduces the built state)."""
    from torchsnn.config.builder import Seeds

    gen = torch.Generator(device=device)
    gen.manual_seed(Seeds.from_seed(int(cfg["seed"])).dynamics)
    return gen


@dataclass
class TimedRun:
    """Timed segments of one run: ``repeats`` consecutive stretches of ``model_s`` model time after the warm-up.
    Headline figures are medians over the segments; rates are pooled."""

    walls_s: list[float]
    warmup_s: float
    model_s: float
    batch: int
    counts: list[dict[str, np.ndarray]]  # per segment: (B, N) spikes of every neuron
    events: list[int]  # per segment: synaptic events
    peak_mem_mb: float

    @property
    def wall_s(self) -> float:
        return float(np.median(self.walls_s))

    @property
    def rtf(self) -> float:
        return self.wall_s / self.model_s

    @property
    def events_per_s_each(self) -> list[float]:
        return [e / w for e, w in zip(self.events, self.walls_s, strict=True)]

    @property
    def events_per_s(self) -> float:
        return float(np.median(self.events_per_s_each))

    def total_counts(self) -> dict[str, np.ndarray]:
        return {name: sum(seg[name] for seg in self.counts) for name in self.counts[0]}

    def rates_hz(self) -> dict[str, float]:
        t = self.model_s * len(self.counts)
        return {name: float(c.mean() / t) for name, c in self.total_counts().items()}

    def rate_all_hz(self) -> float:
        total = self.total_counts()
        spikes = sum(int(c.sum()) for c in total.values())
        n = sum(c.size for c in total.values())
        return spikes / n / (self.model_s * len(self.counts))


def timed_run(network, cfg: dict[str, Any], opts: Options, batch: int, baseline_mb: float) -> TimedRun:
    """Reset ``network`` to ``batch`` replicas from the config's seed, run the warm-up (not timed), then time
    ``opts.repeats`` consecutive segments of ``opts.duration_ms`` model time. Monitors: spike counts / ISI
    statistics and population rate (no voltage sampling, no raster), i.e. what the peers record."""
    from torchsnn.simulation import simulate

    device = str(network.device)
    probe = MemoryProbe(device)
    gen = dynamics_generator(cfg, network.device)
    network.reset(batch, gen)
    probe.start()
    kw = {"generator": gen, "progress": False, "voltage_every_ms": 0.0, "raster_neurons": 0}
    t0 = time.perf_counter()
    simulate(network, duration_ms=opts.warmup_ms, **kw)
    sync(device)
    warmup_s = time.perf_counter() - t0
    deg = out_degrees(network)
    walls, counts, events = [], [], []
    for _ in range(max(1, opts.repeats)):
        t1 = time.perf_counter()
        result = simulate(network, duration_ms=opts.duration_ms, transient_ms=0.0, **kw)
        sync(device)
        walls.append(time.perf_counter() - t1)
        seg = {name: st["counts"].numpy().astype(np.int64) for name, st in result.spike_stats.items()}
        counts.append(seg)
        events.append(int(sum((seg[name] * deg[name][None, :]).sum() for name in seg)))
    peak = probe.peak_mb() - baseline_mb
    return TimedRun(walls, warmup_s, opts.duration_ms * 1e-3, batch, counts, events, peak)


def prime_cpu_kernels() -> None:
    """Load (or compile, the first time) the numba kernels on a tiny network, so that no row's build, warm-up or
    memory figure carries the one-off cost of loading them."""
    from torchsnn.config import build_network
    from torchsnn.simulation import simulate

    small = [
        "+experiment=brunel_ai",
        "simulation.device=cpu",
        "network.populations.E.size=80",
        "network.populations.I.size=20",
        "network.projections.EE.connectivity.indegree=8",
        "network.projections.IE.connectivity.indegree=8",
        "network.projections.EI.connectivity.indegree=2",
        "network.projections.II.connectivity.indegree=2",
    ]
    built = build_network(compose(small))
    simulate(built.network, duration_ms=5.0, generator=built.generator, progress=False)
    import torch

    from torchsnn.scaffold import ConfigurationModel, GammaDegree

    ConfigurationModel(GammaDegree(8, 0.5)).connect(100, 100, True, torch.Generator().manual_seed(0))  # its kernels


def row(scenario: str, variant: str, **fields: Any) -> dict[str, Any]:
    return {"scenario": scenario, "variant": variant, **fields}


def run_row(scenario: str, variant: str, run: TimedRun, **extra: Any) -> dict[str, Any]:
    return row(
        scenario,
        variant,
        batch=run.batch,
        wall_s=run.wall_s,
        warmup_s=run.warmup_s,
        model_s=run.model_s,
        rtf=run.rtf,
        repeats=len(run.walls_s),
        walls_s=run.walls_s,
        events_per_s_each=run.events_per_s_each,
        synaptic_events=int(np.median(run.events)),
        events_per_s=run.events_per_s,
        peak_mem_mb=run.peak_mem_mb,
        rate_mean_hz=run.rates_hz(),
        rate_mean_all_hz=run.rate_all_hz(),
        **extra,
    )


def skipped(scenario: str, reason: str) -> dict[str, Any]:
    return {"scenario": scenario, "variant": "-", "skipped": reason}
