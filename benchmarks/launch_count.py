"""Kernel launches per min-delay block on the fused (Triton) backend, counted on the CPU under Triton's interpreter:

    TRITON_INTERPRET=1 python -m benchmarks.launch_count brunel_ai brunel_a_plastic [--small] [--out f.json]

Two counts per block: the backend's own launches (its counter: one neuron kernel per population, one delivery
kernel per projection, one step kernel) and the torch ops that run outside them (plasticity traces and weight
updates, raster and synchrony monitors, rate estimators, the block schedule), counted by a ``TorchDispatchMode``:
the aten ops dispatched outside the backend's ``_launch_block``, without those that launch nothing on a GPU
(views, ``empty``, ``reshape``...). On CUDA each counted op is about one kernel launch (a few launch more), so the
sum is what one block costs in launches there (CUDA-graph replay covers only the backend's part). Per block =
(count over 12 blocks - count over 4 blocks) / 8, so the per-``simulate`` set-up drops out. Monitors: those of
an ordinary run (spike statistics, population rate, raster of 50 neurons, voltage samples every 1 ms for the
synchrony measure). The network is shrunk to 80 + 20 neurons (``--full-size`` keeps the experiment's sizes, slow
under the interpreter): launch counts do not depend on N. ``by_source`` attributes the ops to the torchsnn line
that issued them.
"""

from __future__ import annotations

import argparse
import json
import traceback
from collections import Counter
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from benchmarks import common

NO_KERNEL = {
    "aten::view", "aten::slice", "aten::select", "aten::as_strided", "aten::empty", "aten::t", "aten::reshape",
    "aten::expand", "aten::unsqueeze", "aten::squeeze", "aten::detach", "aten::alias", "aten::empty_strided",
    "aten::_reshape_alias", "aten::lift_fresh", "aten::resolve_conj", "aten::resolve_neg", "aten::split",
    "aten::narrow", "aten::unbind", "aten::chunk", "aten::flatten", "aten::view_as", "aten::permute",
    "aten::transpose", "aten::contiguous", "aten::empty_like", "aten::result_type", "aten::_unsafe_view",
}  # fmt: skip
SMALL = [
    "network.populations.E.size=80",
    "network.populations.I.size=20",
    "network.projections.EE.connectivity.indegree=20",
    "network.projections.IE.connectivity.indegree=20",
    "network.projections.EI.connectivity.indegree=5",
    "network.projections.II.connectivity.indegree=5",
]


class _Counter(TorchDispatchMode):
    """Counts the aten ops that run while it is active, except inside the fused backend's block launch."""

    def __init__(self) -> None:
        super().__init__()
        self.fused_depth = 0
        self.ops: Counter = Counter()
        self.where: Counter = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if not self.fused_depth:
            name = "aten::" + func.__name__.split(".")[0]
            if name not in NO_KERNEL:
                self.ops[name] += 1
                self.where[_source()] += 1
        return func(*args, **(kwargs or {}))


def _source() -> str:
    """The innermost torchsnn frame of the Python stack that issued the op."""
    for frame in reversed(traceback.extract_stack(limit=40)):
        if "torchsnn/" in frame.filename:
            return f"{frame.filename.split('torchsnn/')[-1]}:{frame.lineno} {frame.name}"
    return "?"


def _profile(net, n_blocks: int, kw: dict, counter: _Counter) -> dict:
    from torchsnn.simulation import simulate

    backend = net.backend
    start = backend.launches
    counter.ops.clear(), counter.where.clear()
    with counter:
        simulate(net, duration_ms=n_blocks * net.block_steps * net.dt_ms, **kw)
    return {
        "fused": backend.launches - start,
        "launching": sum(counter.ops.values()),
        "ops": Counter(counter.ops),
        "where": Counter(counter.where),
    }


def count(experiment: str, small: bool) -> dict:
    from torchsnn.config import build_network
    from torchsnn.kernels import triton_backend

    launch = triton_backend.TritonBackend._launch_block
    counter = _Counter()

    def marked(self, *args, **kwargs):
        counter.fused_depth += 1
        try:
            return launch(self, *args, **kwargs)
        finally:
            counter.fused_depth -= 1

    triton_backend.TritonBackend._launch_block = marked
    try:
        overrides = [f"+experiment={experiment}", "simulation.device=cpu", "simulation.backend=triton", "seed=3"]
        built = build_network(common.compose(overrides + (SMALL if small else [])))
        net = built.network
        kw = {"generator": built.generator, "progress": False, "voltage_every_ms": 1.0, "raster_neurons": 50}
        from torchsnn.simulation import simulate

        simulate(net, duration_ms=4 * net.block_steps * net.dt_ms, **kw)  # warm-up
        few, many = _profile(net, 4, kw, counter), _profile(net, 12, kw, counter)
    finally:
        triton_backend.TritonBackend._launch_block = launch
    per = {k: (many[k] - few[k]) / 8 for k in ("fused", "launching")}
    return {
        "experiment": experiment,
        "backend": net.backend.describe(),
        "fused_launches_per_block": per["fused"],
        "launching_torch_ops_per_block": per["launching"],
        "total_launches_per_block": per["fused"] + per["launching"],
        "launching_ops_per_block_by_name": {k: (many["ops"][k] - few["ops"][k]) / 8 for k in many["ops"]},
        "launching_ops_per_block_by_source": {k: (many["where"][k] - few["where"][k]) / 8 for k in many["where"]},
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("experiments", nargs="+")
    p.add_argument("--full-size", action="store_true", help="the experiment's own sizes (slow under the interpreter)")
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args()
    torch.set_num_threads(1)
    rows = [count(x, not a.full_size) for x in a.experiments]
    for r in rows:
        print(
            f"{r['experiment']}: {r['fused_launches_per_block']:.1f} fused launches + "
            f"{r['launching_torch_ops_per_block']:.1f} torch ops outside them = {r['total_launches_per_block']:.1f} "
            f"per block ({r['backend'].get('name')})"
        )
        for src, n in sorted(r["launching_ops_per_block_by_source"].items(), key=lambda kv: -kv[1])[:12]:
            print(f"    {n:6.2f}  {src}")
    if a.out:
        a.out.write_text(json.dumps({"machine": common.machine_info("cpu"), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
