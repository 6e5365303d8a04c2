"""Every bad input is one clear line and exit code 2, before any work, in the key the user typed.

A table of bad command-line inputs, every field of every group plus the cases that once gave tracebacks or were
accepted silently (issue 13). Each row is composed once with Hydra's compose API and run through the entry point's
own ``execute`` in-process (the same code ``python -m torchsnn.run`` runs after composing), so the table costs
about a composition per row; composition errors of Hydra itself (types, unknown keys, missing files) go through
the same message builder, and two of them through the real command line in-process.
"""

from __future__ import annotations

import contextlib
import io
import logging
import runpy
import sys

import pytest
from testkit import compose_config

from torchsnn.config import builder
from torchsnn.run import execute
from torchsnn.scaffold import SparseScaffold

PLASTIC = ["+experiment=plastic_pre"]
BRUNEL = ["network=brunel"]
# (overrides, the field the message must name)
BAD: list[tuple[list[str], str]] = [
    (["seed=-1"], "seed"),
    (["seed=1.5"], "seed"),
    (["seed=abc"], "seed"),
    (["mode=foo"], "mode"),
    # simulation
    (["simulation.dt_ms=0"], "simulation.dt_ms"),
    (["simulation.dt_ms=-0.1"], "simulation.dt_ms"),
    (["simulation.dt_ms=nan"], "simulation.dt_ms"),
    (["simulation.dt_ms=inf"], "simulation.dt_ms"),
    (["simulation.duration_ms=0"], "simulation.duration_ms"),
    (["simulation.duration_ms=-5"], "simulation.duration_ms"),
    (["simulation.duration_ms=nan"], "simulation.duration_ms"),
    (["simulation.duration_ms=inf"], "simulation.duration_ms"),
    (["simulation.transient_ms=-1"], "simulation.transient_ms"),
    (["simulation.transient_ms=nan"], "simulation.transient_ms"),
    (["simulation.transient_ms=6000"], "simulation.transient_ms"),
    (["simulation.device=gpu"], "simulation.device"),
    (["simulation.device=cuda:7"], "simulation.device"),
    (["simulation.replicas=0"], "simulation.replicas"),
    (["simulation.replicas=-2"], "simulation.replicas"),
    (["simulation.raster_neurons=-1"], "simulation.raster_neurons"),
    (["simulation.raster_ms=-5"], "simulation.raster_ms"),
    (["simulation.raster_ms=nan"], "simulation.raster_ms"),
    (["simulation.voltage_every_ms=-1"], "simulation.voltage_every_ms"),
    (["simulation.voltage_every_ms=nan"], "simulation.voltage_every_ms"),
    (["simulation.threads=-1"], "simulation.threads"),
    (["simulation.health_check_ms=-1"], "simulation.health_check_ms"),
    (["simulation.health_check_ms=nan"], "simulation.health_check_ms"),
    (["simulation.max_rate_fraction=0"], "simulation.max_rate_fraction"),
    (["simulation.max_rate_fraction=1.5"], "simulation.max_rate_fraction"),
    (["simulation.max_rate_fraction=nan"], "simulation.max_rate_fraction"),
    (["simulation.checkpoint_every_ms=-1"], "simulation.checkpoint_every_ms"),
    (["simulation.checkpoint_every_ms=inf"], "simulation.checkpoint_every_ms"),
    (["simulation.checkpoint_keep=0"], "simulation.checkpoint_keep"),
    # logging
    (["logging.log_every_ms=-1"], "logging.log_every_ms"),
    (["logging.log_every_ms=0"], "logging.log_every_ms"),
    (["logging.log_every_ms=nan"], "logging.log_every_ms"),
    (["logging.log_every_ms=0.01"], "logging.log_every_ms"),
    (["logging.weights_every_ms=0"], "logging.weights_every_ms"),
    (["logging.weights_every_ms=-1"], "logging.weights_every_ms"),
    (["logging.weights_every_ms=inf"], "logging.weights_every_ms"),
    # meanfield
    (["meanfield.degrees=foo"], "meanfield.degrees"),
    (["meanfield.degree_order=0"], "meanfield.degree_order"),
    (["meanfield.degree_order=-1"], "meanfield.degree_order"),
    (["meanfield.degree_order=100000"], "meanfield.degree_order"),
    (["meanfield.scaffold_bins=-1"], "meanfield.scaffold_bins"),
    (["meanfield.degrees=scaffold", "meanfield.scaffold_bins=-2"], "meanfield.scaffold_bins"),
    (["neuron.transfer=gauss"], "neuron.transfer"),
    (["+network.populations.I.neuron.transfer=exact"], "network.populations.I.neuron.transfer"),
    (["meanfield.gh_order_mu=0"], "meanfield.gh_order_mu"),
    (["meanfield.gh_order_sigma=0"], "meanfield.gh_order_sigma"),
    (["meanfield.gh_order_sigma=-3"], "meanfield.gh_order_sigma"),
    (["meanfield.qmc_points=0"], "meanfield.qmc_points"),
    (["meanfield.lowrank_tol=0"], "meanfield.lowrank_tol"),
    (["meanfield.lowrank_tol=-1"], "meanfield.lowrank_tol"),
    (["meanfield.lowrank_tol=nan"], "meanfield.lowrank_tol"),
    (["meanfield.lowrank_tol=2"], "meanfield.lowrank_tol"),
    (["meanfield.lowrank_max_rate_hz=0"], "meanfield.lowrank_max_rate_hz"),
    (["meanfield.lowrank_max_rate_hz=nan"], "meanfield.lowrank_max_rate_hz"),
    (["meanfield.tol=nan"], "meanfield.tol"),
    (["meanfield.tol=-1"], "meanfield.tol"),
    (["meanfield.tol=0"], "meanfield.tol"),
    (["meanfield.tol=inf"], "meanfield.tol"),
    (["meanfield.tol=5"], "meanfield.tol"),
    (["meanfield.max_iter=0"], "meanfield.max_iter"),
    (["meanfield.max_iter=-5"], "meanfield.max_iter"),
    (["meanfield.continuation=-1"], "meanfield.continuation"),
    (["meanfield.initial_rate_hz=nan"], "meanfield.initial_rate_hz"),
    (["meanfield.initial_rate_hz=-5"], "meanfield.initial_rate_hz"),
    (["meanfield.initial_rate_hz=0"], "meanfield.initial_rate_hz"),
    (["meanfield.initial_rate_hz=inf"], "meanfield.initial_rate_hz"),
    (["meanfield.initial_rate_hz=1e6"], "meanfield.initial_rate_hz"),
    (["meanfield.samples=0"], "meanfield.samples"),
    (["meanfield.samples=1"], "meanfield.samples"),
    (["meanfield.samples=-3"], "meanfield.samples"),
    # scaffold (reported in the key typed, not in the projections that interpolate it)
    (["scaffold.cv=-0.5"], "scaffold.cv"),
    (["scaffold.cv=nan"], "scaffold.cv"),
    (["scaffold.cv_from_i=-1"], "scaffold.cv_from_i"),
    (["scaffold.r=2"], "scaffold.r"),
    (["scaffold.r=-1.5"], "scaffold.r"),
    (["scaffold.r=nan"], "scaffold.r"),
    (["scaffold.law=builtins.eval"], "scaffold.law"),
    (["scaffold.law=os.system"], "scaffold.law"),
    (["scaffold.law=subprocess.Popen"], "scaffold.law"),
    (["scaffold.law=torchsnn.scaffold.NoSuchDegree"], "scaffold.law"),
    (["scaffold.law=antigravity.Fly"], "scaffold.law"),
    # neuron (the global group; a population's own override is reported at the population)
    (["neuron.tau_m_ms=-20"], "neuron.tau_m_ms"),
    (["neuron.tau_m_ms=0"], "neuron.tau_m_ms"),
    (["neuron.tau_m_ms=nan"], "neuron.tau_m_ms"),
    (["neuron.tau_m_ms=inf"], "neuron.tau_m_ms"),
    (["neuron.theta_mv=inf"], "neuron.theta_mv"),
    (["neuron.theta_mv=nan"], "neuron.theta_mv"),
    (["neuron.v_reset_mv=-inf"], "neuron.v_reset_mv"),
    (["neuron.v_reset_mv=25"], "neuron.v_reset_mv"),
    (["neuron.v_reset_mv=nan"], "neuron.v_reset_mv"),
    (["neuron.tau_ref_ms=-1"], "neuron.tau_ref_ms"),
    (["neuron.tau_ref_ms=nan"], "neuron.tau_ref_ms"),
    (["+neuron.foo_mv=1"], "neuron.foo_mv"),
    (["neuron._target_=torchsnn.populations.NoSuchNeuron"], "neuron._target_"),
    (["neuron._target_=os.system"], "neuron._target_"),
    (["neuron._target_=torchsnn.populations.PoissonDrive"], "neuron._target_"),
    (["neuron._target_=torchsnn.pipeline.run"], "neuron._target_"),
    (["+network.populations.I.neuron.tau_m_ms=-1"], "network.populations.I.neuron.tau_m_ms"),
    # drive
    (["drive.k_ext=-5"], "drive.k_ext"),
    (["drive.nu_ext_hz=-1"], "drive.nu_ext_hz"),
    (["drive.nu_ext_hz=nan"], "drive.nu_ext_hz"),
    (["drive.nu_ext_hz=inf"], "drive.nu_ext_hz"),
    (["drive.nu_ext_hz=1e30"], "drive.nu_ext_hz"),
    (["drive.j_ext_mv=nan"], "drive.j_ext_mv"),
    (["drive.j_ext_mv=inf"], "drive.j_ext_mv"),
    (["drive.k_ext_inh=-1"], "drive.k_ext_inh"),
    (["drive.nu_ext_inh_hz=-3"], "drive.nu_ext_inh_hz"),
    (["drive.j_ext_inh_mv=nan"], "drive.j_ext_inh_mv"),
    (["drive=gaussian", "drive.mu_mv=nan"], "drive.mu_mv"),
    (["drive=gaussian", "drive.mu_mv=inf"], "drive.mu_mv"),
    (["drive=gaussian", "drive.mu_mv=-inf"], "drive.mu_mv"),
    (["drive=gaussian", "drive.sigma_mv=-1"], "drive.sigma_mv"),
    (["drive=gaussian", "drive.sigma_mv=nan"], "drive.sigma_mv"),
    (["drive=gaussian", "~drive.mu_mv"], "drive.mu_mv"),
    (
        ["network.populations.E.drive={_target_:subprocess.Popen,args:[touch,/tmp/torchsnn_pwned]}"],
        "network.populations.E.drive._target_",
    ),
    (["+network.populations.I.drive.nu_ext_hz=nan"], "network.populations.I.drive.nu_ext_hz"),
    # network
    (["network.populations.E.size=0"], "network.populations.E.size"),
    (["network.populations.E.size=-5"], "network.populations.E.size"),
    (["network.populations.I.size=0"], "network.populations.I.size"),
    (["network.projections.EE.weight_mv=-1"], "network.projections.EE.weight_mv"),
    (["network.projections.EE.weight_mv=nan"], "network.projections.EE.weight_mv"),
    (["network.projections.EE.weight_mv=inf"], "network.projections.EE.weight_mv"),
    (["network.projections.EE.delay_ms=0"], "network.projections.EE.delay_ms"),
    (["network.projections.EE.delay_ms=0.05"], "network.projections.EE.delay_ms"),
    (["network.projections.EE.delay_ms=0.15"], "network.projections.EE.delay_ms"),
    (["network.projections.EE.delay_ms=nan"], "network.projections.EE.delay_ms"),
    (["network.projections.EE.pre=X"], "network.projections.EE.pre"),
    (["network.projections.II.post=Y"], "network.projections.II.post"),
    (["network.projections.EE.connectivity._target_=os.system"], "network.projections.EE.connectivity._target_"),
    (["network.projections.EE.connectivity.in_degree.mean=-5"], "network.projections.EE.connectivity.in_degree"),
    (["network.projections.EE.connectivity.in_degree.mean=nan"], "network.projections.EE.connectivity.in_degree"),
    (["+network.projections.EE.connectivity.in_degree.bar=2"], "network.projections.EE.connectivity.in_degree.bar"),
    (["scaffold.cv=1.0", "network.populations.E.size=2000"], "scaffold.cv"),  # the typed key inside the law
    (["scaffold.cv=5"], "scaffold.cv"),
    (["scaffold.cv=0.5", "scaffold.r=-0.99"], "scaffold.r"),
    ([*BRUNEL, "network.projections.EE.connectivity.indegree=20000"], "network.projections.EE.connectivity.indegree"),
    ([*BRUNEL, "network.projections.EE.connectivity.indegree=-1"], "network.projections.EE.connectivity.indegree"),
    (
        [*BRUNEL, "mode=theory", "network.projections.EE.connectivity.indegree=20000"],
        "network.projections.EE.connectivity.indegree",
    ),
    # plasticity
    ([*PLASTIC, "plasticity.r_p_hz=0"], "plasticity.r_p_hz"),
    ([*PLASTIC, "plasticity.r_p_hz=-1"], "plasticity.r_p_hz"),
    ([*PLASTIC, "plasticity.r_p_hz=nan"], "plasticity.r_p_hz"),
    ([*PLASTIC, "plasticity.r_p_hz=[1,2]"], "plasticity.r_p_hz"),
    ([*PLASTIC, "plasticity.update_every_ms=0"], "plasticity.update_every_ms"),
    ([*PLASTIC, "plasticity.update_every_ms=0.05"], "plasticity.update_every_ms"),
    ([*PLASTIC, "plasticity.initial_weights=foo"], "plasticity.initial_weights"),
    ([*PLASTIC, "plasticity.initial_traces=foo"], "plasticity.initial_traces"),
    ([*PLASTIC, "plasticity.initial_rate_hz=-1"], "plasticity.initial_rate_hz"),
    ([*PLASTIC, "plasticity.initial_rate_hz=nan"], "plasticity.initial_rate_hz"),
    ([*PLASTIC, "plasticity.projections=[XX]"], "plasticity.projections"),
    ([*PLASTIC, "plasticity.rule._target_=os.system"], "plasticity.rule._target_"),
    ([*PLASTIC, "plasticity.rule._target_=torchsnn.scaffold.GammaDegree"], "plasticity.rule._target_"),
    ([*PLASTIC, "plasticity.rule.w_max_mv=nan"], "plasticity.rule.w_max_mv"),
    ([*PLASTIC, "plasticity.rule.tau_w_ms=-5"], "plasticity.rule.tau_w_ms"),
    # studies
    (["+experiment=alpha_sweep", "study._target_=os.system"], "study._target_"),
    (["+experiment=alpha_sweep", "study._target_=torchsnn.plasticity.SaturatingPreRule"], "study._target_"),
]


