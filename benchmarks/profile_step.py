"""Where the time of a min-delay block goes: ``python -m benchmarks.profile_step --experiment brunel_ai``.

Wraps ``PoissonDrive.sample_block`` (and the other drives), ``LIFPopulation.run_block``, ``Projection.deliver``
and every monitor's ``on_block`` with ``perf_counter`` accumulators, runs a warm-up (not counted) and then the
profiled model time, once with the compiled CPU kernels and once on the torch reference path
(``set_cpu_kernels(False)``), from the same seed, and prints a before/after table: seconds per model second in
each part, its share, and the speed-up. "other" is the rest of the loop (Python overhead of the block schedule,
rate estimators, plasticity, the progress bookkeeping). Monitors are those of an ordinary run (spike statistics,
population rate, raster, voltage sampling for the synchrony measure) with the experiment's settings.
It also counts kernel launches per block: on the CPU the calls into the backend's compiled kernels (numba: one
per population and operation; Triton under the interpreter: the backend's own launch count), on CUDA the GPU
kernels the torch profiler sees in a short extra segment (graph replays included) next to the backend's count.
A fused backend (Triton) runs drive, neuron update, statistics and delivery in its block kernels, which the
part timers do not see: its time is in "other" (the launch count says what ran).
A profile explains where time goes; speed claims come from ``python -m benchmarks.run`` only.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import torch

from benchmarks import common

PARTS = ("drive sampling", "neuron update", "delivery", "monitors", "other")


def _targets() -> list[tuple[type, str, str]]:
    from torchsnn.monitors import PopulationRateMonitor, RasterMonitor, SpikeStatsMonitor, SynchronyMonitor
    from torchsnn.populations import GaussianDrive, LIFPopulation, NoDrive, PoissonDrive
    from torchsnn.projection import Projection

    return [
        (PoissonDrive, "sample_block", "drive sampling"),
        (GaussianDrive, "sample_block", "drive sampling"),
        (NoDrive, "sample_block", "drive sampling"),
        (LIFPopulation, "run_block", "neuron update"),
        (Projection, "deliver", "delivery"),
        (SpikeStatsMonitor, "on_block", "monitors"),
        (PopulationRateMonitor, "on_block", "monitors"),
        (RasterMonitor, "on_block", "monitors"),
        (SynchronyMonitor, "on_block", "monitors"),
    ]


@contextlib.contextmanager
def instrumented(acc: dict[str, float], device: str) -> Iterator[None]:
    """Patch the methods with accumulating timers (CUDA: synchronised around each call); restore on exit."""
    saved = []
    cuda = device.startswith("cuda")

    def wrap(fn, part):
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            if cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                if cuda:
                    torch.cuda.synchronize()
                acc[part] += time.perf_counter() - t0

        return timed

    try:
        for cls, name, part in _targets():
            original = cls.__dict__.get(name)
            if original is None:  # inherited: patch on the class itself, delete on exit
                saved.append((cls, name, None))
                setattr(cls, name, wrap(getattr(cls, name), part))
            else:
                saved.append((cls, name, original))
                setattr(cls, name, wrap(original, part))
        yield
    finally:
        for cls, name, original in reversed(saved):
            if original is None:
                delattr(cls, name)
            else:
                setattr(cls, name, original)


KERNEL_METHODS = ("lif_block", "deliver", "invert_table", "spike_statistics", "relax_separable")


@contextlib.contextmanager
def counted_kernel_calls(backend) -> Iterator[list[int]]:
    """Count the backend's kernel launches: its own counter where it keeps one (Triton), else the calls of its
    compiled operations (numba; the torch reference counts none: its work is torch ops)."""
    box = [0]
    if hasattr(backend, "launches"):
        start = backend.launches
        yield box
        box[0] = backend.launches - start
        return
    if backend.kind != "numba":
        yield box
        return
    saved = {name: getattr(backend, name) for name in KERNEL_METHODS}

    def counting(fn):
        def call(*args, **kwargs):
            box[0] += 1
            return fn(*args, **kwargs)

        return call

    for name, fn in saved.items():
        setattr(backend, name, counting(fn))
    try:
        yield box
    finally:
        for name in saved:
            delattr(backend, name)  # back to the class's method


def cuda_kernels_per_block(network, generator, kw: dict, duration_ms: float = 15.0) -> float:
    """GPU kernels per block seen by the torch profiler over a short segment (CUDA only)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    from torchsnn.simulation import simulate

    with torch_profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        simulate(network, duration_ms=duration_ms, generator=generator, **kw)
        torch.cuda.synchronize()
    kernels = sum(1 for ev in prof.events() if str(getattr(ev, "device_type", "")).endswith("CUDA"))
    return kernels / (round(duration_ms / network.dt_ms) / network.block_steps)


