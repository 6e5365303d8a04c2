"""``brunel_a_plastic``: ``brunel_a`` with every E->E weight plastic (pre-only relaxation rule on traces, weights
updated every 1 ms), from ``conf/experiment/brunel_a_plastic.yaml``.

Runs only when that experiment exists and builds a network with at least one plastic projection (the plasticity
module may not provide the rule yet); otherwise the row says why it was skipped. Rows as ``brunel_a``
(compiled CPU kernels and torch reference on the CPU, or CUDA); no peers.
"""

from __future__ import annotations

from benchmarks import common
from benchmarks.common import Options
from benchmarks.scenarios import brunel_a

NAME = "brunel_a_plastic"
EXPERIMENT = "brunel_a_plastic"


def run(opts: Options) -> list[dict]:
    if not common.experiment_exists(EXPERIMENT):
        return [common.skipped(NAME, f"conf/experiment/{EXPERIMENT}.yaml not found (no plastic Brunel experiment yet)")]
    try:
        import torchsnn.plasticity as plasticity
    except ImportError as err:
        return [common.skipped(NAME, f"torchsnn.plasticity not importable: {err}")]
    rules = [n for n in dir(plasticity) if not n.startswith("_") and isinstance(getattr(plasticity, n), type)]
    if not rules:
        return [common.skipped(NAME, "torchsnn.plasticity defines no rule yet")]
    from torchsnn.errors import ConfigError

    try:
        rows, built, _ = brunel_a.torchsnn_rows(opts, scenario=NAME, experiment=EXPERIMENT)
    except ConfigError as err:
        return [common.skipped(NAME, f"experiment {EXPERIMENT} does not build: {err}")]
    plastic = [p.name for p in built.network.projections.values() if p.plastic]
    if not plastic:
        return [common.skipped(NAME, f"experiment {EXPERIMENT} builds no plastic projection")]
    for r in rows:
        r["plastic_projections"] = plastic
        r["plasticity_every_ms"] = built.network.plasticity_every_steps * built.network.dt_ms
    return rows
