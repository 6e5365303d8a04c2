"""Shared helpers: every plasticity rule that has a config file in conf/plasticity/ ("registered"), and a
simulator of one plastic projection between independent Poisson neurons at fixed rates."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from torchsnn.config.instantiate import instantiate
from torchsnn.estimators import RateEstimator
from torchsnn.plasticity import PlasticityRule
from torchsnn.projection import Projection
from torchsnn.scaffold import ScaffoldBlock

CONF = Path(__file__).resolve().parents[2] / "conf" / "plasticity"


def registered_rules() -> dict[str, PlasticityRule]:
    """name -> rule instantiated from conf/plasticity/<name>.yaml (files without a rule are skipped)."""
    rules = {}
    for path in sorted(CONF.glob("*.yaml")):
        node = OmegaConf.to_container(OmegaConf.load(path), resolve=True).get("rule")
        if node:
            rules[path.stem] = instantiate(node, f"plasticity/{path.stem}.rule")
    return rules


def one_to_one_block(n: int) -> ScaffoldBlock:
    """n edges, edge i from pre neuron i to post neuron i (independent pairs)."""
    idx = np.arange(n)
    return ScaffoldBlock.from_edges("B", "A", n, n, idx, idx)


def simulate_poisson_pairs(
    rule: PlasticityRule,
    nu_pre_hz: float,
    nu_post_hz: float,
    r_p_hz: float,
    n: int,
    duration_ms: float,
    dt_ms: float = 1.0,
    update_every_ms: float = 5.0,
    seed: int = 0,
    per_row: bool = False,
) -> torch.Tensor:
    """|w| of n independent edges after ``duration_ms`` of Poisson spiking (Bernoulli per step) at fixed rates,
    traces and weight updates exactly as in the simulator (RateEstimator.update_block, Projection.
    apply_plasticity). Traces start at the true rates, weights at the steady state."""
    gen = torch.Generator().manual_seed(seed)
    proj = Projection("AB", one_to_one_block(n), 1.0, 1.0, dt_ms, dt_ms, rule)
    pre, post = RateEstimator(n, r_p_hz, dt_ms, nu_pre_hz), RateEstimator(n, r_p_hz, dt_ms, nu_post_hz)
    pre.reset_state(1)
    post.reset_state(1)
    f = rule.steady_state(
        torch.tensor([nu_pre_hz], dtype=torch.float64), torch.tensor([nu_post_hz], dtype=torch.float64)
    )
    initial = torch.full((n,), float(f), dtype=torch.float32)
    proj.reset_weights(1, initial if per_row else initial[None, :])  # (N_pre,): per row; (B, E): per edge
    assert proj.layout == ("per_row" if rule.pre_only and per_row else "per_edge")
    block = max(1, round(update_every_ms / dt_ms))
    p_pre, p_post = nu_pre_hz * dt_ms * 1e-3, nu_post_hz * dt_ms * 1e-3
    for _ in range(math.ceil(duration_ms / (block * dt_ms))):
        pre.update_block(torch.rand(block, 1, n, generator=gen) < p_pre)
        post.update_block(torch.rand(block, 1, n, generator=gen) < p_post)
        proj.apply_plasticity(pre.rate_hz(), post.rate_hz(), block * dt_ms)
    return proj.edge_weights_mv().abs()[0]
