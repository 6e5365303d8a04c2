"""Measure the peak host memory of building and running one configuration in a fresh process, against the
estimate of ``torchsnn.memory`` (benchmarks/README.md, "Memory estimate"):

    python -m benchmarks.memory_probe +experiment=hetero_static network.populations.E.size=20000 ...

Prints one JSON line: the RSS after imports, kernel loading and one construction of the rules (baseline), the
peak RSS (``ru_maxrss``) after wiring and after the run, both above the baseline, and the estimate's parts.

glibc's dynamic mmap threshold (raised each time a large mmapped block is freed) lets later large temporaries
come from the heap, where freed memory stays resident: the same run then peaked at 36 to 143 MB above the
baseline (hetero_static, 6.2e6 synapses, four fresh processes). The probe fixes the threshold at 128 kB
(``mallopt(M_MMAP_THRESHOLD)``, as ``MALLOC_MMAP_THRESHOLD_`` would) so that its RSS follows the live memory that
the estimate describes (32.0-32.6 MB in three processes); ``--allocator-default`` keeps glibc's behaviour."""

from __future__ import annotations

import json
import resource
import sys
import time

from benchmarks import common

M_MMAP_THRESHOLD = -3  # glibc mallopt parameter


def fix_mmap_threshold(threshold: int = 128 * 1024) -> bool:
    """Allocations above ``threshold`` bytes are mmapped and returned to the OS when freed (glibc only)."""
    import ctypes

    try:
        return bool(ctypes.CDLL("libc.so.6").mallopt(M_MMAP_THRESHOLD, threshold))
    except (OSError, AttributeError):
        return False


def main(argv: list[str]) -> None:
    fixed = "--allocator-default" not in argv
    argv = [a for a in argv if a != "--allocator-default"]
    if fixed:
        fixed = fix_mmap_threshold()
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
                "mmap_threshold_fixed": fixed,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
