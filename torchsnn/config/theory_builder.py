"""The theory of a network described by a run config: the same populations, drives, weights, connectivity rules
and plasticity rule the simulator is built from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from torchsnn.config.builder import (
    build_plasticity_rule,
    build_populations,
    build_rules,
    file_scaffold_hook,
    merged_population_spec,
)
from torchsnn.config.instantiate import to_plain
from torchsnn.config.validate import validate_run_config
from torchsnn.errors import ConfigError
from torchsnn.meanfield.degrees import nodes_from_laws, nodes_from_scaffold
from torchsnn.meanfield.exact import solve_exact
from torchsnn.meanfield.lowrank import separable_expansion
from torchsnn.meanfield.model import BlockTheory, MeanFieldModel, PopulationTheory
from torchsnn.meanfield.regularity import with_input_statistics
from torchsnn.meanfield.solver import SolveResult, solve
from torchsnn.meanfield.trace_noise import TraceLaw, trace_block
from torchsnn.meanfield.transfers import DEFAULT_TRANSFER, make_transfer
from torchsnn.plasticity import PlasticityRule
from torchsnn.scaffold import SparseScaffold

DEGREE_SOURCES = ("auto", "laws", "scaffold")
COARSE_BINS = 16  # quantile bins per input where rates are implicit (exact cells too dear)
COARSE_CELLS = (32, 256)  # about this many cells per population in the coarse model (Newton, branch search) and
# the intermediate one the exact Newton starts from (measured on a 5,000-neuron r = 0.5 scaffold: 36 cells leave
# 1.5e-2 for three exact Newton steps, 256 cells 5e-3 for two)


def coarse_bins(model: MeanFieldModel, cells: int) -> dict[str, int]:
    """Quantile bins per input, per population, for about ``cells`` cells: the smallest b with
    prod over inputs of min(b, distinct in-degrees of that input) >= cells (or every distinct value)."""
    out = {}
    for name, p in model.populations.items():
        distinct = [np.unique(p.nodes.k[:, c]).size for c in range(p.nodes.k.shape[1])]
        b = 1
        while np.prod([min(b, d) for d in distinct]) < cells and b < max(distinct, default=1):
            b += 1
        out[name] = b
    return out


def rebinned(model: MeanFieldModel, scaffold: SparseScaffold, bins: dict[str, int]) -> MeanFieldModel:
    """The same theory on ``bins`` quantile bins per input of the realised degrees (per population)."""
    pops = [replace(p, nodes=nodes_from_scaffold(scaffold, name, bins[name])) for name, p in model.populations.items()]
    orders = (model.gh_order_mu, model.gh_order_sigma, model.qmc_points, model.root_grid)
    return MeanFieldModel(pops, model.blocks, *orders)


def drive_jumps(drive: Any, tau_m_ms: float) -> tuple[float, float, float, float]:
    """(Lambda_ext in Hz, tau_m sum lambda J^3 in mV^3, Gaussian mean mu_G in mV, Gaussian sigma_G in mV) of an
    external drive: Poisson sources are jumps; a Gaussian drive has none (its moments are the Gaussian part)."""
    tau_s = tau_m_ms * 1e-3
    if drive is None:
        return 0.0, 0.0, 0.0, 0.0
    if hasattr(drive, "k_ext"):
        kinds = [
            (drive.k_ext * drive.nu_ext_hz, drive.j_ext_mv),
            (drive.k_ext_inh * drive.nu_ext_inh_hz, -drive.j_ext_inh_mv),
        ]
        kinds = [(lam, j) for lam, j in kinds if lam > 0 and j != 0]
        return sum(lam for lam, _ in kinds), tau_s * sum(lam * j**3 for lam, j in kinds), 0.0, 0.0
    mu, sigma = drive.moments(tau_m_ms)
    return 0.0, 0.0, float(mu), float(sigma)


def transfer_of(cfg: Mapping[str, Any], name: str, pop: Any, drive: Any) -> Any:
    """The transfer function of population ``name``: ``neuron.transfer`` (per population or global)."""
    spec = merged_population_spec(cfg, name, "neuron") or {}
    kind = spec.get("transfer", DEFAULT_TRANSFER)
    if not hasattr(pop, "transfer_parameters"):
        if kind != "siegert":
            raise ConfigError(f"network.populations.{name}.neuron.transfer", kind, "only siegert for this neuron")
        return pop.transfer_hz
    _, _, mu_g, sigma_g = drive_jumps(drive, pop.tau_m_ms)
    transfer = make_transfer(kind, pop.transfer_parameters(), float(cfg["simulation"]["dt_ms"]), mu_g, sigma_g)
    return with_input_statistics(transfer, (cfg.get("meanfield") or {}).get("input_statistics", "poisson"))


def plastic_block(
    post: str,
    pre: str,
    rule: PlasticityRule,
    sign: float,
    max_pre_hz: float,
    max_post_hz: float,
    tol: float,
    trace: TraceLaw | None = None,
    trace_note: str = "off",
) -> tuple[BlockTheory, dict[str, Any]]:
    """The block of a plastic projection: pre-only, separable, or a low-rank separable expansion of f. With a
    ``trace`` law (finite alpha, ``trace_noise.py``) the pre-only and separable blocks take the weight moments
    E[w], E[w^2], E[w^3] of the noisy traces per presynaptic (and postsynaptic) rate and the predicted weight law
    draws w from it; None: w = f(nu) (alpha -> infinity, the paper's theory), ``trace_note`` saying why."""
    factors = None if rule.pre_only else rule.factors()
    if trace is not None and (rule.pre_only or factors is not None):
        return trace_block(post, pre, rule, sign, trace, factors)
    if rule.pre_only:

        def f(nu: torch.Tensor) -> torch.Tensor:
            return rule.steady_state(nu, torch.zeros_like(nu))

        return BlockTheory.pre_only(post, pre, f, sign), {"kind": "pre_only", "trace_noise": trace_note}
    if factors is not None:
        block = BlockTheory.separable(post, pre, factors[0], factors[1], sign)
        return block, {"kind": "separable", "trace_noise": trace_note}
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
        jump_pre=lambda nu: (sign * lin.pre[0](nu)) ** 3,  # w^3 from the leading separable term (approximation)
        jump_post=lambda nu: lin.post[0](nu) ** 3,
    )
    info = {
        "kind": "low_rank",
        "rank": lin.rank,
        "rank_of_square": sq.rank,
        "relative_error": lin.relative_error,
        "relative_error_of_square": sq.relative_error,
        "tolerance": tol,
        "trace_noise": trace_note if trace is None else "not applied (non-separable rule: alpha -> infinity law)",
    }
    return block, info


