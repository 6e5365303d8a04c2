"""Composition-time checks from the structured-config schemas: wrong types and unknown keys fail while the config
is composed, naming the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ConfigAttributeError, ValidationError

import torchsnn.config.schema  # noqa: F401  (registers the schemas)

ROOT = Path(__file__).resolve().parents[2]


def _compose(overrides):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("config", overrides=overrides)


@pytest.mark.parametrize(
    "override, key",
    [
        ("simulation.dt_ms=abc", "simulation.dt_ms"),
        ("simulation.replicas=2.5", "simulation.replicas"),
        ("logging.progress=maybe", "logging.progress"),
        ("meanfield.gh_order_mu=many", "meanfield.gh_order_mu"),
        ("network.populations.E.size=big", "network.populations.E.size"),
        ("plasticity.update_every_ms=fast", "plasticity.update_every_ms"),
    ],
)
def test_wrong_types_fail_at_composition(override, key):
    with pytest.raises(ConfigCompositionException) as err:
        _compose([override])
    cause = err.value.__cause__
    assert isinstance(cause, ValidationError), cause
    assert key.split(".")[-1] in str(cause)


@pytest.mark.parametrize("override", ["simulation.dtt_ms=0.1", "meanfield.tolerance=1e-9", "scaffold.rr=0.5"])
def test_unknown_keys_fail_at_composition(override):
    with pytest.raises(ConfigCompositionException) as err:
        _compose([override])
    assert isinstance(err.value.__cause__, ConfigAttributeError), err.value.__cause__
    assert f"full_key: {override.split('=')[0]}" in str(err.value.__cause__)


def test_the_cli_names_the_key_and_the_value():
    out = subprocess.run(
        [sys.executable, "-m", "torchsnn.run", "simulation.dt_ms=abc"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    text = out.stdout + out.stderr
    assert "invalid configuration: simulation.dt_ms = 'abc'" in text and "Traceback" not in text


def test_every_group_file_composes_with_its_schema():
    for group in ("simulation", "logging", "meanfield", "scaffold", "network", "plasticity"):
        for path in sorted((ROOT / "conf" / group).glob("*.yaml")):
            cfg = _compose([f"{group}={path.stem}"])
            assert cfg[group] is not None
