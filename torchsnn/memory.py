"""How much memory a configuration needs, estimated before anything is built, and a clear refusal when the
device does not have it (instead of an out-of-memory crash mid-run).

:func:`estimate_bytes` is the network's own memory (its parts add up to the total). What a run's process holds at
its peak is that plus what the process already holds when the run starts (the interpreter, torch and its
libraries: about 0.4 GB with torch's CPU build, 0.7 GB with a CUDA build, on a machine without a GPU):
:class:`RunMemory` measures that baseline, prints the sum as the peak-RSS estimate and records the measured peak
(``VmHWM``, reset at the start) next to it in ``summary.json`` (``run.memory``)."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from torchsnn.errors import ConfigError

GIB = 2**30


def expected_edges(cfg: Mapping[str, Any]) -> dict[str, float]:
    """Mean number of edges of every projection: n_post x mean in-degree (or n_pre n_post p)."""
    pops = {n: int(p["size"]) for n, p in cfg["network"]["populations"].items()}
    edges = {}
    for name, p in (cfg["network"].get("projections") or {}).items():
        conn = p["connectivity"]
        n_post, n_pre = pops[p["post"]], pops[p["pre"]]
        if "indegree" in conn:
            edges[name] = n_post * float(conn["indegree"])
        elif "p" in conn:
            edges[name] = n_post * n_pre * float(conn["p"])
        else:
            edges[name] = n_post * float((conn.get("in_degree") or {}).get("mean", 0.0))
    return edges


def wiring_peak_bytes(cfg: Mapping[str, Any], device_type: str = "cpu") -> float:
    """Peak bytes while the scaffold is wired on ``device_type`` (torchsnn/scaffold/edges.py), blocks in order:

        peak = max over blocks b of [ sum_{a before b} (4 E_a + 8 (n_pre,a + 1)) + transient_b ]

    transient of a block with E edges and local keys of k bytes (4 when n_pre * chunk width < 2^31, else 8):
    fixed in-degree / pairwise: k E (sorted keys) + 4 E (int32 targets) + 8 (n_pre + 1) (row_ptr);
    configuration model: 16 E while the pre stubs are shuffled (int64 input and output), then 8 E + k E;
    dense blocks (complement): n_pre n_post (mask) + 20 E; each plus the work arrays of one chunk (48 B per
    edge of a chunk of CHUNK_EDGES[device]). On the CPU with the compiled kernels on (scaffold/host_wiring.py)
    a sparse block needs 4 E (int32 slots) + 4 E (targets) + 8 (n_pre + 1) (row_ptr) + 16 n_pre (counts,
    marks), and no chunk work arrays."""
    from torchsnn.kernels import cpu_kernels_enabled
    from torchsnn.scaffold.edges import CHUNK_EDGES

    chunk = CHUNK_EDGES.get(device_type, CHUNK_EDGES["cuda"])
    host_kernels = device_type == "cpu" and cpu_kernels_enabled()
    pops = {n: int(p["size"]) for n, p in cfg["network"]["populations"].items()}
    edges = expected_edges(cfg)
    done, peak = 0.0, 0.0
    for name, p in (cfg["network"].get("projections") or {}).items():
        n_pre, n_post, e = pops[p["pre"]], pops[p["post"]], edges[name]
        target = str(p["connectivity"].get("_target_", ""))
        width = min(n_post, max(1, int(chunk // max(e / max(n_post, 1), 1.0))))
        key = 4 if n_pre * width < 2**31 else 8
        csr = 4 * e + 8 * (n_pre + 1)
        dense = e > 0.5 * n_pre * n_post and not target.endswith("ConfigurationModel")
        work = 48 * min(chunk, e)
        if host_kernels and not dense and n_pre < 2**31 - 1:
            transient, work = 8 * e + 24 * n_pre + 8, 0.0
        elif target.endswith("ConfigurationModel"):
            transient = max(16 * e, (8 + key) * e, (key + 4) * e) + 8 * (n_pre + 1)
        elif dense:
            transient = n_pre * n_post + 20 * e + 8 * (n_pre + 1)
        else:
            transient = key * e + csr
        peak = max(peak, done + transient + work)
        done += csr
    return peak


def estimate_bytes(cfg: Mapping[str, Any], device_type: str | None = None) -> dict[str, float]:
    """Device bytes by part (and ``total``), from sizes, degrees, replicas and run length. The parts add up to
    the total: the run's own parts, then the wiring's peak beyond them (the wiring's work arrays are freed
    before the neuron state, rings and monitors are allocated, so total = max(wiring peak, run))."""
    if device_type is None:
        spec = str(cfg["simulation"].get("device", "auto"))
        device_type = ("cuda" if torch.cuda.is_available() else "cpu") if spec == "auto" else torch.device(spec).type
    sim = cfg["simulation"]
    batch = int(sim.get("replicas", 1))
    dt = float(sim["dt_ms"])
    pops = {n: int(p["size"]) for n, p in cfg["network"]["populations"].items()}
    n_total = sum(pops.values())
    projections = cfg["network"].get("projections") or {}
    delays = [round(float(p["delay_ms"]) / dt) for p in projections.values()] or [1]
    block, slots = max(1, min(delays)), max(delays)
    steps = round(float(sim["duration_ms"]) / dt)
    plastic = set((cfg.get("plasticity") or {}).get("projections") or [])
    edges = expected_edges(cfg)
    e_static = sum(e for n, e in edges.items() if n not in plastic)
    e_plastic = sum(e for n, e in edges.items() if n in plastic)
    parts = {
        "scaffold (CSR, int32 targets)": 4 * (e_static + e_plastic) + 8 * n_total * max(len(projections), 1),
        "plastic weights and edge indices": e_plastic * (4 * batch + 16),
        "neuron state and ring buffers": n_total * batch * (8 + 8 * slots),
        "block work (drive, spikes)": n_total * batch * block * (8 + 4 + 1),
        "monitors (spike statistics, synchrony)": n_total * batch * (4 + 8 + 8 + 8 + 4 + 16),
        "population rate per step": steps * batch * 4 * len(pops),
        "traces": n_total * batch * 4 if plastic else 0.0,
    }
    run = sum(parts.values())
    parts["wiring (peak beyond the run's parts)"] = max(0.0, wiring_peak_bytes(cfg, device_type) - run)
    parts["total"] = sum(parts.values())
    return parts


def available_bytes(device: torch.device) -> float:
    """Free memory of ``device``: CUDA's free memory, or the host's available memory."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return float(free)
    try:
        with open("/proc/meminfo") as fh:
            info = dict(line.split(":", 1) for line in fh)
        return float(info["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError):
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))


