"""Hydra entry point: ``python -m torchsnn.run +experiment=NAME [key=value ...]``.

Writes into the run folder (``hydra.run.dir``): the composed config (``.hydra/`` and ``config.yaml``),
``summary.json``, ``neurons.csv``, figures (``rates.png``, ``activity.png``) and ``tensorboard/``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from torchsnn.errors import ConfigError

log = logging.getLogger("torchsnn")


def run(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Build the network of ``cfg``, simulate it and write every output into ``run_dir``. Returns the summary."""
    from torchsnn.analysis.figures import activity_overview, rate_histograms
    from torchsnn.config import build_network
    from torchsnn.monitors.tensorboard import TensorBoardLogger
    from torchsnn.outputs import write_json, write_neuron_table
    from torchsnn.simulation import simulate

    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    built = build_network(cfg)
    sim, logs = built.config["simulation"], built.config["logging"]
    net = built.network
    log.info("network: %s", ", ".join(f"{n}={p.size}" for n, p in net.populations.items()))
    log.info(
        "scaffold: %d synapses; device %s; %d replica(s); block of %d steps",
        sum(p.n_edges for p in net.projections.values()),
        built.device,
        net.batch,
        net.block_steps,
    )
    summary: dict[str, Any] = {
        "run": {"seed": built.config["seed"], "device": str(built.device), "replicas": net.batch, "dt_ms": net.dt_ms},
        "scaffold": built.scaffold.summary(),
    }
    tb = TensorBoardLogger(run_dir / "tensorboard") if logs.get("tensorboard", True) else None
    result = simulate(
        net,
        duration_ms=sim["duration_ms"],
        transient_ms=sim["transient_ms"],
        generator=built.generator,
        raster_neurons=sim.get("raster_neurons", 0),
        raster_ms=sim.get("raster_ms", 1000.0),
        voltage_every_ms=sim.get("voltage_every_ms", 1.0),
        progress=logs.get("progress", True),
        callbacks=[tb] if tb else [],
        callback_every_ms=logs.get("log_every_ms", 100.0),
    )
    model_s = sim["duration_ms"] * 1e-3
    summary["simulation"] = result.summary()
    summary["run"].update(
        wall_time_s=result.wall_time_s, model_time_s=model_s, wall_s_per_model_s=result.wall_time_s / model_s
    )
    write_json(run_dir / "summary.json", summary)
    write_neuron_table(run_dir / "neurons.csv", result, built.scaffold)
    rates = {n: result.rates_hz(n).numpy() for n in net.populations}
    if tb:
        tb.log_rates(rates)
        tb.log_summary(summary["simulation"], "simulation")
        tb.close()
    if logs.get("figures", True):
        rate_histograms(rates, run_dir / "rates.png", title=f"firing-rate distributions (seed {built.config['seed']})")
        raster = {n: (r["step"].numpy(), r["neuron"].numpy()) for n, r in result.raster.items()}
        pop_rates = {n: result.population_rate.binned_rate_hz(n, 1.0)[:, 0].numpy() for n in net.populations}
        activity_overview(pop_rates, 1.0, raster, net.dt_ms, run_dir / "activity.png")
    for name, s in summary["simulation"].items():
        log.info(
            "%s: rate %.2f ± %.2f Hz (median %.2f), CV ISI %.2f, chi %.3f",
            name,
            s["rate_mean_hz"],
            s["rate_std_hz"],
            s["rate_median_hz"],
            s["cv_isi_mean"],
            s["chi"],
        )
    log.info("%.1f s wall for %.2f s model time; outputs in %s", result.wall_time_s, model_s, run_dir)
    return summary


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    try:
        run(cfg, Path(HydraConfig.get().runtime.output_dir))
    except ConfigError as err:
        log.error("invalid configuration: %s", err)
        sys.exit(2)


if __name__ == "__main__":
    main()
