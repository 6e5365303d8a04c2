"""One simulation, two theories: the finite-alpha weight law (``plasticity.trace_noise=true``) and w = f(nu)
(``false``), both compared with the same simulated rates and final weights (a paired comparison: the simulation is
the same run, started from the finite-alpha prediction).

    python experiments/alpha_sweep/paired_laws.py OUT_DIR +experiment=plastic_pre plasticity.r_p_hz=1.07 \
        simulation.duration_ms=30000 simulation.transient_ms=20000

Writes OUT_DIR/paired.json: per law the theory's weight moments and the comparison (rates E, I; weights), the
simulated weights and alpha, and the wall times.
"""

from __future__ import annotations

import copy
import json
import sys
import time
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from torchsnn.config.builder import Seeds, build_scaffold
from torchsnn.pipeline import run_comparison, run_simulation, run_theory


def main(out: Path, overrides: list[str]) -> dict:
    conf = Path(__file__).resolve().parents[2] / "conf"
    with initialize_config_dir(str(conf), version_base="1.3"):
        cfg = OmegaConf.to_container(compose("config", overrides=overrides), resolve=True)
    cfg["logging"] = {**cfg["logging"], "tensorboard": False, "progress": False}
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    scaffold = build_scaffold(cfg, Seeds.from_seed(int(cfg["seed"])).scaffold)
    cfgs, theories, result = {}, {}, {"overrides": overrides, "wall_s": {}}
    for law in (True, False):
        key = "finite_alpha" if law else "alpha_infinity"
        cfgs[key] = copy.deepcopy(cfg)
        cfgs[key]["plasticity"]["trace_noise"] = law
        t = time.perf_counter()
        summary: dict = {}
        theories[key] = run_theory(cfgs[key], summary, scaffold)
        result["wall_s"][f"theory_{key}"] = time.perf_counter() - t
        result[key] = {"theory": summary["theory"], "theory_weights": summary.get("theory_weights")}
    t = time.perf_counter()
    sim_summary: dict = {"run": {}}
    _, sim = run_simulation(cfgs["finite_alpha"], out, sim_summary, None, scaffold, theories["finite_alpha"])
    result["wall_s"]["simulation"] = time.perf_counter() - t
    for key in ("simulation", "simulation_weights", "alpha", "convergence"):
        result[key] = sim_summary.get(key)
    for key, theory in theories.items():
        compared: dict = {}
        run_comparison(cfgs[key], compared, sim, theory)
        result[key]["comparison"] = compared["comparison"]
        result[key]["comparison_weights"] = compared.get("comparison_weights")
    result["wall_s"]["total"] = time.perf_counter() - t0
    (out / "paired.json").write_text(json.dumps(result, indent=1, default=str))
    return result


if __name__ == "__main__":
    res = main(Path(sys.argv[1]), sys.argv[2:])
    for law in ("finite_alpha", "alpha_infinity"):
        c, w = res[law]["comparison"], res[law]["comparison_weights"] or {}
        print(
            law,
            {p: round(c[p]["ks"], 3) for p in c},
            {n: (round(m["ks"], 3), round(m["mean_rel_error"], 4)) for n, m in w.items()},
        )
    print("wall", res["wall_s"])
