"""Checks of a composed run config that need no objects: done before anything is built or allocated."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from torchsnn.config.schema import SimulationSchema
from torchsnn.errors import ConfigError
from torchsnn.kernels.backend import KINDS as BACKEND_KINDS
from torchsnn.validation import check_finite, check_int, check_non_negative, check_positive, require

SIM = SimulationSchema()  # the defaults of a simulation section that omits a key (one place: the schema)


def validate_run_config(cfg: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigError` (field path, value, what is allowed) for the first invalid entry."""
    check_int("seed", cfg.get("seed"), minimum=0)
    sim = _section(cfg, "simulation")
    dt = check_positive("simulation.dt_ms", sim.get("dt_ms"))
    duration = check_positive("simulation.duration_ms", sim.get("duration_ms"))
    transient = check_non_negative("simulation.transient_ms", sim.get("transient_ms", SIM.transient_ms))
    require(
        transient < duration,
        "simulation.transient_ms",
        transient,
        f"must be below simulation.duration_ms ({duration}) so that a measurement window remains",
    )
    require(duration >= dt, "simulation.duration_ms", duration, f"must be at least one step (dt_ms = {dt})")
    check_int("simulation.replicas", sim.get("replicas", SIM.replicas), minimum=1)
    check_int("simulation.raster_neurons", sim.get("raster_neurons", SIM.raster_neurons), minimum=0)
    check_non_negative("simulation.raster_ms", sim.get("raster_ms", SIM.raster_ms))
    check_non_negative("simulation.voltage_every_ms", sim.get("voltage_every_ms", SIM.voltage_every_ms))
    check_non_negative("simulation.health_check_ms", sim.get("health_check_ms", SIM.health_check_ms))
    check_non_negative("simulation.checkpoint_every_ms", sim.get("checkpoint_every_ms", SIM.checkpoint_every_ms))
    check_int("simulation.checkpoint_keep", sim.get("checkpoint_keep", SIM.checkpoint_keep), minimum=1)
    fraction = sim.get("max_rate_fraction", SIM.max_rate_fraction)
    require(
        isinstance(fraction, (int, float)) and 0 < fraction <= 1,
        "simulation.max_rate_fraction",
        fraction,
        "must lie in (0, 1]",
    )
    if sim.get("threads") is not None:
        check_int("simulation.threads", sim["threads"], minimum=0)
    validate_device("simulation.device", sim.get("device", SIM.device))
    backend = sim.get("backend", SIM.backend)
    require(backend in BACKEND_KINDS, "simulation.backend", backend, f"must be one of {', '.join(BACKEND_KINDS)}")
    validate_logging(cfg.get("logging") or {}, dt)
    validate_meanfield(cfg.get("meanfield") or {})
    validate_transfers(cfg)
    validate_scaffold_group(cfg.get("scaffold") or {})
    validate_network(_section(cfg, "network"), dt)
    validate_plasticity(
        {**(cfg.get("plasticity") or {}), "_replicas": sim.get("replicas", SIM.replicas)}, cfg["network"], dt
    )


def validate_logging(logs: Mapping[str, Any], dt_ms: float) -> None:
    """``logging``: switches are booleans, intervals at least one step."""
    for key in ("progress", "tensorboard", "figures"):
        if key in logs:
            require(isinstance(logs[key], bool), f"logging.{key}", logs[key], "must be true or false")
    for key in ("log_every_ms", "weights_every_ms"):
        value = check_positive(f"logging.{key}", logs.get(key, 100.0))
        require(value >= dt_ms, f"logging.{key}", value, f"must be >= simulation.dt_ms ({dt_ms})")


# meanfield integers: (minimum, maximum); the maxima keep the quadrature grids and samples within memory
MEANFIELD_INTS: dict[str, tuple[int, int]] = {
    "degree_order": (1, 256),
    "scaffold_bins": (0, 4096),  # 0: exact cells (one per distinct in-degree vector)
    "gh_order_mu": (1, 128),
    "gh_order_sigma": (1, 128),
    "qmc_points": (1, 2**20),
    "max_iter": (1, 100_000),
    "continuation": (0, 10_000),
    "samples": (2, 10**8),
}
MEANFIELD_DEGREES = ("auto", "laws", "scaffold")
INPUT_STATISTICS = ("poisson", "renewal", "renewal_adiabatic")  # torchsnn.meanfield.regularity.INPUT_STATISTICS


