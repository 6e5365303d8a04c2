"""Synchrony from sampled membrane potentials."""

from __future__ import annotations

from typing import Any

import torch

from torchsnn.monitors.base import Monitor
from torchsnn.network import BlockOutput, Network


class SynchronyMonitor(Monitor):
    r"""Population-averaged variance ratio (Golomb; Hansel & Sompolinsky):

        chi^2 = Var_t[ V_bar(t) ] / mean_i Var_t[ V_i(t) ],     V_bar(t) = mean_i V_i(t)

    from voltages sampled every ``every_steps`` inside the window. chi ~ 1/sqrt(N) for asynchronous activity,
    chi -> 1 for full synchrony. Reported per population and replica.
    """

    checkpoint_fields = ("acc",)

    def __init__(self, window_start_step: int, every_steps: int) -> None:
        super().__init__(window_start_step)
        self.every_steps = every_steps

    def setup(self, network: Network, start_step: int, total_steps: int) -> None:
        dev, b = network.device, network.batch
        self.acc = {
            name: {
                "n": 0,
                "v": torch.zeros(b, pop.size, dtype=torch.float64, device=dev),
                "v2": torch.zeros(b, pop.size, dtype=torch.float64, device=dev),
                "m": torch.zeros(b, dtype=torch.float64, device=dev),
                "m2": torch.zeros(b, dtype=torch.float64, device=dev),
            }
            for name, pop in network.populations.items()
        }

    def on_block(self, out: BlockOutput) -> None:
        for name, samples in out.voltage_samples.items():
            acc = self.acc[name]
            for k, v in enumerate(samples):
                step = out.start_step + self._offset(out.start_step) + k * self.every_steps
                if step < self.window_start_step:
                    continue
                v = v.double()
                mean = v.mean(-1)
                acc["n"] += 1
                acc["v"] += v
                acc["v2"] += v * v
                acc["m"] += mean
                acc["m2"] += mean * mean

    def _offset(self, start_step: int) -> int:
        return (-start_step) % self.every_steps

    def result(self) -> dict[str, Any]:
        res = {}
        for name, acc in self.acc.items():
            n = max(acc["n"], 1)
            var_i = (acc["v2"] / n - (acc["v"] / n) ** 2).clamp(min=0).mean(-1)
            var_bar = (acc["m2"] / n - (acc["m"] / n) ** 2).clamp(min=0)
            chi = torch.sqrt(var_bar / var_i.clamp(min=1e-30))
            res[name] = {"chi": chi.cpu(), "n_samples": acc["n"]}
        return res
