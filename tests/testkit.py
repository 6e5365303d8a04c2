"""What every test folder shares (importable as ``testkit``: ``pythonpath = ["tests"]`` in pyproject.toml): the
repository paths, the Brunel neuron, an independent Siegert reference, Hydra composition of the run configs and
the entry point as a subprocess.

The Siegert reference is written from theory.md §5.1 with scipy, independently of torchsnn.meanfield.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scipy import integrate, special

REPO = Path(__file__).resolve().parents[1]
CONF_DIR = REPO / "conf"

# Brunel (2000) model A neuron (theory.md §1), the package defaults of conf/neuron/lif.yaml
LIF = {"tau_m_ms": 20.0, "theta_mv": 20.0, "v_reset_mv": 10.0, "tau_ref_ms": 2.0}


def siegert_hz(
    mu_mv: float,
    sigma_mv: float,
    *,
    theta_mv: float = 20.0,
    v_reset_mv: float = 10.0,
    tau_m_ms: float = 20.0,
    tau_ref_ms: float = 2.0,
    epsrel: float = 1e-13,
) -> float:
    """phi(mu, sigma) = 1 / (tau_ref + tau_m sqrt(pi) Int_{y_r}^{y_th} erfcx(-u) du) in Hz, by scipy adaptive
    quadrature (relative accuracy ~1e-13 for the moderate |y| <= 10 used in the tests)."""
    y_th = (theta_mv - mu_mv) / sigma_mv
    y_r = (v_reset_mv - mu_mv) / sigma_mv
    integral = integrate.quad(lambda u: special.erfcx(-u), y_r, y_th, epsabs=0.0, epsrel=epsrel, limit=200)[0]
    return 1000.0 / (tau_ref_ms + tau_m_ms * math.sqrt(math.pi) * integral)


def compose_config(overrides: Sequence[str]):
    """The run config composed from conf/ with Hydra's compose API (a DictConfig, unresolved)."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def compose_plain(*overrides: str) -> dict[str, Any]:
    """The run config as ``python -m torchsnn.run`` composes it, resolved to plain containers."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(compose_config(overrides), resolve=True)


def run_cli(*args: str, timeout: float = 300.0) -> subprocess.CompletedProcess:
    """``python -m torchsnn.run ARGS`` from the repository root, one intra-op thread (on a shared 2-core machine
    torch's spinning OpenMP workers slow a small run 20-fold)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "torchsnn.run", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def brunel_size_overrides(n_e: int, n_i: int, k_e: int, k_i: int) -> list[str]:
    """Overrides that shrink a network/brunel run: population sizes and the fixed in-degrees from E and from I."""
    return [
        f"network.populations.E.size={n_e}",
        f"network.populations.I.size={n_i}",
        f"network.projections.EE.connectivity.indegree={k_e}",
        f"network.projections.IE.connectivity.indegree={k_e}",
        f"network.projections.EI.connectivity.indegree={k_i}",
        f"network.projections.II.connectivity.indegree={k_i}",
    ]
