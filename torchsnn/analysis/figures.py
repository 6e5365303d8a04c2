"""Figures a person would rather look at than read: distributions, population activity, weights over time."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D


def _bins(low: float, top: float, lattice: float | None, n: int = 60) -> np.ndarray:
    """``n`` bins over [low, top]; with ``lattice`` (values k * lattice, e.g. counts / T) bins of a whole number of
    lattice steps centred on the lattice points, so the histograms of counted rates do not alias into a zig-zag."""
    if not lattice:
        return np.linspace(low, top, n + 1)
    width = lattice * max(1, int(np.ceil((top - low) / n / lattice)))
    start = (np.floor(low / lattice) - 0.5) * lattice
    return np.arange(start, top + width, width)


def distribution_panels(
    simulated: dict[str, np.ndarray],
    predicted: dict[str, np.ndarray],
    path: Path,
    xlabel: str,
    title: str = "",
    lattice: float | None = None,
    reference: dict[str, np.ndarray] | None = None,
    labels: tuple[str, str] = ("simulation", "theory"),
) -> Path:
    """One panel per key: histogram of simulated values and, as a line, the histogram density of the predicted
    samples on the same bins (``lattice``: see :func:`_bins`); ``reference`` (e.g. the prediction before counting
    noise) as a dashed line, or a dashed vertical line at its mean where it is narrower than a bin."""
    names = list(dict.fromkeys([*simulated, *predicted]))
    fig, axes = plt.subplots(1, len(names), figsize=(4.6 * len(names), 3.6), squeeze=False)
    for k, (ax, name) in enumerate(zip(axes[0], names, strict=True)):
        sim = np.asarray(simulated.get(name, []), dtype=float).ravel()
        pred = np.asarray(predicted.get(name, []), dtype=float).ravel()
        pool = np.concatenate([sim, pred]) if sim.size and pred.size else (sim if sim.size else pred)
        top = max(float(np.quantile(pool, 0.995)) * 1.1, 1e-9) if pool.size else 1.0
        low = float(np.quantile(pool, 0.005)) * 0.9 if pool.size else 0.0
        bins = _bins(low if low > 0.3 * top else 0.0, top, lattice)  # zoom in on a narrow distribution
        centres = 0.5 * (bins[1:] + bins[:-1])
        if sim.size:
            ax.hist(
                sim, bins=bins, density=True, alpha=0.5, color=f"C{k}", label=f"{labels[0]} (mean {sim.mean():.3g})"
            )
        if pred.size:
            dens, _ = np.histogram(pred, bins=bins, density=True)
            ax.plot(centres, dens, "k-", lw=1.5, label=f"{labels[1]} (mean {pred.mean():.3g})")
        ref = np.asarray((reference or {}).get(name, []), dtype=float).ravel()
        if ref.size and ref.std() < bins[1] - bins[0]:
            ax.axvline(ref.mean(), color="0.4", ls="--", lw=1, label="theory before counting noise")
        elif ref.size:
            dens, _ = np.histogram(ref, bins=bins, density=True)
            ax.plot(centres, dens, "--", color="0.4", lw=1, label="theory before counting noise")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("density")
        ax.set_title(name)
        ax.set_ylim(0.0, ax.get_ylim()[1] * 1.4)  # head room for the legend above the histograms
        ax.legend(frameon=False, fontsize=7, loc="upper left")
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
    start_ms: float = 0.0,
    show_ms: float = 500.0,
) -> Path:
    """Raster of the recorded neurons (top) and population rates (bottom) over ``show_ms`` from ``start_ms``."""
    fig, (ax_r, ax_p) = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    offset = 0
    for k, (name, (steps, neurons)) in enumerate(raster.items()):
        t = steps * dt_ms
        keep = (t >= start_ms) & (t < start_ms + show_ms)
        ax_r.plot(t[keep], neurons[keep] + offset, "|", ms=3, color=f"C{k}", label=name)
        offset += int(neurons.max()) + 2 if neurons.size else 0
    ax_r.set_ylabel("neuron")
    handles = [Line2D([], [], color=f"C{k}", marker="s", ls="", ms=8, label=name) for k, name in enumerate(raster)]
    if handles:
        ax_r.legend(handles=handles, loc="upper right", framealpha=0.9)
    for k, (name, rate) in enumerate(pop_rate_hz.items()):
        t = np.arange(rate.size) * bin_ms
        keep = (t >= start_ms) & (t < start_ms + show_ms)
        ax_p.plot(t[keep], rate[keep], color=f"C{k}", lw=0.8, label=name)
    if pop_rate_hz:
        ax_p.legend(loc="upper right", framealpha=0.9, fontsize=8)
    ax_p.set_xlabel("time (ms)")
    ax_p.set_ylabel(f"population rate (Hz, {bin_ms:g} ms bins)")
    ax_p.set_xlim(start_ms, start_ms + show_ms)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def weight_series_figure(
    series: dict[str, list[tuple[float, float, float]]], path: Path, transient_ms: float = 0.0
) -> Path:
    """Mean |w| (± std over edges) of every plastic projection against model time."""
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for k, (name, points) in enumerate(series.items()):
        if not points:
            continue
        t, mean, std = (np.array(c) for c in zip(*points, strict=True))
        ax.plot(t * 1e-3, mean, color=f"C{k}", label=name)
        ax.fill_between(t * 1e-3, mean - std, mean + std, color=f"C{k}", alpha=0.2)
    ax.axvline(transient_ms * 1e-3, color="grey", ls=":", lw=1, label="measurement starts")
    ax.set_xlabel("model time (s)")
    ax.set_ylabel("|w| (mV), mean ± std")
    ax.legend(frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def degree_densities(
    curves: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
    path: Path,
    empirical: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None,
) -> Path:
    """rho_K (solid) and rho*_K (dashed) per panel (e.g. r < 0, r = 0, r > 0), as in the talk; optional
    histograms of a realised scaffold (k, rho, rho*)."""
    fig, axes = plt.subplots(1, len(curves), figsize=(4.4 * len(curves), 3.4), squeeze=False, sharey=True)
    for ax, (label, (k, rho, star)) in zip(axes[0], curves.items(), strict=True):
        ax.plot(k, rho, "k-", lw=1.6, label=r"$\rho_K$")
        ax.plot(k, star, "k--", lw=1.6, label=r"$\rho^*_K$")
        if empirical and label in empirical:
            ke, re, se = empirical[label]
            ax.plot(ke, re, "o", ms=3, color="C0", alpha=0.6, label=r"realised $\rho_K$")
            ax.plot(ke, se, "s", ms=3, color="C3", alpha=0.6, label=r"realised $\rho^*_K$")
        ax.set_title(label)
        ax.set_xlabel("in-degree k")
        cdf = np.cumsum(rho)
        ax.set_xlim(k[0], k[min(np.searchsorted(cdf, 0.999), len(k) - 1)])
    axes[0][0].set_ylabel("density")
    axes[0][0].legend(frameon=False, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
