"""Figures a person would rather look at than read: rate distributions, population rates, rasters."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def rate_histograms(
    rates_hz: dict[str, np.ndarray],
    path: Path,
    title: str = "",
    predicted: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> Path:
    """One panel per population: histogram of simulated rates, optionally a predicted density (grid, pdf)."""
    names = list(rates_hz)
    fig, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.6), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        r = np.asarray(rates_hz[name]).ravel()
        top = max(np.quantile(r, 0.995) * 1.1, 1.0) if r.size else 1.0
        ax.hist(
            r,
            bins=60,
            range=(0, top),
            density=True,
            alpha=0.55,
            color="C0" if name.startswith("E") else "C3",
            label="simulation",
        )
        if predicted and name in predicted:
            grid, pdf = predicted[name]
            ax.plot(grid, pdf, "k-", lw=1.6, label="theory")
        ax.set_xlabel("firing rate (Hz)")
        ax.set_ylabel("density")
        ax.set_title(f"{name}: mean {r.mean():.2f} Hz, N = {r.size}" if r.size else name)
        ax.legend(frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def activity_overview(
    pop_rate_hz: dict[str, np.ndarray],
    bin_ms: float,
    raster: dict[str, tuple[np.ndarray, np.ndarray]],
    dt_ms: float,
    path: Path,
    show_ms: float = 500.0,
) -> Path:
    """Raster of the recorded neurons (top) and population rates (bottom) over the first ``show_ms``."""
    fig, (ax_r, ax_p) = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    offset = 0
    for k, (name, (steps, neurons)) in enumerate(raster.items()):
        t = steps * dt_ms
        if t.size:
            t0 = t.min()
            keep = t <= t0 + show_ms
            ax_r.plot(t[keep], neurons[keep] + offset, "|", ms=3, color=f"C{k}", label=name)
        offset += int(neurons.max()) + 2 if neurons.size else 0
    ax_r.set_ylabel("neuron")
    ax_r.legend(loc="upper right", frameon=False)
    for k, (name, rate) in enumerate(pop_rate_hz.items()):
        t = np.arange(rate.size) * bin_ms
        ax_p.plot(t, rate, color=f"C{k}", lw=0.8, label=name)
    ax_p.set_xlabel("time (ms)")
    ax_p.set_ylabel("population rate (Hz)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
