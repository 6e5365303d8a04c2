"""How much memory a configuration needs, estimated before anything is built, and a clear refusal when the
device does not have it (instead of an out-of-memory crash mid-run)."""

from __future__ import annotations

import os
from collections.abc import Mapping
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


def estimate_bytes(cfg: Mapping[str, Any]) -> dict[str, float]:
    """Device bytes of the simulation by part (and ``total``), from sizes, degrees, replicas and run length."""
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
    """The estimate; raises ConfigError (estimate vs available) when it exceeds ``headroom`` of the free memory.
    On the CPU, wiring needs about 40 bytes per edge more while it runs (sorting int64 edge lists)."""
    parts = estimate_bytes(cfg)
    need = parts["total"] + (40.0 * sum(expected_edges(cfg).values()) if device.type == "cpu" else 0.0)
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
