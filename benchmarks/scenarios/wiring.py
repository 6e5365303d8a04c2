"""``wiring``: the scaffold builder on a 1e7-synapse network, timed side by side in this invocation (interleaved,
``--repeats`` times each, medians): the host numpy wiring that torchsnn used before
(``benchmarks/wiring_reference.py``), the vectorised torch wiring (``torchsnn/scaffold/edges.py`` on ``--device``:
the CUDA path, on the CPU with the compiled kernels switched off) and, on the CPU, the default: the numba wiring
kernels (``torchsnn/scaffold/host_wiring.py``). The speed-ups are per synapse against the numpy reference.

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


def _device(cfg: dict, seed: int, device: str, host_kernels: bool = True) -> int:
    import torch

    from torchsnn import kernels
    from torchsnn.config.builder import build_rules
    from torchsnn.scaffold import SparseScaffold

    sizes = {n: int(p["size"]) for n, p in cfg["network"]["populations"].items()}
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    previous = kernels.set_cpu_kernels(host_kernels)
    try:
        scaffold = SparseScaffold.build(sizes, build_rules(cfg), gen)
    finally:
        kernels.set_cpu_kernels(previous)
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
    from torchsnn import kernels

    rows = []
    probe = common.MemoryProbe(opts.device)
    builders = [("reference numpy (host)", _reference, lambda seed: (seed,), common.MemoryProbe("cpu"))]
    builders.append((f"torch ({opts.device})", _device, lambda seed: (seed, opts.device, False), probe))
    if opts.device == "cpu" and kernels.NUMBA_AVAILABLE:
        builders.append(("numba kernels (cpu, default)", _device, lambda seed: (seed, "cpu", True), probe))
    for label, overrides in NETWORKS.items():
        cfg = common.compose([*overrides, *([f"seed={opts.seed}"] if opts.seed is not None else [])])
        seed = int(cfg["seed"])
        for _, fn, args, _ in builders[1:]:  # warm-up (scipy tables, copula calibration, kernels)
            fn(cfg, *args(seed))
        runs: list[list[tuple[float, float, int]]] = [[] for _ in builders]
        for rep in range(max(opts.repeats, 1)):
            for i, (_, fn, args, mem) in enumerate(builders):
                runs[i].append(_timed(fn, (cfg, *args(seed + rep)), mem))
        ref_ns = statistics.median(r[0] / r[2] for r in runs[0])
        for (variant, *_), rs in zip(builders, runs, strict=True):
            wall = statistics.median(r[0] for r in rs)
            ns = statistics.median(r[0] / r[2] for r in rs) * 1e9
            key = f"{label}: {variant} / numpy reference (time per synapse)"
            extra = {} if rs is runs[0] else {"ratios": {key: ref_ns * 1e9 / ns}}
            rows.append(
                common.row(
                    NAME,
                    f"{label}: {variant}",
                    build_s=wall,
                    builds_s=[r[0] for r in rs],
                    peak_mem_mb=max(r[1] for r in rs),
                    n_synapses=rs[0][2],
                    ns_per_synapse=ns,
                    **extra,
                )
            )
    return rows
