"""Figure of a poisson_surrogate study folder: per population, the mean rate of the network, the Poisson surrogate
and (if run) the renewal surrogate against the theory, and per neuron the surrogates' rates against the network's.

    python experiments/poisson_surrogate/figure.py STUDY_DIR [OUT.png]
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def main(study: Path, out: Path) -> None:
    surr = sorted(study.glob("surr_r*"))[0]
    tag = surr.name.split("_", 1)[1]
    data = dict(np.load(surr / "rates.npz"))
    renewal = study / f"renewal_{tag}" / "rates.npz"
    if renewal.exists():
        data.update(np.load(renewal))
    pops = sorted({k.split("_", 1)[1] for k in data})
    fig, axes = plt.subplots(2, len(pops), figsize=(5 * len(pops), 7.5), squeeze=False)
    for c, pop in enumerate(pops):
        real = data[f"real_{pop}"]
        ax = axes[0, c]
        bins = np.linspace(0, np.quantile(real, 0.995), 50)
        for key, label, style in [
            ("real", "network", "k-"),
            ("surrogate", "Poisson surrogate", "C0-"),
            ("renewal", "renewal surrogate", "C1--"),
            ("theory", "theory per neuron (finite_jump)", "C2:"),
        ]:
            if f"{key}_{pop}" in data:
                h, e = np.histogram(data[f"{key}_{pop}"], bins, density=True)
                ax.step(e[:-1], h, style, where="post", label=f"{label}: {data[f'{key}_{pop}'].mean():.3f} Hz")
        ax.set_xlabel(f"{pop} rate (Hz)")
        ax.set_ylabel("density")
        ax.legend(frameon=False, fontsize=8)
        ax = axes[1, c]
        ax.plot(real, data[f"surrogate_{pop}"], ".", ms=1.5, alpha=0.4, label="Poisson surrogate")
        if f"renewal_{pop}" in data:
            ax.plot(real, data[f"renewal_{pop}"], ".", ms=1.5, alpha=0.4, label="renewal surrogate")
        top = float(np.quantile(real, 0.995))
        ax.plot([0, top], [0, top], "k-", lw=0.8)
        ax.set_xlim(0, top)
        ax.set_ylim(0, top * 1.2)
        ax.set_xlabel(f"{pop} rate in the network (Hz)")
        ax.set_ylabel("same neuron in the surrogate (Hz)")
        ax.legend(frameon=False, fontsize=8, markerscale=6)
    fig.suptitle(f"{study.name} ({tag})")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else Path(sys.argv[1]) / "surrogate_rates.png")
