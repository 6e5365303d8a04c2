"""Invalid run configs (composed from conf/ with Hydra's compose API) fail in build_network with a ConfigError that
names the config field, the offending value and what is allowed, before any work: validate_run_config errors before
anything is built, errors of a class's parameters while instantiating (before the scaffold is wired), and errors of
a connectivity rule against its block before any block is wired (architecture.md, contract 8)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

import torchsnn.config.builder as builder
from torchsnn.config import build_network
from torchsnn.errors import ConfigError
from torchsnn.network import Network
from torchsnn.scaffold import ConfigurationModel, FixedInDegree, PairwiseBernoulli, SparseScaffold

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def compose_config(overrides: Sequence[str]):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def _forbid(monkeypatch: pytest.MonkeyPatch, obj, attr: str, what: str) -> None:
    def fail(*args, **kwargs):
        raise AssertionError(f"{what} was called although the config is invalid")

    monkeypatch.setattr(obj, attr, fail)


def _forbid_wiring(monkeypatch: pytest.MonkeyPatch) -> None:
    for rule in (ConfigurationModel, FixedInDegree, PairwiseBernoulli):
        _forbid(monkeypatch, rule, "connect", f"{rule.__name__}.connect (wiring)")
    _forbid(monkeypatch, Network, "__init__", "Network()")


def _check(err: ConfigError, field: str, value: str, rule: Sequence[str]) -> None:
    msg = str(err)
    assert field in msg, msg
    assert value in msg, msg
    for word in rule:
        assert word in msg, msg


# (id, overrides, field path, value as printed, words of the allowed range)
VALIDATE_CASES = [
    ("negative size", ["network.populations.E.size=-5"], "network.populations.E.size", "-5", [">= 1"]),
    ("zero size", ["network.populations.I.size=0"], "network.populations.I.size", "0", [">= 1"]),
    ("dt zero", ["simulation.dt_ms=0"], "simulation.dt_ms", "0", ["> 0"]),
    ("dt negative", ["simulation.dt_ms=-0.1"], "simulation.dt_ms", "-0.1", ["> 0"]),
    (
        "transient = duration",
        ["simulation.duration_ms=3000", "simulation.transient_ms=3000"],
        "simulation.transient_ms",
        "3000",
        ["below simulation.duration_ms (3000"],
    ),
    (
        "transient > duration",
        ["simulation.duration_ms=400", "simulation.transient_ms=500"],
        "simulation.transient_ms",
        "500",
        ["below simulation.duration_ms (400"],
    ),
    (
        "delay below dt",
        ["network.projections.EE.delay_ms=0.05"],
        "network.projections.EE.delay_ms",
        "0.05",
        [">= simulation.dt_ms (0.1)"],
    ),
    ("delay zero", ["network.projections.IE.delay_ms=0"], "network.projections.IE.delay_ms", "0", ["> 0"]),
    (
        "unknown pre population",
        ["network.projections.EE.pre=X"],
        "network.projections.EE.pre",
        "'X'",
        ["must name a population", "E, I"],
    ),
    (
        "unknown post population",
        ["network.projections.II.post=Y"],
        "network.projections.II.post",
        "'Y'",
        ["must name a population"],
    ),
    (
        "negative weight",
        ["network.projections.EI.weight_mv=-1.0"],
        "network.projections.EI.weight_mv",
        "-1.0",
        [">= 0"],
    ),
    ("zero replicas", ["simulation.replicas=0"], "simulation.replicas", "0", [">= 1"]),
    ("unknown device", ["simulation.device=gpu"], "simulation.device", "'gpu'", ["auto, cpu, cuda"]),
    ("negative seed", ["seed=-1"], "seed", "-1", [">= 0"]),
    # the scaffold group is checked where the user sets it (the projections interpolate it)
    ("negative cv", ["scaffold.cv=-0.5"], "scaffold.cv", "-0.5", [">= 0"]),
    ("|r| > 1", ["scaffold.r=1.5"], "scaffold.r", "1.5", ["[-1, 1]"]),
    ("r < -1", ["scaffold.r=-1.2"], "scaffold.r", "-1.2", ["[-1, 1]"]),
]


@pytest.mark.parametrize(
    ("overrides", "field", "value", "rule"), [c[1:] for c in VALIDATE_CASES], ids=[c[0] for c in VALIDATE_CASES]
)
def test_validation_errors_come_before_anything_is_built(monkeypatch, overrides, field, value, rule):
    cfg = compose_config(overrides)
    _forbid(monkeypatch, SparseScaffold, "build", "SparseScaffold.build")
    _forbid(monkeypatch, builder, "build_populations", "build_populations")
    _forbid_wiring(monkeypatch)
    with pytest.raises(ConfigError) as info:
        build_network(cfg)
    _check(info.value, field, value, rule)
    assert info.value.field == field


INSTANTIATE_CASES = [
    (
        "negative cv in a projection",
        ["network.projections.EE.connectivity.in_degree.cv=-0.5"],
        "network.projections.EE.connectivity.in_degree.cv",
        "-0.5",
        [">= 0"],
    ),
    (
        "|r| > 1 in a projection",
        ["network.projections.EE.connectivity.r=1.5"],
        "network.projections.EE.connectivity.r",
        "1.5",
        ["[-1.0, 1.0]"],
    ),
    (
        "unknown neuron parameter",
        ["+neuron.foo_mv=1"],
        "network.populations.E.neuron.foo_mv",
        "1",
        ["unknown parameter of LIFPopulation", "accepted", "tau_m_ms"],
    ),
    (
        "unknown degree-law parameter",
        ["+network.projections.EE.connectivity.in_degree.bar=2"],
        "network.projections.EE.connectivity.in_degree.bar",
        "2",
        ["unknown parameter of GammaDegree", "mean, cv"],
    ),
    (
        "missing drive parameter",
        ["drive=gaussian", "~drive.mu_mv"],
        "network.populations.E.drive.mu_mv",
        "None",
        ["is required by GaussianDrive"],
    ),
    (
        "missing rule parameter",
        ["network=brunel", "~network.projections.EE.connectivity.indegree"],
        "network.projections.EE.connectivity.indegree",
        "None",
        ["is required by FixedInDegree"],
    ),
    ("negative tau_m", ["neuron.tau_m_ms=-20"], "network.populations.E.neuron.tau_m_ms", "-20", ["> 0"]),
    (
        "reset above threshold",
        ["neuron.v_reset_mv=25"],
        "network.populations.E.neuron.v_reset_mv",
        "25",
        ["below theta_mv"],
    ),
    ("negative noise", ["drive=gaussian", "drive.sigma_mv=-1"], "network.populations.E.drive.sigma_mv", "-1", [">= 0"]),
    (
        "unknown class",
        ["neuron._target_=torchsnn.populations.NoSuchNeuron"],
        "network.populations.E.neuron._target_",
        "NoSuchNeuron",
        ["cannot be imported"],
    ),
]


@pytest.mark.parametrize(
    ("overrides", "field", "value", "rule"), [c[1:] for c in INSTANTIATE_CASES], ids=[c[0] for c in INSTANTIATE_CASES]
)
def test_parameter_errors_name_the_config_path_and_come_before_wiring(monkeypatch, overrides, field, value, rule):
    cfg = compose_config(overrides)
    _forbid(monkeypatch, SparseScaffold, "build", "SparseScaffold.build")
    _forbid_wiring(monkeypatch)
    with pytest.raises(ConfigError) as info:
        build_network(cfg)
    _check(info.value, field, value, rule)
    assert info.value.field == field


RULE_CASES = [
    # the Gaussian copula cannot reach r = -0.99 with gamma(cv 0.5) marginals: reachable [-0.89, 1]
    ("unreachable r", ["scaffold.cv=0.5", "scaffold.r=-0.99"], "r", "-0.99", ["reachable Pearson r", "[-0.89"]),
    (
        "in-degree above candidates",
        ["network=brunel", "network.projections.EE.connectivity.indegree=20000"],
        "indegree",
        "20000",
        ["<= 9999"],
    ),
    (
        "degree law exceeding the population",
        ["scaffold.cv=1.0", "network.populations.E.size=2000"],
        "in_degree",
        "GammaDegree",
        ["presynaptic candidates"],
    ),
]


@pytest.mark.parametrize(
    ("overrides", "leaf", "value", "rule"), [c[1:] for c in RULE_CASES], ids=[c[0] for c in RULE_CASES]
)
def test_rule_errors_come_before_any_block_is_wired(monkeypatch, overrides, leaf, value, rule):
    """Checked against the block sizes in SparseScaffold.build, before any rule's connect is called."""
    cfg = compose_config(overrides)
    _forbid_wiring(monkeypatch)
    with pytest.raises(ConfigError) as info:
        build_network(cfg)
    _check(info.value, leaf, value, rule)
    assert info.value.field.endswith(leaf)


