"""``scale``: N = 10^5 .. 10^6 neurons (80% E, 20% I) with 1,000 inputs each (800 from E, 200 from I; Brunel
model A weights and drive otherwise), up to 10^9 synapses. GPU only: the scaffold is wired on the GPU
(``build_scaffold`` on ``simulation.device``, timed as ``wire_s``), then the network is built and run. Rows: RTF,
bytes of GPU memory per synapse held after wiring (``torch.cuda.memory_allocated``; target <= 6: int32 targets,
int64 row_ptr per neuron, no per-edge weights), the wiring peak and the whole peak per synapse
(``torch.cuda.max_memory_allocated``), and what ``torchsnn.memory`` estimated for each."""

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
    from torchsnn.config.builder import Seeds, build_scaffold
    from torchsnn.memory import estimate_bytes, wiring_peak_bytes

    rows = []
    for n in opts.scale_sizes or SIZES:
        cfg = common.compose(overrides(opts, int(n)))
        probe = common.MemoryProbe(opts.device)
        baseline = probe.current_mb()
        probe.start()
        t0 = time.perf_counter()
        try:
            scaffold = build_scaffold(cfg, Seeds.from_seed(int(cfg["seed"])).scaffold)
            common.sync(opts.device)
            wire_s = time.perf_counter() - t0
            wire_peak = probe.peak_mb() - baseline
            held_after_wiring = probe.current_mb() - baseline
            built = build_network(cfg, scaffold=scaffold)
            common.sync(opts.device)
            build_s = time.perf_counter() - t0
            build_peak = probe.peak_mb() - baseline
            net = built.network
            n_syn = common.n_synapses(net)
            estimate = estimate_bytes(cfg)
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
                wire_s=wire_s,
                bytes_per_synapse_after_wiring=held_after_wiring * 2**20 / n_syn,
                wiring_peak_bytes_per_synapse=wire_peak * 2**20 / n_syn,
                estimate_scaffold_bytes_per_synapse=estimate["scaffold (CSR, int32 targets)"] / n_syn,
                estimate_wiring_peak_bytes_per_synapse=wiring_peak_bytes(cfg, probe.device.split(":")[0]) / n_syn,
                estimate_total_bytes_per_synapse=estimate["total"] / n_syn,
            )
        )
        del built, net, scaffold
        gc.collect()
        if opts.cuda:
            torch.cuda.empty_cache()
    return rows