TRANSFER_KINDS = ("siegert", "finite_jump")  # torchsnn.meanfield.transfers.TRANSFERS (not imported: kept light)


def validate_transfers(cfg: Mapping[str, Any]) -> None:
    """``neuron.transfer`` and ``network.populations.<name>.neuron.transfer``: a known transfer function."""
    nodes = {"neuron": cfg.get("neuron") or {}}
    for name, pop in ((cfg.get("network") or {}).get("populations") or {}).items():
        nodes[f"network.populations.{name}.neuron"] = (pop or {}).get("neuron") or {}
    for path, node in nodes.items():
        kind = node.get("transfer", "finite_jump") if hasattr(node, "get") else "finite_jump"
        require(kind in TRANSFER_KINDS, f"{path}.transfer", kind, f"must be one of {', '.join(TRANSFER_KINDS)}")


def validate_meanfield(mf: Mapping[str, Any]) -> None:
    """``meanfield``: degree source, quadrature orders, tolerance and the starting point of the solve.

    Extend here for new options (each check names ``meanfield.<key>``, the value and what is allowed)."""
    degrees = mf.get("degrees", "auto")
    require(
        degrees in MEANFIELD_DEGREES, "meanfield.degrees", degrees, f"must be one of {', '.join(MEANFIELD_DEGREES)}"
    )
    stats = mf.get("input_statistics", "poisson")
    require(
        stats in INPUT_STATISTICS, "meanfield.input_statistics", stats, f"must be one of {', '.join(INPUT_STATISTICS)}"
    )
    for key, (low, high) in MEANFIELD_INTS.items():
        if key in mf:
            value = check_int(f"meanfield.{key}", mf[key], minimum=low)
            require(value <= high, f"meanfield.{key}", mf[key], f"must be an integer in [{low}, {high}]")
    tol = check_positive("meanfield.tol", mf.get("tol", 1e-10))
    require(tol < 1, "meanfield.tol", tol, "must lie in (0, 1): max |x - F(x)| in scaled units")
    lowrank = check_positive("meanfield.lowrank_tol", mf.get("lowrank_tol", 1e-2))
    require(lowrank < 1, "meanfield.lowrank_tol", lowrank, "must lie in (0, 1): a relative error")
    check_positive("meanfield.lowrank_max_rate_hz", mf.get("lowrank_max_rate_hz", 40.0))
    rate = check_positive("meanfield.initial_rate_hz", mf.get("initial_rate_hz", 5.0))
    require(rate <= 1000.0, "meanfield.initial_rate_hz", rate, "must lie in (0, 1000] Hz")
    if "require_stable" in mf:
        require(
            isinstance(mf["require_stable"], bool),
            "meanfield.require_stable",
            mf["require_stable"],
            "must be true or false",
        )


def validate_scaffold_group(scaffold: Mapping[str, Any]) -> None:
    """``scaffold``: the shared degree-structure numbers (the law is checked as a ``_target_`` where it is used)."""
    for key in ("cv", "cv_from_i"):
        if key in scaffold:
            check_non_negative(f"scaffold.{key}", scaffold[key])
    if "r" in scaffold:
        r = check_finite("scaffold.r", scaffold["r"])
        require(-1 <= r <= 1, "scaffold.r", r, "must lie in [-1, 1]")


def replicas_of(plasticity: Mapping[str, Any]) -> int:
    return int(plasticity.get("_replicas", 1))


INITIAL_WEIGHTS = ("constant", "random", "theory")
INITIAL_TRACES = ("theory", "constant")


