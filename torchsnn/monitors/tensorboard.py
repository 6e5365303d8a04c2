"""TensorBoard logging: population rates while the run goes; at the end rate / weight histograms, the summary as
text tables (Text tab), the run's parameters against its headline numbers (HParams tab) and the figures (Images).

Scalars hold only series over model time (population rates, mean and std of plastic weights): a number with one
value per run (n_neurons, a KS distance, ...) goes to the Text tab, and to HParams where it is a parameter or a
headline metric. TensorBoard's HParams plugin reads its metric values from scalar summaries, so the few headline
metrics also appear as single points under ``hparam/`` in the Scalars tab; nothing else does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.tensorboard import SummaryWriter

from torchsnn.analysis.report import table
from torchsnn.monitors.spikes import PopulationRateMonitor


class TensorBoardLogger:
    """Writes to ``<run dir>/tensorboard``. Used as a simulation callback (reads the rate monitor at flush time)."""

    def __init__(self, log_dir: Path, bin_ms: float = 10.0) -> None:
        self.log_dir = Path(log_dir)
        self._writer: SummaryWriter | None = None
        self.bin_ms = bin_ms
        self.logged_bins = 0

    @property
    def writer(self) -> SummaryWriter:
        """Opened at the first write, so a run that stops before logging anything leaves no empty event file."""
        if self._writer is None:
            self._writer = SummaryWriter(str(self.log_dir))
        return self._writer

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
        if n_bins > self.logged_bins:
            self.writer.flush()
        self.logged_bins = n_bins

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

    def log_summary(self, summary: dict[str, dict[str, Any]], section: str) -> None:
        """One summary section (rows per population or projection) as a Markdown table in the Text tab."""
        rows = [
            {"": name, **{k: v for k, v in values.items() if isinstance(v, (int, float, str, bool)) and k != "note"}}
            for name, values in summary.items()
            if isinstance(values, dict)
        ]
        if rows:
            keys = list(dict.fromkeys(k for row in rows for k in row))
            self.writer.add_text(f"summary/{section}", table([{k: row.get(k, "") for k in keys} for row in rows]), 0)

    def log_figures(self, folder: Path) -> None:
        """Every PNG of the run folder as an image (TensorBoard's Images tab)."""
        from PIL import Image

        for png in sorted(folder.glob("*.png")):
            image = np.asarray(Image.open(png).convert("RGB"))
            self.writer.add_image(f"figures/{png.stem}", image, 0, dataformats="HWC")

    def log_hparams(self, hparams: dict[str, object], summary: dict[str, Any]) -> None:
        """The run's parameters (:func:`run_hparams`) against its headline numbers (TensorBoard's HParams tab):
        per population KS and relative errors of mean and std of the comparison, and the mean rates."""
        metrics = {}
        for section in ("comparison", "comparison_weights"):
            for name, values in (summary.get(section) or {}).items():
                for key in ("ks", "mean_rel_error", "std_rel_error"):
                    if isinstance(values.get(key), float) and np.isfinite(values[key]):
                        metrics[f"hparam/{section}/{name}/{key}"] = values[key]
        for section in ("simulation", "theory"):
            for name, values in (summary.get(section) or {}).items():
                if isinstance(values.get("rate_mean_hz"), float) and np.isfinite(values["rate_mean_hz"]):
                    metrics[f"hparam/{section}/{name}/rate_mean_hz"] = values["rate_mean_hz"]
        clean = {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in hparams.items()}
        self.writer.add_hparams(clean, metrics, run_name=".")

    def close(self) -> None:
        if self._writer is not None:
            self._writer.flush()
            self._writer.close()


def run_hparams(
    cfg: dict[str, Any], summary: dict[str, Any], overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The parameters every run reports to the HParams tab: seed, mode, duration, dt, replicas, device, backend, the
    size of each population, and the command line's overrides (``override.<key>``)."""
    sim = cfg.get("simulation") or {}
    run = summary.get("run") or {}
    backend = run.get("backend")
    out: dict[str, Any] = {
        "seed": cfg.get("seed"),
        "mode": cfg.get("mode", "compare"),
        "duration_ms": sim.get("duration_ms"),
        "dt_ms": sim.get("dt_ms"),
        "replicas": run.get("replicas", sim.get("replicas", 1)),
        "device": run.get("device", sim.get("device")),
        "backend": backend.get("name") if isinstance(backend, dict) else backend,
    }
    for name, pop in ((cfg.get("network") or {}).get("populations") or {}).items():
        if isinstance(pop, dict) and "size" in pop:
            out[f"n_neurons_{name}"] = pop["size"]
    out.update({f"override.{k}": v for k, v in (overrides or {}).items()})
    return {k: v for k, v in out.items() if v is not None}
