"""Health checks during a run: non-finite state, runaway activity, weights escaping their bounds."""

from __future__ import annotations

from typing import Any

import torch

from torchsnn.errors import SimulationAbortedError
from torchsnn.monitors.base import Monitor
from torchsnn.network import BlockOutput, Network


class HealthMonitor(Monitor):
    """Every ``every_steps`` (a few host synchronisations per check, none in between):

    * non-finite membrane potentials, traces or plastic weights -> stop, naming the population / projection;
    * a population firing at more than ``max_rate_fraction`` of its refractory ceiling 1 / tau_ref over the last
      interval (runaway excitation) -> stop, with the rate;
    * plastic weights outside their rule's [w_min, w_max] (beyond a float tolerance) -> stop.

    Raises :class:`SimulationAbortedError`; ``simulate`` attaches what was gathered so far.
    """

    checkpoint_fields = ("last_check", "spikes_since")

    def __init__(self, every_steps: int, max_rate_fraction: float = 0.5) -> None:
        super().__init__(0)
        self.every_steps = max(1, int(every_steps))
        self.max_rate_fraction = float(max_rate_fraction)

    def setup(self, network: Network, start_step: int, total_steps: int) -> None:
        self.network = network
        self.last_check = start_step
        self.spikes_since = {
            name: torch.zeros((), dtype=torch.int64, device=network.device) for name in network.populations
        }

    def on_block(self, out: BlockOutput) -> None:
        for name, spikes in out.spikes.items():
            self.spikes_since[name] += spikes.sum()
        end = out.start_step + out.n_steps
        if end - self.last_check >= self.every_steps:
            self.check(end)

    def check(self, step: int) -> None:
        net = self.network
        t_ms = step * net.dt_ms
        for name, pop in net.populations.items():
            if not bool(torch.isfinite(pop.v_mv).all()):
                bad = int((~torch.isfinite(pop.v_mv)).sum())
                raise SimulationAbortedError(
                    f"non-finite membrane potential in population {name} ({bad} values)", step, t_ms
                )
            elapsed_s = (step - self.last_check) * net.dt_ms * 1e-3
            rate = float(self.spikes_since[name]) / (pop.size * pop.batch * elapsed_s)
            ceiling = pop.max_rate_hz
            if rate > self.max_rate_fraction * ceiling:
                raise SimulationAbortedError(
                    f"runaway activity: population {name} fires at {rate:.0f} Hz over the last "
                    f"{elapsed_s * 1e3:.0f} ms, {100 * rate / ceiling:.0f}% of its refractory ceiling "
                    f"{ceiling:.0f} Hz (check inhibition, drive and weights)",
                    step,
                    t_ms,
                )
            self.spikes_since[name].zero_()
        for name, est in net.estimators.items():
            if not bool(torch.isfinite(est.trace).all()):
                raise SimulationAbortedError(f"non-finite rate-estimator trace in population {name}", step, t_ms)
        for name, proj in net.projections.items():
            if not proj.plastic:
                continue
            w = proj.weight_mv * proj.sign
            if not bool(torch.isfinite(w).all()):
                bad = int((~torch.isfinite(w)).sum())
                raise SimulationAbortedError(
                    f"non-finite weights in plastic projection {name} ({bad} values)", step, t_ms
                )
            tol = 1e-5 * max(abs(proj.rule.w_max_mv) if proj.rule.w_max_mv < float("inf") else 1.0, 1.0)
            low, high = float(w.min()), float(w.max())
            if low < proj.rule.w_min_mv - tol or high > proj.rule.w_max_mv + tol:
                raise SimulationAbortedError(
                    f"weights of plastic projection {name} left their bounds [{proj.rule.w_min_mv}, "
                    f"{proj.rule.w_max_mv}] mV: min {low:.4g}, max {high:.4g}",
                    step,
                    t_ms,
                )
        self.last_check = step

    def result(self) -> dict[str, Any]:
        return {"last_check_step": self.last_check}