def profile(network, cfg: dict, duration_ms: float, warmup_ms: float, batch: int) -> dict[str, float]:
    """Seconds spent in each part per second of model time, and kernel launches per block."""
    from torchsnn.simulation import simulate

    sim = cfg["simulation"]
    kw = {
        "progress": False,
        "voltage_every_ms": float(sim.get("voltage_every_ms", 1.0) or 0.0),
        "raster_neurons": int(sim.get("raster_neurons", 0) or 0),
        "raster_ms": float(sim.get("raster_ms", 1000.0)),
    }
    device = str(network.device)
    gen = common.dynamics_generator(cfg, network.device)
    network.reset(batch, gen)
    simulate(network, duration_ms=warmup_ms, generator=gen, **kw)
    acc: dict[str, float] = defaultdict(float)
    backend = network.backend
    with instrumented(acc, device), counted_kernel_calls(backend) as launches:
        common.sync(device)
        t0 = time.perf_counter()
        simulate(network, duration_ms=duration_ms, generator=gen, **kw)
        common.sync(device)
        total = time.perf_counter() - t0
    model_s = duration_ms * 1e-3
    out = {part: acc.get(part, 0.0) / model_s for part in PARTS[:-1]}
    out["other"] = max(0.0, total / model_s - sum(out.values()))
    out["total"] = total / model_s
    blocks = round(duration_ms / network.dt_ms) / network.block_steps
    out["backend_kernel_calls_per_block"] = launches[0] / blocks
    if device.startswith("cuda"):
        out["cuda_kernels_per_block"] = cuda_kernels_per_block(network, gen, kw)
    out["backend"] = backend.describe()
    return out


def format_table(results: dict[str, dict[str, float]]) -> str:
    names = list(results)
    header = ["part"] + [f"{n} s/model s" for n in names] + [f"{n} %" for n in names]
    if len(names) == 2:
        header.append(f"speed-up ({names[1]} / {names[0]})")
    lines = []
    for part in (*PARTS, "total"):  # launch counts are printed below the table
        cells = [part]
        cells += [f"{results[n][part]:.3f}" for n in names]
        cells += [f"{100 * results[n][part] / results[n]['total']:.1f}" for n in names]
        if len(names) == 2:
            a, b = results[names[0]][part], results[names[1]][part]
            cells.append(f"x{b / a:.1f}" if a > 1e-9 else "-")
        lines.append(cells)
    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header))]
    fmt = lambda r: " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()  # noqa: E731
    return "\n".join([fmt(header), "-+-".join("-" * w for w in widths), *map(fmt, lines)])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.profile_step", description=__doc__.splitlines()[0])
    p.add_argument("--experiment", default="brunel_ai")
    p.add_argument("--duration-ms", type=float, default=500.0)
    p.add_argument("--warmup-ms", type=float, default=common.WARMUP_MS)
    p.add_argument("--device", default="cpu")
    p.add_argument("--replicas", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-reference", action="store_true", help="profile the compiled CPU path only")
    p.add_argument("--backend", default="auto", help="auto | numba | torch | triton (the first profiled variant)")
    p.add_argument("--out", type=Path, default=None, help="also write the figures as JSON")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    from torchsnn.config import build_network

    cfg = common.compose(
        [f"+experiment={args.experiment}", f"simulation.device={args.device}", f"simulation.backend={args.backend}"]
    )
    built = build_network(cfg)
    results: dict[str, dict[str, float]] = {}
    if args.device.startswith("cuda"):
        variants = [("cuda", args.backend)]
    else:
        first = "numba" if args.backend == "auto" else args.backend
        variants = [("compiled" if first == "numba" else first, first)]
        variants += [] if args.no_reference or first == "torch" else [("torch-ref", "torch")]
    for name, kind in variants:
        built.network.set_backend(kind)  # resolved by the reset inside profile()
        results[name] = profile(built.network, cfg, args.duration_ms, args.warmup_ms, args.replicas)
    machine = common.machine_info(args.device)
    print(
        f"profile of one run of {args.experiment}: {args.duration_ms:g} ms of model time after {args.warmup_ms:g} ms"
        f" warm-up, B={args.replicas}, {machine['cpu_model']} ({machine['cpu_count']} cores), {args.threads} thread(s)"
    )
    print(format_table(results))
    for name, r in results.items():
        extra = f", {r['cuda_kernels_per_block']:.1f} CUDA kernels" if "cuda_kernels_per_block" in r else ""
        print(f"{name}: backend {r['backend']['name']}, {r['backend_kernel_calls_per_block']:.1f} backend kernel "
              f"launches per block{extra}")  # fmt: skip
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        record = {"machine": machine, "args": {**vars(args), "out": str(args.out)}, **results}
        args.out.write_text(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
