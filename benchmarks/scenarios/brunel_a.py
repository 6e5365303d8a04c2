"""``brunel_a``: Brunel (2000) model A (experiment ``brunel_ai``), 1 s of model time after a 0.1 s warm-up.

Rows: torchsnn with the compiled CPU kernels, torchsnn on the torch reference path (``set_cpu_kernels(False)``;
same seed, so the spikes must be identical), or torchsnn on CUDA; then the peers (Brian2, NEST) running the
very same exported network, with the ratios of synaptic events per second measured in this invocation.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import common
from benchmarks.common import Options

NAME = "brunel_a"
EXPERIMENT = "brunel_ai"
RATE_TOLERANCE = 0.05  # peers' mean rates must lie within 5% of torchsnn's


def overrides(opts: Options, experiment: str = EXPERIMENT) -> list[str]:
    out = [f"+experiment={experiment}", f"simulation.device={opts.device}", "simulation.replicas=1"]
    if opts.seed is not None:
        out.append(f"seed={opts.seed}")
    return out


def build(opts: Options, experiment: str = EXPERIMENT) -> tuple[Any, dict[str, Any], float, float, float]:
    """(built run, config, build seconds, memory baseline before the build, build peak memory)."""
    from torchsnn.config import build_network

    cfg = common.compose(overrides(opts, experiment))
    probe = common.MemoryProbe(opts.device)
    baseline = probe.current_mb()
    probe.start()
    t0 = time.perf_counter()
    built = build_network(cfg)
    common.sync(opts.device)
    build_s = time.perf_counter() - t0
    return built, cfg, build_s, baseline, probe.peak_mb() - baseline


def torchsnn_rows(opts: Options, scenario: str = NAME, experiment: str = EXPERIMENT) -> tuple[list[dict], Any, dict]:
    from torchsnn import kernels

    built, cfg, build_s, baseline, build_mem = build(opts, experiment)
    net = built.network
    info = {
        "baseline_mb": baseline,
        "build_s": build_s,
        "build_peak_mem_mb": build_mem,
        "n_neurons": sum(net.population_sizes().values()),
        "n_synapses": common.n_synapses(net),
    }
    rows, runs = [], {}
    if opts.cuda:
        variants = [("torchsnn cuda", None)]
    else:
        variants = [("torchsnn cpu compiled", True)] + ([("torchsnn cpu torch-ref", False)] if opts.reference else [])
    for variant, compiled in variants:
        previous = kernels.set_cpu_kernels(compiled) if compiled is not None else None
        try:
            run = common.timed_run(net, cfg, opts, 1, baseline)
        finally:
            if previous is not None:
                kernels.set_cpu_kernels(previous)
        runs[variant] = run
        rows.append(common.run_row(scenario, variant, run, **info))
    if len(runs) == 2:
        a, b = runs.values()
        same = all(np.array_equal(x[k], y[k]) for x, y in zip(a.counts, b.counts, strict=True) for k in x)
        for r in rows:
            r["identical_spike_counts_compiled_vs_ref"] = same
    return rows, built, cfg


def peer_rows(opts: Options, built: Any, cfg: dict, reference_rates: dict[str, float]) -> list[dict]:
    from benchmarks.peers import runner

    tmp = Path(tempfile.mkdtemp(prefix="torchsnn_bench_", dir=opts.workdir))
    rows = []
    try:
        t0 = time.perf_counter()
        npz = runner.export_network(
            built.network,
            cfg,
            tmp / "network",
            warmup_ms=opts.warmup_ms,
            duration_ms=opts.duration_ms,
            seed=int(cfg["seed"]),
            repeats=opts.repeats,
        )
        export_s = time.perf_counter() - t0
        for peer in opts.peers:
            res = runner.run_peer(peer, npz, tmp / f"{peer}.json")
            if "error" in res:
                rows.append({"scenario": NAME, "variant": peer, "skipped": res["error"]})
                continue
            variant = f"{peer} {res['version']} ({res.get('target', 'native')}, {res['threads']} thr)"
            warnings = []
            for pop, ours in reference_rates.items():
                theirs = res["rate_mean_hz"].get(pop)
                if theirs is None or abs(theirs - ours) > RATE_TOLERANCE * ours:
                    warnings.append(f"{pop}: {theirs} Hz vs torchsnn {ours:.2f} Hz (more than 5% apart)")
            rows.append(
                common.row(
                    NAME,
                    variant,
                    peer=peer,
                    batch=1,
                    wall_s=res["wall_s"],
                    warmup_s=res["warmup_s"],
                    model_s=res["model_s"],
                    rtf=res["rtf"],
                    repeats=res["repeats"],
                    walls_s=res["walls_s"],
                    events_per_s_each=res["events_per_s_each"],
                    synaptic_events=res["synaptic_events"],
                    events_per_s=res["events_per_s"],
                    peak_mem_mb=res["peak_rss_mb"] - res["rss_after_import_mb"],
                    rate_mean_hz=res["rate_mean_hz"],
                    rate_mean_all_hz=res["rate_mean_all_hz"],
                    build_s=res["build_s"],
                    export_s=export_s,
                    n_synapses=res.get("n_synapses"),
                    rate_warnings=warnings,
                    peer_details=res,
                )
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


def ratios(rows: list[dict]) -> dict[str, float]:
    """torchsnn / peer synaptic events per second for every pair of rows of this run, and compiled / torch-ref."""
    ours = [r for r in rows if "peer" not in r and "events_per_s" in r]
    peers = [r for r in rows if "peer" in r and "events_per_s" in r]
    out = {f"{a['variant']} / {b['peer']}": a["events_per_s"] / b["events_per_s"] for a in ours for b in peers}
    compiled = [r for r in ours if "compiled" in r["variant"] and "again" not in r["variant"]]
    reference = [r for r in ours if "torch-ref" in r["variant"]]
    if compiled and reference:
        out[f"{compiled[0]['variant']} / torch-ref"] = compiled[0]["events_per_s"] / reference[0]["events_per_s"]
    return out


def repeat_after_peers(opts: Options, built: Any, cfg: dict, baseline_mb: float) -> dict:
    """The first torchsnn variant once more, after the peers (A B C A): on a shared machine whose load drifts,
    the two torchsnn rows bracket the peers' and show how much the conditions moved during the comparison."""
    from torchsnn import kernels

    previous = kernels.set_cpu_kernels(True) if not opts.cuda else None
    try:
        run = common.timed_run(built.network, cfg, opts, 1, baseline_mb)
    finally:
        if previous is not None:
            kernels.set_cpu_kernels(previous)
    variant = ("torchsnn cuda" if opts.cuda else "torchsnn cpu compiled") + " (again, after peers)"
    return common.run_row(
        NAME,
        variant,
        run,
        n_neurons=sum(built.network.population_sizes().values()),
        n_synapses=common.n_synapses(built.network),
    )


def run(opts: Options) -> list[dict]:
    rows, built, cfg = torchsnn_rows(opts)
    if opts.peers:
        rates = rows[0]["rate_mean_hz"]
        peers = peer_rows(opts, built, cfg, rates)
        rows += peers
        if any("events_per_s" in r for r in peers):
            again = repeat_after_peers(opts, built, cfg, rows[0]["baseline_mb"])
            again["build_s"] = rows[0]["build_s"]
            rows.append(again)
    for r in rows:
        if "peer" not in r and "events_per_s" in r:
            r["ratios"] = {k: v for k, v in ratios(rows).items() if k.startswith(r["variant"] + " / ")}
    return rows
