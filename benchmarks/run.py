"""The benchmark harness: ``python -m benchmarks.run [options]`` prints one table and writes a JSON record.

    python -m benchmarks.run                                   # every scenario, CPU, peers that are installed
    python -m benchmarks.run --scenarios brunel_a --peers brian2,nest --out benchmarks/results/mine.json
    python -m benchmarks.run --device cuda                     # GPU rows (brunel_a, batch 1..64, scale)

Scenarios: brunel_a, brunel_a_batch, brunel_a_plastic, scale, meanfield, wiring (benchmarks/README.md). Peers run the
identical ``brunel_a`` network in their own virtual environments (``bash benchmarks/peers/setup_envs.sh``);
ratios of synaptic events per second are printed for this invocation only: on a shared machine, only ratios
measured side by side count, and absolute times only on a GPU.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path

import torch

from benchmarks import common, report
from benchmarks.common import Options
from benchmarks.peers import runner
from benchmarks.scenarios import SCENARIOS

DEFAULT_SCENARIOS = ("brunel_a", "brunel_a_batch", "brunel_a_plastic", "scale", "meanfield", "wiring")


def _csv(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(float(t)) for t in _csv(text))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    p.add_argument("--scenarios", type=_csv, default=DEFAULT_SCENARIOS, help=f"comma list of {', '.join(SCENARIOS)}")
    p.add_argument("--duration-ms", type=float, default=1000.0, help="timed model time (after the warm-up)")
    p.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="timed segments of --duration-ms after the warm-up, in one run; medians are reported (default 3)",
    )
    p.add_argument("--warmup-ms", type=float, default=common.WARMUP_MS, help="untimed warm-up model time")
    p.add_argument(
        "--peers",
        default="auto",
        help="comma list of brian2,nest; 'auto' (default): those whose environment exists; 'none'",
    )
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads for torchsnn (default 1)")
    p.add_argument("--batch-sizes", type=_ints, default=None, help="replicas for brunel_a_batch (e.g. 1,4,16,64)")
    p.add_argument("--scale-sizes", type=_ints, default=None, help="N for scale (default 1e5,2.5e5,5e5,1e6)")
    p.add_argument("--scale-on-cpu", action="store_true", help="run scale on the CPU too (smoke test only)")
    p.add_argument("--no-reference", action="store_true", help="skip the torch-reference row of brunel_a (CPU)")
    p.add_argument("--seed", type=int, default=None, help="override the config's seed")
    p.add_argument("--out", type=Path, default=None, help="JSON record (default: benchmarks/results/<date>_<dev>.json)")
    return p.parse_args(argv)


def resolve_peers(spec: str) -> tuple[str, ...]:
    if spec == "none":
        return ()
    if spec == "auto":
        return tuple(p for p in runner.SCRIPTS if runner.peer_python(p) is not None)
    peers = _csv(spec)
    unknown = [p for p in peers if p not in runner.SCRIPTS]
    if unknown:
        raise SystemExit(f"unknown peer(s) {unknown}: choose from {', '.join(runner.SCRIPTS)}")
    return peers


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown:
        raise SystemExit(f"unknown scenario(s) {unknown}: choose from {', '.join(SCENARIOS)}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("--device cuda asked for, but torch sees no CUDA device")
    torch.set_num_threads(args.threads)
    opts = Options(
        duration_ms=args.duration_ms,
        warmup_ms=args.warmup_ms,
        device=args.device,
        peers=resolve_peers(args.peers),
        threads=args.threads,
        repeats=args.repeats,
        batch_sizes=args.batch_sizes,
        scale_sizes=args.scale_sizes,
        scale_on_cpu=args.scale_on_cpu,
        reference=not args.no_reference,
        seed=args.seed,
    )
    machine = common.machine_info(args.device)
    print(
        f"torchsnn benchmarks on {machine['cpu_model']} ({machine['cpu_count']} cores), device {args.device}"
        + (f" ({machine['gpu']})" if "gpu" in machine else "")
        + f", torch {machine['torch']}, numba {machine['numba']}, {args.threads} torch thread(s)"
        + f", load average {machine['load_average_1_5_15']}",
        flush=True,
    )
    print(f"peers: {', '.join(opts.peers) or 'none'}", flush=True)
    rows: list[dict] = []
    t0 = time.perf_counter()
    if not opts.cuda:
        common.prime_cpu_kernels()
    for name in args.scenarios:
        print(f"[{time.perf_counter() - t0:7.1f} s] {name} ...", flush=True)
        module = importlib.import_module(f"benchmarks.scenarios.{name}")
        rows += module.run(opts)
    print()
    print(report.table(rows))
    ratios = {}
    for r in rows:
        for key, value in (r.get("ratios") or {}).items():
            ratios[f"{r['scenario']}: {key}"] = value
    if ratios:
        print("\nratios of synaptic events/s, measured in this run:")
        for key, value in ratios.items():
            print(f"  {key}: {value:.2f}")
    warnings = [f"{r['variant']}: {w}" for r in rows for w in r.get("rate_warnings") or []]
    for w in warnings:
        print(f"WARNING rate mismatch {w}", file=sys.stderr)
    out = args.out or common.ROOT / "benchmarks" / "results" / (
        f"{machine['date'][:19].replace(':', '-')}_{args.device.replace(':', '')}.json"
    )
    record = {
        "machine": machine,
        "options": {
            "scenarios": list(args.scenarios),
            "duration_ms": opts.duration_ms,
            "warmup_ms": opts.warmup_ms,
            "repeats": opts.repeats,
            "device": opts.device,
            "peers": list(opts.peers),
            "threads": opts.threads,
            "command": " ".join(["python -m benchmarks.run", *(argv if argv is not None else sys.argv[1:])]),
        },
        "results": rows,
        "ratios": ratios,
        "total_wall_s": time.perf_counter() - t0,
        "load_average_at_end_1_5_15": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }
    report.write_json(out, record)
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
