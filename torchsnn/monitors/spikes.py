"""Spike-based monitors: per-neuron counts and ISI statistics, population rate, raster of a subset."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from torchsnn import kernels
from torchsnn.monitors.base import Monitor
from torchsnn.network import BlockOutput, Network


class SpikeStatsMonitor(Monitor):
    """Per neuron over the window: spike count and inter-spike-interval sums -> rate and CV of ISIs.

    ISIs are counted when both spikes fall inside the window. CV = sqrt(E[isi^2] - E[isi]^2) / E[isi] (NaN for
    neurons with fewer than ``min_isi`` intervals).
    """

    checkpoint_fields = ("state", "last_step")

    def __init__(self, window_start_step: int, dt_ms: float, min_isi: int = 3) -> None:
        super().__init__(window_start_step)
        self.dt_ms = dt_ms
        self.min_isi = min_isi

    def setup(self, network: Network, start_step: int, total_steps: int) -> None:
        dev, b = network.device, network.batch
        self.last_step = start_step
        self.state: dict[str, dict[str, Tensor]] = {}
        for name, pop in network.populations.items():
            shape = (b, pop.size)
            self.state[name] = {
                "count": torch.zeros(shape, dtype=torch.int32, device=dev),
                "last": torch.full(shape, -1, dtype=torch.int64, device=dev),
                "isi_sum": torch.zeros(shape, dtype=torch.float64, device=dev),
                "isi_sq": torch.zeros(shape, dtype=torch.float64, device=dev),
                "isi_n": torch.zeros(shape, dtype=torch.int32, device=dev),
            }

    def on_block(self, out: BlockOutput) -> None:
        self.last_step = out.start_step + out.n_steps
        if next(iter(out.spikes.values())).device.type == "cpu" and kernels.cpu_kernels_enabled():
            for name, spikes in out.spikes.items():
                st = self.state[name]
                kernels.numba_cpu.spike_statistics(
                    spikes.numpy(),
                    out.start_step,
                    self.window_start_step,
                    *(st[k].numpy() for k in ("count", "last", "isi_sum", "isi_sq", "isi_n")),
                )
            return
        first = self.steps_in_window(out)
        steps = torch.arange(
            out.start_step, out.start_step + out.n_steps, device=next(iter(out.spikes.values())).device
        )
        for name, spikes in out.spikes.items():
            st = self.state[name]
            if first < out.n_steps:
                st["count"] += spikes[first:].sum(0, dtype=torch.int32)
            stamp = torch.where(spikes, steps.view(-1, 1, 1), torch.full_like(steps.view(-1, 1, 1), -1))
            running = torch.cummax(stamp, dim=0).values
            before = torch.cat([torch.full_like(running[:1], -1), running[:-1]])
            prev = torch.maximum(before, st["last"].unsqueeze(0))
            valid = spikes & (prev >= self.window_start_step)
            isi = torch.where(valid, (steps.view(-1, 1, 1) - prev).double(), 0.0)
            st["isi_sum"] += isi.sum(0)
            st["isi_sq"] += (isi * isi).sum(0)
            st["isi_n"] += valid.sum(0, dtype=torch.int32)
            st["last"] = torch.maximum(st["last"], running[-1])

    def result(self) -> dict[str, Any]:
        window_s = max(0, self.last_step - self.window_start_step) * self.dt_ms * 1e-3  # so far (partial runs too)
        res = {}
        for name, st in self.state.items():
            n = st["isi_n"].double()
            mean = st["isi_sum"] / n.clamp(min=1)
            var = (st["isi_sq"] / n.clamp(min=1) - mean**2).clamp(min=0)
            cv = torch.where(n >= self.min_isi, var.sqrt() / mean.clamp(min=1e-12), torch.nan)
            res[name] = {
                "rates_hz": (st["count"].double() / window_s).cpu() if window_s > 0 else st["count"].double().cpu(),
                "counts": st["count"].cpu(),
                "cv_isi": cv.cpu(),
            }
        return res


class PopulationRateMonitor(Monitor):
    """Spike count of each population in every step (B per step), kept on the device for the whole run."""

    checkpoint_fields = ("counts",)

    def setup(self, network: Network, start_step: int, total_steps: int) -> None:
        self.dt_ms = network.dt_ms
        self.sizes = network.population_sizes()
        self.first_step = start_step
        self.counts = {
            name: torch.zeros(total_steps - self.first_step, network.batch, dtype=torch.int32, device=network.device)
            for name in network.populations
        }

    def on_block(self, out: BlockOutput) -> None:
        start = out.start_step - self.first_step
        for name, spikes in out.spikes.items():
            self.counts[name][start : start + out.n_steps] = spikes.sum(-1, dtype=torch.int32)

    def binned_rate_hz(self, name: str, bin_ms: float, upto_step: int | None = None) -> Tensor:
        """Population rate (Hz) in bins of ``bin_ms`` from the start of this run: (n_bins, B), on the CPU.
        ``upto_step`` counts steps from the start of this run."""
        per_bin = max(1, round(bin_ms / self.dt_ms))
        counts = self.counts[name][:upto_step].cpu()
        n_bins = counts.shape[0] // per_bin
        binned = counts[: n_bins * per_bin].view(n_bins, per_bin, -1).sum(1).double()
        return binned / (self.sizes[name] * per_bin * self.dt_ms * 1e-3)

    def result(self) -> dict[str, Any]:
        return {name: {"step_counts": c.cpu()} for name, c in self.counts.items()}


class RasterMonitor(Monitor):
    """Spike times of the first ``n_neurons`` neurons per population (replica 0), ``duration_steps`` into the window."""

    checkpoint_fields = ("blocks",)

    def __init__(self, window_start_step: int, n_neurons: int, duration_steps: int) -> None:
        super().__init__(window_start_step)
        self.n_neurons = n_neurons
        self.duration_steps = duration_steps

    def setup(self, network: Network, start_step: int, total_steps: int) -> None:
        self.end_step = min(total_steps, self.window_start_step + self.duration_steps)
        self.blocks: dict[str, list[tuple[int, Tensor]]] = {name: [] for name in network.populations}

    def on_block(self, out: BlockOutput) -> None:
        first = self.steps_in_window(out)
        last = min(out.n_steps, self.end_step - out.start_step)
        if first >= last:
            return
        for name, spikes in out.spikes.items():
            self.blocks[name].append((out.start_step + first, spikes[first:last, 0, : self.n_neurons].clone()))

    def result(self) -> dict[str, Any]:
        res = {}
        for name, blocks in self.blocks.items():
            steps, neurons = [], []
            for start, sp in blocks:
                s, n = sp.cpu().nonzero(as_tuple=True)
                steps.append(s + start)
                neurons.append(n)
            res[name] = {
                "step": torch.cat(steps) if steps else torch.zeros(0, dtype=torch.int64),
                "neuron": torch.cat(neurons) if neurons else torch.zeros(0, dtype=torch.int64),
            }
        return res