def _run_one(overrides: list[str], tmp_path, caplog) -> tuple[int, str]:
    cfg = compose_config(overrides)
    caplog.clear()
    err = io.StringIO()
    with caplog.at_level(logging.INFO, logger="torchsnn"), contextlib.redirect_stderr(err):
        code = execute(cfg, tmp_path / "run", overrides)
    return code, caplog.text + err.getvalue()


@pytest.fixture
def no_work(monkeypatch):
    """Nothing may be wired or built as a network before an invalid input is refused."""

    def fail(*args, **kwargs):
        raise AssertionError("work started although the input is invalid")

    monkeypatch.setattr(SparseScaffold, "build", fail)
    monkeypatch.setattr(builder, "build_network", fail)


def test_the_table_is_large_and_covers_every_group():
    assert len(BAD) >= 120, len(BAD)
    for group in ("simulation", "logging", "meanfield", "scaffold", "neuron", "drive", "network", "plasticity"):
        assert any(field.startswith(group) for _, field in BAD), group


@pytest.mark.parametrize(("overrides", "field"), BAD, ids=[" ".join(o) for o, _ in BAD])
def test_a_bad_input_is_exit_2_with_its_field_and_no_traceback(overrides, field, tmp_path, caplog, no_work):
    code, text = _run_one(overrides, tmp_path, caplog)
    assert code == 2, text
    line = [row for row in text.splitlines() if "invalid configuration:" in row]
    assert line, text
    assert f"invalid configuration: {field}" in line[0], line[0]
    assert "Traceback" not in text, text
    assert not (tmp_path / "run" / "status.json").exists()  # refused before the run folder was taken


