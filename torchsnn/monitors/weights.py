"""Plastic weights over time: mean and spread per plastic projection, final weights per edge."""

from __future__ import annotations

from typing import Any

from torchsnn.monitors.base import Monitor
from torchsnn.network import BlockOutput, Network


class WeightMonitor(Monitor):
    """Every ``every_steps``: mean and std of |w| over the edges (all replicas) of every plastic projection, and
    the mean rate estimate (trace) of every traced population. Results hold the time series and the final |w|
    per edge (B, E)."""

    checkpoint_fields = ("next_step", "series", "trace_series")

    def __init__(self, every_steps: int) -> None:
        super().__init__(0)
        self.every_steps = max(1, int(every_steps))

    def setup(self, network: Network, start_step: int, total_steps: int) -> None:
        self.network = network
        self.dt_ms = network.dt_ms
        self.next_step = start_step
        self.series: dict[str, list[tuple[float, float, float]]] = {
            name: [] for name, p in network.projections.items() if p.plastic
        }
        self.trace_series: dict[str, list[tuple[float, float]]] = {name: [] for name in network.estimators}

    def on_block(self, out: BlockOutput) -> None:
        end = out.start_step + out.n_steps
        if end < self.next_step:
            return
        self.next_step += self.every_steps * max(1, -(-(end - self.next_step) // self.every_steps))
        t_ms = end * self.dt_ms
        for name in self.series:
            w = self.network.projections[name].edge_weights_mv().abs()
            self.series[name].append((t_ms, float(w.mean()), float(w.std())))
        for name, est in self.network.estimators.items():
            self.trace_series[name].append((t_ms, float(est.rate_hz().mean())))

    def result(self) -> dict[str, Any]:
        final = {name: self.network.projections[name].edge_weights_mv().abs().cpu() for name in self.series}
        estimates = {name: est.rate_hz().cpu() for name, est in self.network.estimators.items()}
        return {
            "series": self.series,
            "trace_series": self.trace_series,
            "final_weights_mv": final,
            "final_rate_estimates_hz": estimates,
        }


def relative_change(series: list[tuple[float, ...]], column: int, start_ms: float) -> float:
    """|value(end) - value(middle of [start, end])| / |value(end)|: how much a quantity still moved over the second
    half of the measurement window (0 for a converged one, up to noise)."""
    points = [p for p in series if p[0] >= start_ms]
    if len(points) < 3:
        return float("nan")
    end = points[-1][column]
    middle = points[len(points) // 2][column]
    return abs(end - middle) / max(abs(end), 1e-12)


__all__ = ["WeightMonitor", "relative_change"]
