"""``wiring``: the scaffold builder on a 1e7-synapse network, the device wiring (``torchsnn/scaffold/edges.py``,
torch on ``--device``) against the host numpy wiring it replaced (``benchmarks/wiring_reference.py``), timed side
by side in this invocation (interleaved, ``--repeats`` times each, medians).

Networks: ``brunel_ai`` (fixed in-degree, 1.56e7 synapses) and ``hetero_static`` at N_E = 16,000, N_I = 4,000
(configuration model with gamma degrees and the Gaussian copula, 1.0e7 synapses). Rows give the build seconds,
the peak memory of the build above the baseline (CPU: RSS; CUDA: allocated), ns per synapse and the speed-up.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from benchmarks import common
from benchmarks.common import Options

NAME = "wiring"
NETWORKS = {
    "fixed in-degree (brunel_ai)": ["+experiment=brunel_ai"],
    "configuration model (hetero_static 20k)": [
        "+experiment=hetero_static",
        "network.populations.E.size=16000",
        "network.populations.I.size=4000",
    ],
}


def _reference(cfg: dict, seed: int) -> int:
    from benchmarks.wiring_reference import reference_connect
    from torchsnn.config.builder import build_rules

    sizes = {n: int(p["size"]) for n, p in cfg["network"]["populations"].items()}
    rng = np.random.default_rng(seed)
    edges = 0
    for (post, pre), rule in build_rules(cfg).items():
        row_ptr, post_index, _ = reference_connect(rule, sizes[pre], sizes[post], post == pre, rng)
        edges += post_index.size
        del row_ptr, post_index
    return edges


def _device(cfg: dict, seed: int, device: str) -> int:
    import torch

    from torchsnn.config.builder import build_rules
    from torchsnn.scaffold import SparseScaffold

    sizes = {n: int(p["size"]) for n, p in cfg["network"]["populations"].items()}
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    scaffold = SparseScaffold.build(sizes, build_rules(cfg), gen)
    common.sync(device)
    return sum(b.n_edges for b in scaffold.blocks.values())


def _timed(fn, args: tuple, probe: common.MemoryProbe) -> tuple[float, float, int]:
    baseline = probe.current_mb()
    probe.start()
    t0 = time.perf_counter()
    edges = fn(*args)
    wall = time.perf_counter() - t0
    return wall, probe.peak_mb() - baseline, edges


def run(opts: Options) -> list[dict]:
    rows = []
    probe = common.MemoryProbe(opts.device)
    for label, overrides in NETWORKS.items():
        cfg = common.compose([*overrides, *([f"seed={opts.seed}"] if opts.seed is not None else [])])
        seed = int(cfg["seed"])
        _device(cfg, seed, opts.device)  # warm-up (scipy tables, copula calibration, kernels)
        ref, new = [], []
        for rep in range(max(opts.repeats, 1)):
            ref.append(_timed(_reference, (cfg, seed + rep), common.MemoryProbe("cpu")))
            new.append(_timed(_device, (cfg, seed + rep, opts.device), probe))
        speedup = statistics.median(r[0] for r in ref) / statistics.median(r[0] for r in new)
        for variant, runs, extra in (
            ("reference numpy (host)", ref, {}),
            (f"device torch ({opts.device})", new, {"ratios": {"device / reference (time per synapse)": speedup}}),
        ):
            wall = statistics.median(r[0] for r in runs)
            n_syn = runs[0][2]
            rows.append(
                common.row(
                    NAME,
                    f"{label}: {variant}",
                    build_s=wall,
                    builds_s=[r[0] for r in runs],
                    peak_mem_mb=max(r[1] for r in runs),
                    n_synapses=n_syn,
                    ns_per_synapse=wall / n_syn * 1e9,
                    **extra,
                )
            )
    return rows
