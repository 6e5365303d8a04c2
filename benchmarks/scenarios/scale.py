"""``scale``: N = 10^5 .. 10^6 neurons (80% E, 20% I) with 1,000 inputs each (800 from E, 200 from I; Brunel
model A weights and drive otherwise), up to 10^9 synapses. GPU only: RTF and bytes of GPU memory per synapse
(``torch.cuda.max_memory_allocated`` over build and run, divided by the number of synapses)."""

from __future__ import annotations

import gc
import time

from benchmarks import common
from benchmarks.common import Options
from benchmarks.scenarios import brunel_a

NAME = "scale"
SIZES = (100_000, 250_000, 500_000, 1_000_000)
IN_E, IN_I = 800, 200


def overrides(opts: Options, n: int) -> list[str]:
    n_e = round(0.8 * n)
    return [
        *brunel_a.overrides(opts),
        f"network.populations.E.size={n_e}",
        f"network.populations.I.size={n - n_e}",
        f"network.projections.EE.connectivity.indegree={IN_E}",
        f"network.projections.IE.connectivity.indegree={IN_E}",
        f"network.projections.EI.connectivity.indegree={IN_I}",
        f"network.projections.II.connectivity.indegree={IN_I}",
    ]


def run(opts: Options) -> list[dict]:
    if not opts.cuda and not opts.scale_on_cpu:
        return [common.skipped(NAME, "GPU only (run with --device cuda); skipped on the CPU")]
    import torch

    from torchsnn.config import build_network

    rows = []
    for n in opts.scale_sizes or SIZES:
        cfg = common.compose(overrides(opts, int(n)))
        probe = common.MemoryProbe(opts.device)
        baseline = probe.current_mb()
        probe.start()
        t0 = time.perf_counter()
        try:
            built = build_network(cfg)
            common.sync(opts.device)
            build_s = time.perf_counter() - t0
            build_peak = probe.peak_mb() - baseline
            net = built.network
            n_syn = common.n_synapses(net)
            run = common.timed_run(net, cfg, opts, 1, baseline)
        except (torch.cuda.OutOfMemoryError, MemoryError) as err:
            rows.append({"scenario": NAME, "variant": f"N={n}", "skipped": f"out of memory: {err}"[:300]})
            break
        peak = max(run.peak_mem_mb, build_peak)
        rows.append(
            common.run_row(
                NAME,
                f"N={n}",
                run,
                build_s=build_s,
                n_neurons=int(n),
                n_synapses=n_syn,
                build_peak_mem_mb=build_peak,
                bytes_per_synapse=peak * 2**20 / n_syn,
            )
        )
        del built, net
        gc.collect()
        if opts.cuda:
            torch.cuda.empty_cache()
    return rows
