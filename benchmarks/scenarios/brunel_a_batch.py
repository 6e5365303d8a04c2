"""``brunel_a_batch``: ``brunel_a`` with B independent replicas sharing one scaffold, in one run.

Reports aggregate synaptic events per second (all replicas) and the wall time per model second. B defaults to
[1, 4] on the CPU (compiled kernels) and [1, 4, 16, 64] on CUDA.
"""

from __future__ import annotations

from benchmarks import common
from benchmarks.common import Options
from benchmarks.scenarios import brunel_a

NAME = "brunel_a_batch"
CPU_BATCHES = (1, 4)
CUDA_BATCHES = (1, 4, 16, 64)


def run(opts: Options) -> list[dict]:
    from torchsnn import kernels

    batches = opts.batch_sizes or (CUDA_BATCHES if opts.cuda else CPU_BATCHES)
    built, cfg, build_s, baseline, _ = brunel_a.build(opts)
    net = built.network
    variant = "torchsnn cuda" if opts.cuda else "torchsnn cpu compiled"
    previous = kernels.set_cpu_kernels(True)
    rows = []
    try:
        for b in batches:
            run = common.timed_run(net, cfg, opts, int(b), baseline)
            rows.append(
                common.run_row(
                    NAME,
                    variant,
                    run,
                    build_s=build_s,
                    n_neurons=sum(net.population_sizes().values()),
                    n_synapses=common.n_synapses(net),
                )
            )
    finally:
        kernels.set_cpu_kernels(previous)
    base = rows[0]["events_per_s"] if rows else None
    for r in rows:
        r["speedup_vs_b1_events"] = r["events_per_s"] / base if base and rows[0]["batch"] == 1 else None
    return rows