def validate_plasticity(plasticity: Mapping[str, Any], network: Mapping[str, Any], dt_ms: float) -> None:
    projections = plasticity.get("projections") or []
    require(
        isinstance(projections, (list, tuple)),
        "plasticity.projections",
        projections,
        "must be a list of projection names",
    )
    if not projections:
        return
    known = network.get("projections") or {}
    for name in projections:
        require(
            name in known, "plasticity.projections", name, f"must name projections of the network: {', '.join(known)}"
        )
    rule = plasticity.get("rule")
    require(
        isinstance(rule, Mapping) and "_target_" in rule,
        "plasticity.rule",
        rule,
        "plastic projections need a rule with _target_ (e.g. torchsnn.plasticity.SaturatingPreRule)",
    )
    r_p = plasticity.get("r_p_hz")
    if isinstance(r_p, (list, tuple)):
        replicas = replicas_of(plasticity)
        require(
            len(r_p) == replicas,
            "plasticity.r_p_hz",
            r_p,
            f"a list needs one value per replica (simulation.replicas = {replicas})",
        )
        for i, value in enumerate(r_p):
            check_positive(f"plasticity.r_p_hz[{i}]", value)
    else:
        check_positive("plasticity.r_p_hz", r_p)
    every = check_positive("plasticity.update_every_ms", plasticity.get("update_every_ms", 5.0))
    require(every >= dt_ms, "plasticity.update_every_ms", every, f"must be >= simulation.dt_ms ({dt_ms})")
    require(
        plasticity.get("initial_weights", "constant") in INITIAL_WEIGHTS,
        "plasticity.initial_weights",
        plasticity.get("initial_weights"),
        f"must be one of {', '.join(INITIAL_WEIGHTS)}",
    )
    require(
        plasticity.get("initial_traces", "theory") in INITIAL_TRACES,
        "plasticity.initial_traces",
        plasticity.get("initial_traces"),
        f"must be one of {', '.join(INITIAL_TRACES)}",
    )
    check_non_negative("plasticity.initial_rate_hz", plasticity.get("initial_rate_hz", 5.0))
    noise = plasticity.get("trace_noise", True)
    require(isinstance(noise, bool), "plasticity.trace_noise", noise, "must be true or false")


def validate_device(field: str, spec: Any) -> None:
    allowed = "must be auto, cpu, cuda or cuda:N"
    require(isinstance(spec, str), field, spec, allowed)
    if spec in ("auto", "cpu"):
        return
    try:
        dev = torch.device(spec)
    except (RuntimeError, ValueError):
        raise ConfigError(field, spec, allowed) from None
    require(dev.type == "cuda", field, spec, allowed)
    require(torch.cuda.is_available(), field, spec, "CUDA is not available on this machine: use cpu or auto")
    require(
        dev.index is None or dev.index < torch.cuda.device_count(),
        field,
        spec,
        f"this machine has {torch.cuda.device_count()} CUDA device(s)",
    )


def validate_network(net: Mapping[str, Any], dt_ms: float) -> None:
    pops = net.get("populations")
    require(
        isinstance(pops, Mapping) and len(pops) > 0,
        "network.populations",
        pops,
        "must map population names to {size, excitatory}",
    )
    for name, pop in pops.items():
        path = f"network.populations.{name}"
        require(isinstance(pop, Mapping), path, pop, "must be a mapping with size and excitatory")
        check_int(f"{path}.size", pop.get("size"), minimum=1)
        require(
            isinstance(pop.get("excitatory", True), bool),
            f"{path}.excitatory",
            pop.get("excitatory"),
            "must be true or false",
        )
    projs = net.get("projections") or {}
    require(isinstance(projs, Mapping), "network.projections", projs, "must map projection names to projections")
    seen: dict[tuple[str, str], str] = {}
    for name, proj in projs.items():
        path = f"network.projections.{name}"
        require(isinstance(proj, Mapping), path, proj, "must be a mapping with pre, post, weight_mv, delay_ms")
        for end in ("pre", "post"):
            require(proj.get(end) in pops, f"{path}.{end}", proj.get(end), f"must name a population: {', '.join(pops)}")
        key = (proj["post"], proj["pre"])
        require(key not in seen, path, f"{key[0]} <- {key[1]}", f"block already defined by projection {seen.get(key)}")
        seen[key] = name
        check_non_negative(f"{path}.weight_mv", proj.get("weight_mv"))
        delay = check_positive(f"{path}.delay_ms", proj.get("delay_ms"))
        require(
            delay >= dt_ms * (1 - 1e-9),
            f"{path}.delay_ms",
            delay,
            f"must be >= simulation.dt_ms ({dt_ms}): delta synapses need at least one step of delay",
        )
        require(
            abs(round(delay / dt_ms) * dt_ms - delay) <= 1e-6 * dt_ms,
            f"{path}.delay_ms",
            delay,
            f"must be a whole number of time steps (simulation.dt_ms = {dt_ms})",
        )
        conn = proj.get("connectivity")
        require(
            isinstance(conn, Mapping) and "_target_" in conn,
            f"{path}.connectivity",
            conn,
            "must name a connectivity rule with _target_ (e.g. torchsnn.scaffold.FixedInDegree)",
        )


def _section(cfg: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    node = cfg.get(key)
    require(isinstance(node, Mapping), key, node, "section missing from the config")
    return node
