"""Measure the peak host memory of building and running one configuration in a fresh process, against the
estimate of ``torchsnn.memory`` (benchmarks/README.md, "Memory estimate"):

    python -m benchmarks.memory_probe +experiment=hetero_static network.populations.E.size=20000 ...

Prints one JSON line: the RSS after imports, kernel loading and one construction of the rules (baseline), the
peak RSS (``ru_maxrss``) after wiring and after the run, both above the baseline, and the estimate's parts."""

from __future__ import annotations

import json
import resource
import sys
import time

from benchmarks import common


def main(argv: list[str]) -> None:
    import torch

    from torchsnn.config import build_network
    from torchsnn.config.builder import build_rules
    from torchsnn.memory import estimate_bytes
    from torchsnn.simulation import simulate

    torch.set_num_threads(1)
    cfg = common.compose(argv)
    common.prime_cpu_kernels()  # numba compilation is not the network's memory
    build_rules(cfg)  # nor the modules and tables the rules load (scipy laws, copula calibration: ~30 MB)
    common.trim_heap()
    base_mb = common.MemoryProbe("cpu").current_mb()
    t0 = time.perf_counter()
    built = build_network(cfg)
    wired_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base_mb
    build_s = time.perf_counter() - t0
    sim = cfg["simulation"]
    simulate(
        built.network,
        duration_ms=float(sim["duration_ms"]),
        transient_ms=float(sim.get("transient_ms", 0.0)),
        generator=built.generator,
        progress=False,
    )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base_mb
    parts = {k: v / 2**20 for k, v in estimate_bytes(cfg, "cpu").items()}
    n_syn = common.n_synapses(built.network)
    print(
        json.dumps(
            {
                "overrides": argv,
                "n_synapses": n_syn,
                "baseline_mb": base_mb,
                "build_peak_mb": wired_mb,
                "run_peak_mb": peak_mb,
                "build_s": build_s,
                "estimate_mb": parts,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
