"""The theory of a network described by a run config: the same populations, drives, weights and connectivity
rules the simulator is built from."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torchsnn.config.builder import build_populations, build_rules
from torchsnn.config.instantiate import to_plain
from torchsnn.config.validate import validate_run_config
from torchsnn.errors import ConfigError
from torchsnn.meanfield.degrees import DegreeNodes, nodes_from_laws, nodes_from_scaffold
from torchsnn.meanfield.model import BlockTheory, MeanFieldModel, PopulationTheory
from torchsnn.scaffold import SparseScaffold

DEGREE_SOURCES = ("laws", "scaffold")


def model_from_config(cfg: Mapping[str, Any] | Any, scaffold: SparseScaffold | None = None) -> MeanFieldModel:
    """Mean-field model of ``cfg``. ``meanfield.degrees`` = ``laws`` takes the degree laws of the connectivity
    rules; ``scaffold`` the realised degrees of ``scaffold`` (which must then be given)."""
    cfg = to_plain(cfg)
    validate_run_config(cfg)
    mf = cfg.get("meanfield") or {}
    source = mf.get("degrees", "laws")
    if source not in DEGREE_SOURCES:
        raise ConfigError("meanfield.degrees", source, f"must be one of {', '.join(DEGREE_SOURCES)}")
    if source == "scaffold" and scaffold is None:
        raise ConfigError("meanfield.degrees", source, "needs a wired scaffold (run mode compare or simulate first)")
    populations, drives = build_populations(cfg)
    sizes = {name: pop.size for name, pop in populations.items()}
    rules = build_rules(cfg)
    laws = {key: rule.degree_laws(sizes[key[1]], sizes[key[0]], key[0] == key[1]) for key, rule in rules.items()}
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
        pops.append(PopulationTheory(name, pop.transfer_hz, pop.tau_m_ms, mu_ext, sigma_ext, nodes))
    blocks = [
        BlockTheory.static(p["post"], p["pre"], populations[p["pre"]].sign * float(p["weight_mv"]))
        for p in (cfg["network"].get("projections") or {}).values()
    ]
    return MeanFieldModel(pops, blocks, int(mf.get("gh_order_mu", 24)), int(mf.get("gh_order_sigma", 6)))


__all__ = ["DEGREE_SOURCES", "DegreeNodes", "model_from_config"]
