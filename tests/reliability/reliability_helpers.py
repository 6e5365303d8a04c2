"""A small plastic network (fast, irregular), run through the pipeline in-process or as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys

from testkit import REPO as ROOT
from testkit import compose_plain as compose_plain_args

SMALL_PLASTIC = [
    "+experiment=plastic_pre",
    "network.populations.E.size=2000",
    "network.populations.I.size=500",
    "network.projections.EE.connectivity.in_degree.mean=80",
    "network.projections.IE.connectivity.in_degree.mean=80",
    "network.projections.EI.connectivity.in_degree.mean=20",
    "network.projections.II.connectivity.in_degree.mean=20",
    "network.projections.EE.weight_mv=0.5",
    "plasticity.rule.w_max_mv=0.75",
    "network.projections.IE.weight_mv=1.0",
    "network.projections.EI.weight_mv=2.0",
    "network.projections.II.weight_mv=2.0",
    "plasticity.r_p_hz=1.0",
    "simulation.duration_ms=2000",
    "simulation.transient_ms=500",
    "simulation.checkpoint_every_ms=300",
    "simulation.device=cpu",
    "logging.progress=false",
    "meanfield.samples=20000",
]


def cli(args: list[str], **kwargs) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "torchsnn.run", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kwargs,
    )


def compose_plain(overrides: list[str]) -> dict:
    return compose_plain_args(*overrides)
