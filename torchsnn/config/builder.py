"""The one builder from a run config to objects: scaffold, populations, drives, projections, network."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from torchsnn.config.instantiate import instantiate, to_plain
from torchsnn.config.validate import validate_run_config
from torchsnn.errors import ConfigError
from torchsnn.estimators import RateEstimator
from torchsnn.network import Network
from torchsnn.plasticity import PlasticityRule
from torchsnn.populations import ExternalDrive, NeuronPopulation
from torchsnn.projection import Projection
from torchsnn.scaffold import ConnectivityRule, SparseScaffold


@dataclass
class Seeds:
    """Independent streams derived from the run's seed (numpy SeedSequence.spawn)."""

    scaffold: np.random.Generator
    dynamics: int
    initial_state: np.random.Generator

    @classmethod
    def from_seed(cls, seed: int) -> Seeds:
        scaffold_ss, dynamics_ss, initial_ss = np.random.SeedSequence(seed).spawn(3)
        return cls(
            np.random.default_rng(scaffold_ss),
            int(dynamics_ss.generate_state(1, dtype=np.uint64)[0] >> 1),
            np.random.default_rng(initial_ss),
        )


@dataclass
class BuiltRun:
    network: Network
    scaffold: SparseScaffold
    device: torch.device
    generator: torch.Generator
    config: dict[str, Any]


def resolve_device(spec: str) -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(spec)


def merged_population_spec(cfg: Mapping[str, Any], name: str, key: str) -> dict[str, Any] | None:
    """Per-population ``neuron`` / ``drive``: the population's own node replaces the global one when it names a
    ``_target_``, else it overrides single fields of the global group."""
    base = cfg.get(key)
    own = cfg["network"]["populations"][name].get(key)
    if own is None:
        return None if base is None else dict(base)
    own = dict(own)
    if "_target_" in own or base is None:
        return own
    return {**dict(base), **own}


