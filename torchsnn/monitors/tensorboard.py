"""TensorBoard logging: population rates while the run goes, rate histograms and summary numbers at the end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch.utils.tensorboard import SummaryWriter

from torchsnn.monitors.spikes import PopulationRateMonitor


class TensorBoardLogger:
    """Writes to ``<run dir>/tensorboard``. Used as a simulation callback (reads the rate monitor at flush time)."""

    def __init__(self, log_dir: Path, bin_ms: float = 10.0) -> None:
        self.writer = SummaryWriter(str(log_dir))
        self.bin_ms = bin_ms
        self.logged_bins = 0

    def __call__(self, step: int, pop_rate: PopulationRateMonitor) -> None:
        per_bin = max(1, round(self.bin_ms / pop_rate.dt_ms))
        n_bins = (step - pop_rate.first_step) // per_bin
        t0_ms = pop_rate.first_step * pop_rate.dt_ms
        for name in pop_rate.counts:
            new = pop_rate.counts[name][self.logged_bins * per_bin : n_bins * per_bin].cpu()  # only the new bins
            spikes = new.view(-1, per_bin, new.shape[-1]).sum(1).double().mean(-1)
            rate = (spikes / (pop_rate.sizes[name] * per_bin * pop_rate.dt_ms * 1e-3)).numpy()
            for k in range(self.logged_bins, n_bins):
                when_ms = round(t0_ms + (k + 1) * self.bin_ms)
                self.writer.add_scalar(f"population_rate_hz/{name}", float(rate[k - self.logged_bins]), when_ms)
        self.logged_bins = n_bins
        self.writer.flush()

    def state_dict(self) -> dict[str, int]:
        return {"logged_bins": self.logged_bins}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.logged_bins = int(state["logged_bins"])

    def log_rates(self, rates_hz: dict[str, np.ndarray], tag: str = "rate_hz", step: int = 0) -> None:
        for name, r in rates_hz.items():
            self.writer.add_histogram(f"{tag}/{name}", np.asarray(r).ravel(), step)

    def log_weight_series(self, series: dict[str, list[tuple[float, float, float]]]) -> None:
        """Mean and std of |w| of every plastic projection against model time (ms)."""
        for name, points in series.items():
            for t_ms, mean, std in points:
                self.writer.add_scalar(f"weight_mean_mv/{name}", mean, round(t_ms))
                self.writer.add_scalar(f"weight_std_mv/{name}", std, round(t_ms))

    def log_summary(self, summary: dict[str, dict[str, float]], section: str) -> None:
        for pop, values in summary.items():
            for key, value in values.items():
                if isinstance(value, (int, float)) and np.isfinite(value):
                    self.writer.add_scalar(f"{section}/{pop}/{key}", value, 0)

    def log_figures(self, folder: Path) -> None:
        """Every PNG of the run folder as an image (TensorBoard's Images tab)."""
        from PIL import Image

        for png in sorted(folder.glob("*.png")):
            image = np.asarray(Image.open(png).convert("RGB"))
            self.writer.add_image(f"figures/{png.stem}", image, 0, dataformats="HWC")

    def log_hparams(self, hparams: dict[str, object], summary: dict[str, object]) -> None:
        """The sweep's parameters against the run's headline numbers (TensorBoard's HParams tab)."""
        metrics = {}
        for section in ("comparison", "comparison_weights"):
            for name, values in (summary.get(section) or {}).items():
                for key in ("ks", "mean_rel_error"):
                    if isinstance(values.get(key), float) and np.isfinite(values[key]):
                        metrics[f"hparam/{section}/{name}/{key}"] = values[key]
        for name, values in (summary.get("simulation") or {}).items():
            metrics[f"hparam/simulation/{name}/rate_mean_hz"] = values["rate_mean_hz"]
        clean = {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in hparams.items()}
        self.writer.add_hparams(clean, metrics, run_name=".")

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()