def trace_law_of(cfg: Mapping[str, Any]) -> tuple[TraceLaw | None, str]:
    """``plasticity.trace_noise`` (default true) as a trace law, and why when there is none: off, or replicas
    that differ in r_p (one theory cannot serve them all; the alpha sweep solves one per alpha)."""
    plasticity = cfg.get("plasticity") or {}
    if not plasticity.get("trace_noise", True):
        return None, "off (plasticity.trace_noise=false)"
    r_p = plasticity.get("r_p_hz", 1.0)
    values = [float(v) for v in r_p] if isinstance(r_p, (list, tuple)) else [float(r_p)]
    if len(set(values)) > 1:
        return None, "off: replicas differ in r_p (one prediction for all)"
    return TraceLaw(values[0]), "on"


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


def degree_source(cfg: Mapping[str, Any], scaffold: SparseScaffold | None) -> str:
    """``meanfield.degrees``; ``auto``: the realised scaffold when one is wired, else the degree laws."""
    source = (cfg.get("meanfield") or {}).get("degrees", "auto")
    if source not in DEGREE_SOURCES:
        raise ConfigError("meanfield.degrees", source, f"must be one of {', '.join(DEGREE_SOURCES)}")
    return ("scaffold" if scaffold is not None else "laws") if source == "auto" else source


