"""The theory of a network described by a run config: the same populations, drives, weights, connectivity rules
and plasticity rule the simulator is built from."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from torchsnn.config.builder import build_plasticity_rule, build_populations, build_rules, file_scaffold_hook
from torchsnn.config.instantiate import to_plain
from torchsnn.config.validate import validate_run_config
from torchsnn.errors import ConfigError
from torchsnn.meanfield.degrees import nodes_from_laws, nodes_from_scaffold
from torchsnn.meanfield.lowrank import separable_expansion
from torchsnn.meanfield.model import BlockTheory, MeanFieldModel, PopulationTheory
from torchsnn.plasticity import PlasticityRule
from torchsnn.scaffold import SparseScaffold

DEGREE_SOURCES = ("laws", "scaffold")


def plastic_block(
    post: str, pre: str, rule: PlasticityRule, sign: float, max_pre_hz: float, max_post_hz: float, tol: float
) -> tuple[BlockTheory, dict[str, Any]]:
    """The block of a plastic projection: pre-only, separable, or a low-rank separable expansion of f."""
    if rule.pre_only:

        def f(nu: torch.Tensor) -> torch.Tensor:
            return rule.steady_state(nu, torch.zeros_like(nu))

        return BlockTheory.pre_only(post, pre, f, sign), {"kind": "pre_only"}
    factors = rule.factors()
    if factors is not None:
        return BlockTheory.separable(post, pre, factors[0], factors[1], sign), {"kind": "separable"}
    lin = separable_expansion(rule.steady_state, max_pre_hz, max_post_hz, tol)
    sq = separable_expansion(lambda a, b: rule.steady_state(a, b) ** 2, max_pre_hz, max_post_hz, tol)
    block = BlockTheory(
        post,
        pre,
        [lambda nu, g=g: sign * g(nu) for g in lin.pre],
        list(sq.pre),
        list(lin.post),
        list(sq.post),
        weight_mv=lambda a, b: sign * rule.steady_state(a, b),
        plastic=True,
    )
    info = {
        "kind": "low_rank",
        "rank": lin.rank,
        "rank_of_square": sq.rank,
        "relative_error": lin.relative_error,
        "relative_error_of_square": sq.relative_error,
        "tolerance": tol,
    }
    return block, info


def solve_options(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The solver's keyword arguments from ``cfg['meanfield']``."""
    mf = cfg.get("meanfield") or {}
    return {
        "tol": float(mf.get("tol", 1e-10)),
        "max_iter": int(mf.get("max_iter", 40)),
        "continuation": int(mf.get("continuation", 0)),
        "initial_rate_hz": float(mf.get("initial_rate_hz", 5.0)),
        "require_stable": bool(mf.get("require_stable", True)),
    }


def model_from_config(cfg: Mapping[str, Any] | Any, scaffold: SparseScaffold | None = None) -> MeanFieldModel:
    """Mean-field model of ``cfg``. ``meanfield.degrees`` = ``laws`` takes the degree laws of the connectivity
    rules; ``scaffold`` the realised degrees of ``scaffold`` (which must then be given). The model's
    ``block_info`` tells how each plastic block entered the theory."""
    cfg = file_scaffold_hook(to_plain(cfg))
    validate_run_config(cfg)
    mf = cfg.get("meanfield") or {}
    source = mf.get("degrees", "laws")
    if source not in DEGREE_SOURCES:
        raise ConfigError("meanfield.degrees", source, f"must be one of {', '.join(DEGREE_SOURCES)}")
    if source == "scaffold" and scaffold is None:
        raise ConfigError("meanfield.degrees", source, "needs a wired scaffold (run mode compare or simulate)")
    populations, drives = build_populations(cfg)
    sizes = {name: pop.size for name, pop in populations.items()}
    laws = {
        key: rule.degree_laws(sizes[key[1]], sizes[key[0]], key[0] == key[1]) for key, rule in build_rules(cfg).items()
    }
    pops = []
    for name, pop in populations.items():
        if source == "scaffold":
            nodes = nodes_from_scaffold(scaffold, name, int(mf.get("scaffold_bins", 16)))
        else:
            nodes = nodes_from_laws(
                name,
                {pre: law for (post, pre), law in laws.items() if post == name},
                {post: law for (post, pre), law in laws.items() if pre == name},
                int(mf.get("degree_order", 16)),
            )
        mu_ext, sigma_ext = drives[name].moments(pop.tau_m_ms) if name in drives else (0.0, 0.0)
        ceiling = 1e3 / pop.tau_ref_ms if getattr(pop, "tau_ref_ms", 0.0) > 0 else 1000.0
        pops.append(PopulationTheory(name, pop.transfer_hz, pop.tau_m_ms, mu_ext, sigma_ext, nodes, ceiling))
    rule = build_plasticity_rule(cfg)
    plastic = set((cfg.get("plasticity") or {}).get("projections") or [])
    ceilings = {p.name: p.max_rate_hz for p in pops}
    blocks, info = [], {}
    for name, p in (cfg["network"].get("projections") or {}).items():
        sign = populations[p["pre"]].sign
        if name in plastic:
            top = float(mf.get("lowrank_max_rate_hz", 40.0))
            block, info[name] = plastic_block(
                p["post"],
                p["pre"],
                rule,
                sign,
                min(top, ceilings[p["pre"]]),
                min(top, ceilings[p["post"]]),
                float(mf.get("lowrank_tol", 1e-2)),
            )
        else:
            block = BlockTheory.static(p["post"], p["pre"], sign * float(p["weight_mv"]))
        blocks.append(block)
    model = MeanFieldModel(
        pops, blocks, int(mf.get("gh_order_mu", 16)), int(mf.get("gh_order_sigma", 4)), int(mf.get("qmc_points", 1024))
    )
    model.block_info = info
    model.block_names = list(cfg["network"].get("projections") or {})
    return model


__all__ = ["DEGREE_SOURCES", "model_from_config", "plastic_block", "solve_options"]
