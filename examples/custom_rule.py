"""A researcher's own plasticity rule in a few lines, run by both engines (simulation and mean-field theory).

    dw/dt = eta [ nu_pre (w_max - w) - kappa w^2 ]

No closed form is needed: the base class finds the stable root of the drift for the theory.
Run: python examples/custom_rule.py   (20 s of model time: measured 18.5 min on a busy 2-core CPU; a progress bar
shows how far it is; outputs in outputs/custom_rule/<date>_<time>/)
"""

import time

import torch

from torchsnn.plasticity import PlasticityRule


class SoftBoundPreRule(PlasticityRule):
    pre_only = True  # the drift does not involve nu_post

    def __init__(self, eta: float = 1e-4, w_max_mv: float = 0.15, kappa_hz_per_mv: float = 60.0) -> None:
        super().__init__(w_min_mv=0.0, w_max_mv=w_max_mv)
        self.eta, self.kappa = eta, kappa_hz_per_mv

    def drift(self, w_mv: torch.Tensor, nu_pre_hz: torch.Tensor, nu_post_hz: torch.Tensor) -> torch.Tensor:
        return self.eta * (nu_pre_hz * (self.w_max_mv - w_mv) - self.kappa * w_mv**2)


def main() -> dict:
    from pathlib import Path

    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from torchsnn.pipeline import run

    overrides = [
        "+experiment=plastic_pre",
        "plasticity.r_p_hz=0.3",
        "simulation.duration_ms=20000",
        "simulation.transient_ms=15000",
        "network.populations.E.size=4000",
        "network.populations.I.size=1000",
        "logging.progress=true",
    ]
    with initialize_config_dir(str(Path(__file__).resolve().parents[1] / "conf"), version_base="1.3"):
        cfg = OmegaConf.to_container(compose("config", overrides=overrides), resolve=True)
    cfg["plasticity"]["rule"] = {"_target_": f"{__name__}.SoftBoundPreRule"}
    return run(cfg, Path("outputs/custom_rule") / time.strftime("%Y-%m-%d_%H-%M-%S"))


if __name__ == "__main__":
    summary = main()
    for key in ("theory_weights", "simulation_weights", "comparison", "comparison_weights"):
        print(key, summary[key])