def check_memory(cfg: Mapping[str, Any], device: torch.device, headroom: float = 0.9) -> dict[str, float]:
    """The estimate (wiring included); raises ConfigError (estimate by part vs available) when it exceeds
    ``headroom`` of the free memory."""
    parts = estimate_bytes(cfg, device.type)
    need = parts["total"]
    free = available_bytes(device)
    if need > headroom * free:
        raise ConfigError(
            "network",
            f"{sum(int(p['size']) for p in cfg['network']['populations'].values())} "
            f"neurons x {int(cfg['simulation'].get('replicas', 1))} replicas",
            f"needs about {need / GIB:.2f} GiB on {device} (estimate: "
            + ", ".join(f"{k} {v / GIB:.2f}" for k, v in parts.items() if k != "total" and v > 0)
            + f" GiB) but {free / GIB:.2f} GiB are free: fewer replicas, a smaller network, a shorter "
            "run, or a device with more memory",
        )
    return parts


log = logging.getLogger("torchsnn")


def _status_bytes(key: str) -> float | None:
    """``VmRSS`` / ``VmHWM`` of this process from /proc/self/status (None where there is none)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return float(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _trim_heap() -> None:
    """Free heap memory back to the OS (glibc ``malloc_trim``): the baseline is what the process really holds."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _reset_peak_rss() -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux /proc/self/clear_refs, value 5); False where not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class RunMemory:
    """The memory of one run: the estimate (:func:`check_memory`, refused when too large) plus the process's
    baseline, and the measured peak.

    On the CPU: baseline = this process's RSS when the run starts (heap trimmed), estimate of the peak RSS =
    baseline + ``estimate_bytes`` total, measured = the peak RSS (``VmHWM``) over the network's phases (wiring and
    simulation; :meth:`pause` / :meth:`resume` leave out the theory solve in between, which the estimate does not
    cover). On CUDA: the device's ``memory_allocated`` and ``max_memory_allocated`` instead of RSS."""

    def __init__(self, cfg: Mapping[str, Any], device: torch.device) -> None:
        self.device = device
        self.parts = check_memory(cfg, device)
        self.cuda = device.type == "cuda"
        self.peaks: list[float] = []
        if self.cuda:
            torch.cuda.synchronize(device)
            self.baseline = float(torch.cuda.memory_allocated(device))
        else:
            _trim_heap()
            self.baseline = _status_bytes("VmRSS") or 0.0
        self.resume()
        what = "device memory" if self.cuda else "peak RSS"
        log.info(
            "memory estimate: %.2f GiB on %s (%s: %.2f GiB for the network + %.2f GiB this process holds already)",
            self.estimate / GIB,
            device,
            what,
            self.parts["total"] / GIB,
            self.baseline / GIB,
        )

    @property
    def estimate(self) -> float:
        return self.baseline + self.parts["total"]

    def _peak(self) -> float | None:
        if self.cuda:
            torch.cuda.synchronize(self.device)
            return float(torch.cuda.max_memory_allocated(self.device))
        return _status_bytes("VmHWM") if self._resettable else None

    def pause(self) -> None:
        """Close a measured phase (its peak is kept)."""
        peak = self._peak()
        if peak is not None:
            self.peaks.append(peak)

    def resume(self) -> None:
        """Open a measured phase."""
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(self.device)
            self._resettable = True
        else:
            self._resettable = _reset_peak_rss()

    def record(self) -> dict[str, Any]:
        """``summary['run']['memory']``: estimate by part, baseline and (after :meth:`pause`) the measured peak."""
        unit = "device_gib" if self.cuda else "rss_gib"
        out: dict[str, Any] = {
            "network_estimate_gib": self.parts["total"] / GIB,
            "parts_gib": {k: v / GIB for k, v in self.parts.items() if k != "total"},
            f"baseline_{unit}": self.baseline / GIB,
            f"estimate_peak_{unit}": self.estimate / GIB,
        }
        if self.peaks:
            peak = max(self.peaks)
            out[f"measured_peak_{unit}"] = peak / GIB
            out["estimate_error"] = self.estimate / peak - 1.0
            out["network_measured_gib"] = (peak - self.baseline) / GIB
            out[f"phase_peaks_{unit}"] = [p / GIB for p in self.peaks]  # wiring, simulation
        return out