def solve_from_config(
    cfg: Mapping[str, Any] | Any, scaffold: SparseScaffold | None = None
) -> tuple[MeanFieldModel, SolveResult]:
    """Model and fixed point of ``cfg``. On a scaffold with ``scaffold_bins = 0`` (the default) the cells are
    exact (one per distinct in-degree vector) and, where no population has implicit rates, solved by Newton from
    a coarse model's solution (``exact.py``); otherwise Newton on the model itself."""
    cfg = to_plain(cfg)
    model = model_from_config(cfg, scaffold)
    options = solve_options(cfg)
    bins = int((cfg.get("meanfield") or {}).get("scaffold_bins", 0))
    exact = degree_source(cfg, scaffold) == "scaffold" and bins <= 0
    if exact and not any(model.has_implicit_rates(n) for n in model.populations):
        coarse, medium = (rebinned(model, scaffold, coarse_bins(model, n)) for n in COARSE_CELLS)
        return model, solve_exact(model, coarse, [medium], **options)
    if exact:  # implicit rates: a root search per node is too dear for exact cells, fall back to binning
        model = model_from_config(cfg, scaffold, bins=COARSE_BINS)
    result = solve(model, **options)
    method = {"laws": "Gauss nodes of the degree laws", "scaffold": f"{bins} quantile bins per input"}
    result.discretisation = {
        "method": f"{COARSE_BINS} quantile bins per input (implicit rates: exact cells too dear)"
        if exact
        else method[degree_source(cfg, scaffold)],
        "cells": {name: int(p.nodes.k.shape[0]) for name, p in model.populations.items()},
    }
    return model, result


def model_from_config(
    cfg: Mapping[str, Any] | Any, scaffold: SparseScaffold | None = None, bins: int | dict[str, int] | None = None
) -> MeanFieldModel:
    """Mean-field model of ``cfg``. ``meanfield.degrees`` = ``laws`` takes the degree laws of the connectivity
    rules; ``scaffold`` the realised degrees of ``scaffold`` (which must then be given; ``auto``: scaffold when
    given), binned by ``bins`` (default ``meanfield.scaffold_bins``; <= 0: exact cells; a dict: per population).
    The model's ``block_info`` tells how each plastic block entered the theory."""
    cfg = file_scaffold_hook(to_plain(cfg))
    validate_run_config(cfg)
    mf = cfg.get("meanfield") or {}
    source = degree_source(cfg, scaffold)
    bins = int(mf.get("scaffold_bins", 0)) if bins is None else bins
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
            nodes = nodes_from_scaffold(scaffold, name, bins[name] if isinstance(bins, dict) else bins)
        else:
            nodes = nodes_from_laws(
                name,
                {pre: law for (post, pre), law in laws.items() if post == name},
                {post: law for (post, pre), law in laws.items() if pre == name},
                int(mf.get("degree_order", 16)),
            )
        mu_ext, sigma_ext = drives[name].moments(pop.tau_m_ms) if name in drives else (0.0, 0.0)
        ceiling = pop.max_rate_hz
        lam_ext, s3_ext, _, _ = drive_jumps(drives.get(name), pop.tau_m_ms)
        transfer = transfer_of(cfg, name, pop, drives.get(name))
        pops.append(PopulationTheory(name, transfer, pop.tau_m_ms, mu_ext, sigma_ext, nodes, ceiling, lam_ext, s3_ext))
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
                *trace_law_of(cfg),
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


__all__ = [
    "DEGREE_SOURCES",
    "degree_source",
    "drive_jumps",
    "model_from_config",
    "plastic_block",
    "solve_from_config",
    "solve_options",
    "trace_law_of",
]