@pytest.mark.parametrize(
    ("overrides", "path"),
    [
        (["scaffold.r=-0.99"], "network.projections.EE.connectivity.r"),
        (
            ["network=brunel", "network.projections.EE.connectivity.indegree=20000"],
            "network.projections.EE.connectivity.indegree",
        ),
    ],
)
def test_rule_errors_name_the_config_path(overrides, path):
    """The field of a rule error found while validating the scaffold should be the config path the user can
    override (as for every other error), not the scaffold's internal block name ``projections[E<-E]``."""
    with pytest.raises(ConfigError) as info:
        build_network(compose_config(overrides))
    assert info.value.field == path, str(info.value)


def test_a_valid_tiny_config_builds():
    """Guard: the same compose path with valid overrides builds (so the errors above come from the overrides)."""
    built = build_network(
        compose_config(
            [
                "network=brunel",
                "network.populations.E.size=200",
                "network.populations.I.size=50",
                "network.projections.EE.connectivity.indegree=20",
                "network.projections.IE.connectivity.indegree=20",
                "network.projections.EI.connectivity.indegree=5",
                "network.projections.II.connectivity.indegree=5",
                "simulation.device=cpu",
            ]
        )
    )
    assert built.network.population_sizes() == {"E": 200, "I": 50}
    assert built.network.projections["EE"].n_edges == 200 * 20