HYDRA_BAD = [
    ("simulation.dt_ms=abc", "simulation.dt_ms"),
    ("simulation.replicas=2.5", "simulation.replicas"),
    ("logging.progress=maybe", "logging.progress"),
    ("meanfield.gh_order_mu=many", "meanfield.gh_order_mu"),
    ("network.populations.E.size=big", "network.populations.E.size"),
    ("network.populations.E.excitatory=maybe", "network.populations.E.excitatory"),
    ("plasticity.update_every_ms=fast", "plasticity.update_every_ms"),
    ("simulation.dtt_ms=0.1", "simulation.dtt_ms"),
    ("meanfield.tolerance=1e-9", "meanfield.tolerance"),
    ("scaffold.rr=0.5", "scaffold.rr"),
    ("drive=nonexistent", "drive"),
    ("network.populations.E.size=[1", "network.populations.E.size"),
    ("+drive=poisson", "drive"),
]


@pytest.mark.parametrize(("override", "field"), HYDRA_BAD, ids=[o for o, _ in HYDRA_BAD])
def test_hydra_composition_errors_are_reported_in_the_same_style(override, field):
    from torchsnn.config.report import describe_hydra_error

    with pytest.raises(Exception) as info:
        compose_config([override])
    err = describe_hydra_error(info.value, [override])
    assert err.field == field, str(err)
    if "=" in override and not override.startswith("+"):
        assert override.split("=", 1)[1] in str(err), str(err)


@pytest.mark.filterwarnings("ignore:'torchsnn.run' found in sys.modules:RuntimeWarning")
@pytest.mark.parametrize("override", ["simulation.dt_ms=abc", "simulation.dtt_ms=0.1", "drive=nonexistent"])
def test_the_command_line_maps_hydra_errors_to_exit_2(override, tmp_path, monkeypatch):
    """The real entry point (``python -m torchsnn.run``), in-process: one line on stderr, exit code 2."""
    monkeypatch.setattr(sys, "argv", ["torchsnn.run", override, f"hydra.run.dir={tmp_path}"])
    err = io.StringIO()
    with pytest.raises(SystemExit) as info, contextlib.redirect_stderr(err):
        runpy.run_module("torchsnn.run", run_name="__main__")
    assert info.value.code == 2
    text = err.getvalue()
    assert text.startswith(f"invalid configuration: {override.split('=')[0]}"), text
    assert "Traceback" not in text
