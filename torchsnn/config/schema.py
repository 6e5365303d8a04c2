"""Structured-config schemas (dataclasses) of the config groups, registered in Hydra's ConfigStore.

Each group's YAML files extend their schema (``defaults: [base_<group>, _self_]``), so at composition time
OmegaConf rejects unknown keys and values of the wrong type (``simulation.dt_ms=abc``) with the key's full path,
before anything runs. Ranges and cross-field rules (delay >= dt, window after transient, projections between
existing populations, ...) are then checked by ``validate_run_config``, still before anything is built; the
parameters of ``_target_`` classes (neuron, drive, connectivity, degree laws, plasticity rules) are checked against
their constructors' signatures and by the constructors themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore


@dataclass
class SimulationSchema:
    dt_ms: float = 0.1
    duration_ms: float = 6000.0
    transient_ms: float = 1000.0
    device: str = "auto"
    backend: str = "auto"  # auto | numba | torch | triton (torchsnn.kernels.backend)
    replicas: int = 1
    raster_neurons: int = 50
    raster_ms: float = 1000.0
    voltage_every_ms: float = 1.0
    threads: int | None = None
    health_check_ms: float = 100.0
    max_rate_fraction: float = 0.5
    checkpoint_every_ms: float = 10000.0
    checkpoint_keep: int = 3


@dataclass
class LoggingSchema:
    progress: bool = True
    tensorboard: bool = True
    log_every_ms: float = 100.0
    weights_every_ms: float = 100.0
    figures: bool = True
    nwb: bool = False  # <run dir>/run.nwb: spike trains, rates, final weights (pip install -e ".[nwb]")
    export_scaffold: bool = False  # <run dir>/scaffold_edges.npz, readable by scaffold=file scaffold.path=...


@dataclass
class MeanFieldSchema:
    degrees: str = "auto"
    degree_order: int = 16
    scaffold_bins: int = 0
    gh_order_mu: int = 16
    gh_order_sigma: int = 4
    qmc_points: int = 1024
    lowrank_tol: float = 1e-2
    lowrank_max_rate_hz: float = 40.0
    tol: float = 1e-10
    max_iter: int = 40
    continuation: int = 0
    initial_rate_hz: float = 5.0
    require_stable: bool = True
    samples: int = 200_000
    input_statistics: str = "poisson"  # poisson | renewal | renewal_adiabatic (theory §8.2, meanfield/regularity.py)


@dataclass
class ScaffoldSchema:
    law: str = "torchsnn.scaffold.GammaDegree"
    cv: float = 0.4
    cv_from_i: float = 0.0
    r: float = 0.0
    path: str | None = None  # scaffold=file: the network's edges from this file (torchsnn.scaffold.from_file)
    theory_degrees: str = "scaffold"  # scaffold=file: the theory's degrees, scaffold (realised) | laws (marginals)


@dataclass
class PlasticitySchema:
    rule: Any = None
    projections: list[str] = field(default_factory=list)
    r_p_hz: Any = 1.0  # one rate, or a list with one per replica
    update_every_ms: float = 5.0
    initial_weights: str = "constant"
    initial_traces: str = "theory"
    initial_rate_hz: float = 5.0
    trace_noise: bool = True  # theory: finite-alpha weight law (meanfield/trace_noise.py); false: w = f(nu)


@dataclass
class PopulationSchema:
    size: int = 1
    excitatory: bool = True
    neuron: Any = None
    drive: Any = None


@dataclass
class ProjectionSchema:
    pre: str = "???"
    post: str = "???"
    weight_mv: float = 0.0
    delay_ms: float = 1.5
    connectivity: Any = None


@dataclass
class NetworkSchema:
    populations: dict[str, PopulationSchema] = field(default_factory=dict)
    projections: dict[str, ProjectionSchema] = field(default_factory=dict)


SCHEMAS = {
    "simulation": SimulationSchema,
    "logging": LoggingSchema,
    "meanfield": MeanFieldSchema,
    "scaffold": ScaffoldSchema,
    "plasticity": PlasticitySchema,
    "network": NetworkSchema,
}


def register_schemas() -> None:
    """Store every schema as ``<group>/base_<group>`` (idempotent)."""
    store = ConfigStore.instance()
    for group, schema in SCHEMAS.items():
        store.store(group=group, name=f"base_{group}", node=schema)


register_schemas()
