"""Spike-based monitors: per-neuron counts and ISI statistics, population rate, raster of a subset."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from torchsnn.monitors.base import Monitor
from torchsnn.network import BlockOutput, Network


class SpikeStatsMonitor(Monitor):
    """Per neuron over the window: spike count and inter-spike-interval sums -> rate and CV of ISIs.

    ISIs are counted when both spikes fall inside the window. CV = sqrt(E[isi^2] - E[isi]^2) / E[isi] (NaN for
    neurons with fewer than ``min_isi`` intervals). The update runs on the network's backend: a fused backend
    updates the (B, N) buffers inside its neuron kernel (they are registered in ``network.sinks``), the others
    per block (numba kernel, or torch ops with (B, N) temporaries only).
    """

    checkpoint_fields = ("state", "last_step")

    def __init__(self, window_start_step: int, dt_ms: float, min_isi: int = 3) -> None:
        super().__init__(window_start_step)
        self.dt_ms = dt_ms
        self.min_isi = min_isi

    def setup(self, network: Network, start_step: int, total_steps: int) -> None:
        dev, b = network.device, network.batch
        self.backend = network.select_backend()
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
        self.fused = self.backend.fused
        if self.fused:
            for name, st in self.state.items():
                network.sinks.setdefault(name, {})["stats"] = (st, self.window_start_step)

    def load_state_dict(self, state: dict[str, Any], device: torch.device | None = None) -> None:
        """As Monitor's; the restored buffers are copied into the registered ones (a fused kernel holds those)."""
        if not getattr(self, "fused", False):
            return super().load_state_dict(state, device)
        for name, st in state["state"].items():
            for key, value in st.items():
                self.state[name][key].copy_(value)
        self.last_step = state["last_step"]

    def on_block(self, out: BlockOutput) -> None:
        self.last_step = out.start_step + out.n_steps
        if self.fused:
            return
        for name, spikes in out.spikes.items():
            self.backend.spike_statistics(spikes, out.start_step, self.window_start_step, self.state[name])

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
        self.fused = network.select_backend().fused  # the neuron kernel adds each step's count (network.sinks)
        if self.fused:
            for name, c in self.counts.items():
                network.sinks.setdefault(name, {})["rate"] = (c, self.first_step)

    def load_state_dict(self, state: dict[str, Any], device: torch.device | None = None) -> None:
        if not getattr(self, "fused", False):
            return super().load_state_dict(state, device)
        for name, c in state["counts"].items():
            self.counts[name].copy_(c)

    def on_block(self, out: BlockOutput) -> None:
        if self.fused:
            return
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
