"""The summary of a plastic run: simulated weight distributions, measured convergence, and the distribution of
alpha = nu / r_p (how many trace time constants a neuron's rate spans), per replica where replicas differ in r_p."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from torchsnn.monitors.weights import relative_change

if TYPE_CHECKING:
    from torchsnn.simulation import SimulationResult

log = logging.getLogger("torchsnn")


def replica_r_p(cfg: dict[str, Any], batch: int) -> np.ndarray:
    """The trace rate of each replica (B,)."""
    r_p = (cfg.get("plasticity") or {}).get("r_p_hz", 1.0)
    return np.asarray(r_p, dtype=np.float64) if isinstance(r_p, (list, tuple)) else np.full(batch, float(r_p))


def alpha_summary(alpha: np.ndarray, r_p: Any) -> dict[str, Any]:
    return {
        "r_p_hz": r_p,
        "alpha_mean": float(alpha.mean()),
        "alpha_median": float(np.median(alpha)),
        "alpha_q10": float(np.quantile(alpha, 0.1)),
        "alpha_q90": float(np.quantile(alpha, 0.9)),
    }


def summarise_plasticity(cfg: dict[str, Any], summary: dict[str, Any], result: SimulationResult) -> None:
    """Simulated weight distributions, measured convergence and the distribution of alpha = nu / r_p."""
    w = result.extra["weights"]
    r_p = replica_r_p(cfg, result.batch)
    summary["simulation_weights"] = {
        name: {
            "weight_mean_mv": float(v.mean()),
            "weight_std_mv": float(v.std()),
            "weight_median_mv": float(v.median()),
            "n_edges": int(v.shape[-1]),
        }
        for name, v in w["final_weights_mv"].items()
    }
    start = result.transient_ms
    convergence = {
        f"{name}_weight_mean_rel_change": relative_change(series, 1, start) for name, series in w["series"].items()
    }
    for name in result.spike_stats:
        counts = result.population_rate.counts[name].sum(-1).double()
        first = round(start / result.dt_ms)
        window = counts[first:]
        half = window.numel() // 2
        a, b = float(window[:half].mean()), float(window[half:].mean())
        convergence[f"{name}_rate_rel_change_between_halves"] = abs(b - a) / max(b, 1e-12)
    for name, est in w["final_rate_estimates_hz"].items():
        counted = result.rates_hz(name)
        active = counted > 0
        rel = ((est - counted).abs()[active] / counted[active]).mean()
        convergence[f"{name}_trace_vs_count_mean_rel_diff"] = float(rel)
    summary["convergence"] = convergence
    summary["alpha"] = {}
    for name in w["final_rate_estimates_hz"]:
        alpha = result.rates_hz(name).numpy() / r_p[:, None]
        summary["alpha"][name] = alpha_summary(alpha.ravel(), r_p[0] if np.all(r_p == r_p[0]) else r_p.tolist())
        if np.any(r_p != r_p[0]):
            summary["alpha"][name]["by_replica"] = [alpha_summary(a, float(r)) for a, r in zip(alpha, r_p, strict=True)]
    log.info("convergence: %s", {k: round(v, 4) for k, v in convergence.items()})