def build_populations(cfg: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Neuron populations and their external drives, one per entry of ``network.populations``."""
    dt = float(cfg["simulation"]["dt_ms"])
    populations, drives = {}, {}
    for name, p in cfg["network"]["populations"].items():
        path = f"network.populations.{name}"
        neuron = merged_population_spec(cfg, name, "neuron")
        neuron = {k: v for k, v in neuron.items() if k != "transfer"} if neuron else neuron  # theory only
        populations[name] = instantiate(
            neuron,
            f"{path}.neuron",
            (NeuronPopulation,),
            name=name,
            size=int(p["size"]),
            dt_ms=dt,
            excitatory=bool(p.get("excitatory", True)),
        )
        drive_spec = merged_population_spec(cfg, name, "drive")
        if drive_spec is not None:
            drives[name] = instantiate(drive_spec, f"{path}.drive", (ExternalDrive,))
    return populations, drives


def build_rules(cfg: Mapping[str, Any]) -> dict[tuple[str, str], Any]:
    """Connectivity rule of every block, keyed (post, pre)."""
    return {
        (p["post"], p["pre"]): instantiate(
            p["connectivity"], f"network.projections.{name}.connectivity", (ConnectivityRule,)
        )
        for name, p in (cfg["network"].get("projections") or {}).items()
    }


def build_scaffold(cfg: Mapping[str, Any], rng: np.random.Generator) -> SparseScaffold:
    """Validate every connectivity rule against its block (errors carry the config path), then wire."""
    rules = build_rules(cfg)
    sizes = validate_rules(cfg, rules)
    device = resolve_device(cfg["simulation"].get("device", "auto"))  # wiring runs on the simulation's device
    return SparseScaffold.build(sizes, rules, rng, device=device)


def validate_rules(cfg: Mapping[str, Any], rules: Mapping[tuple[str, str], Any]) -> dict[str, int]:
    """Check every connectivity rule against the sizes of its block (errors carry the config path); returns the
    population sizes."""
    sizes = {name: int(p["size"]) for name, p in cfg["network"]["populations"].items()}
    for name, p in (cfg["network"].get("projections") or {}).items():
        try:
            rules[(p["post"], p["pre"])].validate(sizes[p["pre"]], sizes[p["post"]], p["pre"] == p["post"])
        except ConfigError as err:
            raise err.at(f"network.projections.{name}.connectivity") from None
    return sizes


def file_scaffold_hook(cfg: dict[str, Any]) -> dict[str, Any]:
    """``scaffold=file``: the file's blocks become the projections' connectivity (torchsnn.scaffold.from_file)."""
    from torchsnn.scaffold.from_file import apply_file_scaffold

    return apply_file_scaffold(cfg)


def r_p_values(plasticity: Mapping[str, Any]) -> float | list[float]:
    """``plasticity.r_p_hz``: one rate, or one per replica."""
    r_p = plasticity.get("r_p_hz", 1.0)
    return [float(v) for v in r_p] if isinstance(r_p, (list, tuple)) else float(r_p)


def build_plasticity_rule(cfg: Mapping[str, Any]) -> Any:
    """The plasticity rule of ``cfg`` (None without plastic projections)."""
    plasticity = cfg.get("plasticity") or {}
    if not plasticity.get("projections"):
        return None
    return instantiate(plasticity["rule"], "plasticity.rule", (PlasticityRule,))


def build_network(
    cfg: Mapping[str, Any] | Any,
    scaffold: SparseScaffold | None = None,
    predicted_rates_hz: Mapping[str, Tensor] | None = None,
) -> BuiltRun:
    """Validate ``cfg`` and build the network on its device (scaffold wired from the seed unless given).

    ``predicted_rates_hz`` (population -> (N,) predicted rate of each neuron) feeds ``initial_traces: theory``
    and ``initial_weights: theory`` of plastic runs."""
    cfg = file_scaffold_hook(to_plain(cfg))
    validate_run_config(cfg)
    sim, plasticity = cfg["simulation"], cfg.get("plasticity") or {}
    device = resolve_device(sim.get("device", "auto"))
    if sim.get("threads"):
        torch.set_num_threads(int(sim["threads"]))
    dt = float(sim["dt_ms"])
    seeds = Seeds.from_seed(int(cfg["seed"]))
    populations, drives = build_populations(cfg)
    if scaffold is None:
        scaffold = build_scaffold(cfg, seeds.scaffold)
    rule = build_plasticity_rule(cfg)
    plastic = set(plasticity.get("projections") or [])
    projections = {}
    for name, p in (cfg["network"].get("projections") or {}).items():
        block = scaffold.block(p["post"], p["pre"])
        projections[name] = Projection(
            name,
            block,
            float(p["weight_mv"]),
            populations[p["pre"]].sign,
            float(p["delay_ms"]),
            dt,
            rule if name in plastic else None,
        )
    traced = {end for name in plastic for end in (projections[name].pre, projections[name].post)}
    estimators = {
        name: RateEstimator(
            populations[name].size, r_p_values(plasticity), dt, float(plasticity.get("initial_rate_hz", 5.0))
        )
        for name in sorted(traced)
    }
    network = Network(
        populations,
        drives,
        projections,
        dt,
        estimators,
        float(plasticity.get("update_every_ms", 5.0)),
        backend=sim.get("backend", "auto"),
    ).to(device)
    generator = torch.Generator(device=device)
    generator.manual_seed(seeds.dynamics)
    rates, weights = initial_plastic_state(cfg, network, predicted_rates_hz, seeds.initial_state)
    network.reset(int(sim.get("replicas", 1)), generator, initial_weights_mv=weights, initial_rates_hz=rates)
    return BuiltRun(network, scaffold, device, generator, cfg)


def initial_plastic_state(
    cfg: Mapping[str, Any], network: Network, predicted: Mapping[str, Tensor] | None, rng: np.random.Generator
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Initial traces (rates) and plastic weights following ``plasticity.initial_traces`` / ``initial_weights``."""
    plasticity = cfg.get("plasticity") or {}
    needs_theory = plasticity.get("initial_traces") == "theory" or plasticity.get("initial_weights") == "theory"
    if network.estimators and needs_theory and predicted is None:
        raise ConfigError(
            "plasticity.initial_traces",
            "theory",
            "needs the predicted rates of the theory: run "
            "through torchsnn.pipeline (mode simulate/compare) or choose constant",
        )
    rates: dict[str, Tensor] = {}
    if plasticity.get("initial_traces") == "theory" and predicted is not None:
        rates = {name: torch.as_tensor(predicted[name], dtype=torch.float32) for name in network.estimators}
    weights: dict[str, Tensor] = {}
    for name, proj in network.projections.items():
        if not proj.plastic:
            continue
        mode = plasticity.get("initial_weights", "constant")
        if mode == "random":
            u = torch.as_tensor(rng.uniform(0.5, 1.5, proj.n_edges), dtype=torch.float32)
            weights[name] = u * proj.weight_magnitude_mv
        elif mode == "theory":
            pre = torch.as_tensor(predicted[proj.pre], dtype=torch.float64)
            post = torch.as_tensor(predicted[proj.post], dtype=torch.float64)
            with torch.no_grad():
                if proj.rule.pre_only:
                    weights[name] = proj.rule.steady_state(pre, torch.zeros_like(pre)).float()
                else:
                    idx_pre, idx_post = proj.pre_index_long.cpu(), proj.post_index_long.cpu()
                    weights[name] = proj.rule.steady_state(pre[idx_pre], post[idx_post]).float()
    return rates, weights
