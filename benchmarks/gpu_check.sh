#!/usr/bin/env bash
# gpu_check.sh -- one-shot check of torchsnn's GPU path on ONE CUDA GPU (written for an H200), offline, < 8 min.
# Project copy of ../shared/device/gpu_check.sh, kept in step with the backend API (torchsnn.kernels.backend).
#
#   cd <torchsnn checkout> && OUT=/writable/dir bash /path/to/gpu_check.sh            # on the GPU machine
#   cd <torchsnn checkout> && OUT=/tmp/x bash /path/to/gpu_check.sh --dry-run         # anywhere, CPU only
#
# Everything it writes goes under $OUT (logs, JSON, Triton/numba/pycache caches, TMPDIR, helper scripts); the
# checkout is only read. No network: missing hydra-core / omegaconf / antlr4 are installed with --no-index from
# the wheels that ship next to the project (../shared/device/wheels, or .whl/ after prep-wheels.sh, or
# $WHEELS_DIR) into $OUT/site, and the project itself is put on PYTHONPATH (no build step, nothing resolved).
#
# Steps (expected wall time on an H200 host with 16 cores):
#   0 environment: GPU, driver, torch/CUDA/triton/numba versions, git revision ........................   ~5 s
#   1 offline install + import check of everything the GPU path needs .................................  ~10 s
#   2 the CUDA tests (pytest -m cuda: the 10 tests skipped on a CPU machine) ........................... 60-120 s
#   3 kernel probes: Triton vs torch reference bit-exactness on the GPU (delivery, 4 weight layouts; LIF
#     block, with and without FP fusion), run-to-run determinism, empty-program cost of the delivery grid,
#     events/s of the delivery kernel alone at N_pre = 1e4, 1e5, 1e6, host launch overhead, kernels and
#     wall time per min-delay block ...................................................................  30-60 s
#   4 benchmarks.run --scenarios brunel_a on cuda (RTF, events/s) + benchmarks.profile_step on cuda ...  20-40 s
#   5 benchmarks.run --scenarios brunel_a_batch --batch-sizes 1,4,16,64 ............................... 30-90 s
#   6 CPU vs CUDA on the same network and seed (Brunel A, full size): rates, CV, KS distance, scaffold
#     identity, CUDA run-to-run identical spikes ..........................................................  30-80 s
#   7 scale: benchmarks.run --scenarios scale, N = 1e5, 2.5e5, 5e5, 1e6 in turn, each in its own process,
#     stopping before the point that would not fit in ~30 s; reports the largest N that did .............  30-120 s
#   8 compact summary (also $OUT/summary.txt, $OUT/summary.json) ......................................   ~2 s
# A global budget (GPU_CHECK_BUDGET_S, default 450 s; 1800 s for --dry-run) shortens or skips the late steps if
# early ones overrun.
#
# --dry-run (or GPU_CHECK_DRY_RUN=1): device=cpu everywhere, tiny sizes and durations; the "GPU path" is the
# Triton code executed by Triton's interpreter (TRITON_INTERPRET=1, simulation.backend=triton) wherever the step
# is about the kernels. Checks that every command and every Python part runs; the numbers mean nothing.
set -uo pipefail

DRY=${GPU_CHECK_DRY_RUN:-0}
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY=1 ;;
    -h|--help) sed -n '2,33p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done

ROOT=$(pwd)
if [[ ! -f "$ROOT/pyproject.toml" || ! -d "$ROOT/torchsnn" || ! -d "$ROOT/benchmarks" ]]; then
  echo "run this from the torchsnn project root (pyproject.toml, torchsnn/, benchmarks/)" >&2; exit 2
fi
: "${OUT:?set OUT to a writable folder}"
mkdir -p "$OUT" || exit 2
OUT=$(cd "$OUT" && pwd)
PY=${PYTHON:-python3}
T_START=$(date +%s)
# the budget bounds the GPU run; a dry run only checks that every step runs, on whatever (shared) CPU is at hand
BUDGET=${GPU_CHECK_BUDGET_S:-$([[ "$DRY" == 1 ]] && echo 1800 || echo 450)}
STATUS="$OUT/status.tsv"
printf 'step\tstatus\tseconds\tnote\n' > "$STATUS"

# everything a run writes goes under $OUT
mkdir -p "$OUT/tmp" "$OUT/site" "$OUT/py" "$OUT/triton_cache" "$OUT/numba_cache" "$OUT/pycache" "$OUT/mpl"
export TMPDIR="$OUT/tmp" TRITON_CACHE_DIR="$OUT/triton_cache" NUMBA_CACHE_DIR="$OUT/numba_cache"
export PYTHONPYCACHEPREFIX="$OUT/pycache" MPLCONFIGDIR="$OUT/mpl" MPLBACKEND=Agg PYTHONUNBUFFERED=1
export PYTHONPATH="$ROOT:$OUT/site:$OUT/py${PYTHONPATH:+:$PYTHONPATH}"

if [[ "$DRY" == 1 ]]; then
  DEV=cpu
  KERNEL_ENV=(TRITON_INTERPRET=1 OMP_NUM_THREADS=1)
  echo "DRY RUN: device=cpu, tiny sizes; Triton kernels through the interpreter where the step is about them"
else
  DEV=${GPU_CHECK_DEVICE:-cuda}
  KERNEL_ENV=(GPU_CHECK=1)
fi

elapsed() { echo $(( $(date +%s) - T_START )); }
left() { echo $(( BUDGET - $(elapsed) )); }
# run_step NAME TIMEOUT_S CMD...: logs to $OUT/NAME.log, records status; never aborts the script
run_step() {
  local name=$1 limit=$2; shift 2
  local rem; rem=$(left)
  if (( rem < 15 )); then
    printf '%s\tSKIPPED\t0\tglobal budget of %ss spent\n' "$name" "$BUDGET" >> "$STATUS"
    echo "[$(elapsed)s] $name: skipped (budget)"; return 0
  fi
  (( limit > rem - 10 )) && limit=$(( rem - 10 ))
  echo "[$(elapsed)s] $name (limit ${limit}s) ..."
  local t0=$SECONDS rc
  if declare -F "$1" >/dev/null; then   # a shell function of this script (short): subshell, no timeout
    ( "$@" ) > "$OUT/$name.log" 2>&1
  else
    timeout --kill-after=10 "$limit" "$@" > "$OUT/$name.log" 2>&1
  fi
  rc=$?
  local dt=$(( SECONDS - t0 )) st=OK
  (( rc == 124 || rc == 137 )) && st=TIMEOUT
  (( rc != 0 && rc != 124 && rc != 137 )) && st="FAILED(rc=$rc)"
  printf '%s\t%s\t%s\t%s\n' "$name" "$st" "$dt" "$OUT/$name.log" >> "$STATUS"
  echo "[$(elapsed)s] $name: $st in ${dt}s"; tail -n 3 "$OUT/$name.log" | sed 's/^/    /'
  return 0
}

# ---------------------------------------------------------------------------------------------- python helpers
# numba is optional for torchsnn (torch reference path on the CPU) but benchmarks/common.py:machine_info imports
# it unconditionally: this wrapper registers a placeholder module *after* torchsnn decided numba is absent, so
# the harness can record its machine info; with numba installed it changes nothing.
cat > "$OUT/py/gpu_check_bench.py" <<'EOF'
import sys, types
import torchsnn.kernels as _k  # decides NUMBA_AVAILABLE first
if not _k.NUMBA_AVAILABLE:
    sys.modules.setdefault("numba", types.SimpleNamespace(__version__="not installed"))
mod = sys.argv[1]
sys.argv = [f"python -m {mod}", *sys.argv[2:]]
import runpy
runpy.run_module(mod, run_name="__main__", alter_sys=True)
EOF

cat > "$OUT/py/gpu_check_probes.py" <<'EOF'
"""Kernel probes (step 3). Prints one line per check and writes --out JSON."""
import argparse, json, math, os, sys, time
import numpy as np
import torch

ap = argparse.ArgumentParser()
ap.add_argument("--device", default="cuda"); ap.add_argument("--dry", action="store_true")
ap.add_argument("--only", default=""); ap.add_argument("--out", required=True)
a = ap.parse_args()
dev = torch.device(a.device)
cuda = dev.type == "cuda"
from torchsnn.kernels import select_backend
from torchsnn.delivery import deliver_block
from torchsnn.populations import LIFPopulation, NeuronPopulation
res = {"device": str(dev), "fp_fusion_env": os.environ.get("TRITON_DEFAULT_FP_FUSION")}
if cuda:
    res["gpu"] = torch.cuda.get_device_name(dev)
backend = select_backend(dev, "triton")  # raises with the reason when Triton cannot run here
from torchsnn.kernels import triton_cuda
res["backend"] = backend.describe()

def sync():
    if cuda: torch.cuda.synchronize(dev)

def timeit(fn, reps):
    fn(); sync()
    if cuda:
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record(); [fn() for _ in range(reps)]; e.record(); e.synchronize()
        return s.elapsed_time(e) / 1e3 / reps
    t = time.perf_counter(); [fn() for _ in range(reps)]; return (time.perf_counter() - t) / reps

g = torch.Generator(device="cpu").manual_seed(0)

# (a) delivery: Triton kernel vs the torch reference (same int64 fixed-point ring, same device), 4 layouts; twice
if not a.only or a.only == "deliver":
    n_pre, n_post, batch, m, slots = (60, 40, 2, 4, 7) if a.dry else (3000, 2000, 3, 15, 30)
    mask = torch.rand(n_pre, n_post, generator=g) < 0.05
    counts = mask.sum(1)
    row_ptr = torch.zeros(n_pre + 1, dtype=torch.int64); row_ptr[1:] = counts.cumsum(0)
    post = mask.nonzero()[:, 1].to(torch.int32)
    e = post.numel()
    spikes = torch.rand(m, batch, n_pre, generator=g) < 0.05
    layouts = {"homogeneous": (torch.tensor(0.1), False), "per_edge_shared": (torch.randn(e, generator=g), False),
               "per_edge_replica": (torch.randn(batch, e, generator=g), False),
               "per_row": (torch.randn(batch, n_pre, generator=g), True)}
    out = {}
    for name, (w, per_row) in layouts.items():
        rings = []
        for kind in ("ref", "triton", "triton again"):
            ring = torch.zeros(slots, batch, n_post, dtype=torch.int64, device=dev)
            args = (spikes.to(dev), row_ptr.to(dev), post.to(dev), w.to(dev), ring, 5)
            if kind == "ref":
                deliver_block(*args, per_row=per_row)
            else:
                triton_cuda.deliver(*args, per_row=per_row)
            rings.append(ring.cpu())
        exact, determ = torch.equal(rings[0], rings[1]), torch.equal(rings[1], rings[2])
        out[name] = {"bit_exact_vs_reference": exact, "deterministic": determ, "edges": e}
        print(f"delivery {name}: exact vs reference {exact}, run-to-run identical {determ}")
    res["delivery_exactness"] = out

# (b) LIF block: Triton vs NeuronPopulation.reference_block (torch ops on the same device, same int64 ring)
if not a.only or a.only == "lif":
    n, batch, m, slots, blocks = (37, 2, 6, 7, 3) if a.dry else (200_000, 2, 15, 15, 20)
    pops = [LIFPopulation("E", n, 0.1) for _ in range(2)]
    v0 = (torch.rand(batch, n, generator=g) * 20 + 5).to(dev)
    ring0 = torch.randint(-(2**33), 2**33, (slots, batch, n), generator=g).to(dev)
    drives = [(torch.randn(m, batch, n, generator=g) + 1).to(dev) for _ in range(blocks)]
    outs = []
    for k, pop in enumerate(pops):
        pop.to(dev); pop.reset_state(batch, v_init_mv=v0)
        ring = ring0.clone(); sp = []
        for b in range(blocks):
            first = (b * m) % slots
            if k == 0:
                s, _ = pop.reference_block(ring, first, drives[b], m, [])
            else:
                s, _ = triton_cuda.lif_block(pop.v_mv, pop.refractory_left, ring, first, drives[b], m, [],
                                             pop.decay, pop.theta_mv, pop.v_reset_mv, pop.refractory_steps)
            sp.append(s.cpu())
        sync(); outs.append((torch.cat(sp), pop.v_mv.cpu(), pop.refractory_left.cpu()))
    (s0, v0_, r0), (s1, v1_, r1) = outs
    mism = int((v0_ != v1_).sum())
    res["lif_exactness"] = {"spikes_equal": torch.equal(s0, s1), "voltage_mismatches": mism,
                            "max_abs_voltage_diff_mv": float((v0_ - v1_).abs().max()),
                            "refractory_equal": torch.equal(r0, r1), "neuron_steps": n * batch * m * blocks,
                            "spikes": int(s0.sum())}
    print(f"lif block: spikes equal {torch.equal(s0, s1)}, voltage mismatches {mism} of {n * batch} "
          f"(max |dv| {res['lif_exactness']['max_abs_voltage_diff_mv']:.3g} mV; the kernels compile with enable_fp_fusion=False)")

# (c) delivery kernel alone: cost of the grid of empty programs, and events/s with a realistic spike density
if not a.only or a.only == "bench":
    sizes, k_out, reps = ((200,), 20, 1) if a.dry else ((10_000, 100_000, 1_000_000), 1000, 10)
    m, slots, p = 15, 15, 0.0038  # Brunel A: 38 Hz x 0.1 ms per step
    bench = []
    for n_pre in sizes:
        try:
            row_ptr = (torch.arange(n_pre + 1, dtype=torch.int64) * k_out).to(dev)
            post = torch.randint(0, n_pre, (n_pre * k_out,), dtype=torch.int32, device=dev)
            ring = torch.zeros(slots, 1, n_pre, dtype=torch.int64, device=dev)
            w = torch.tensor(0.1, device=dev)
            zero = torch.zeros(m, 1, n_pre, dtype=torch.bool, device=dev)
            some = torch.rand(m, 1, n_pre, device=dev) < p
            # the event-list delivery alone (the list compacted once, outside the timing), and the compaction
            step = torch.zeros(1, dtype=torch.int64, device=dev)
            programs = triton_cuda.delivery_programs(dev)
            def compacted(sp):
                ev = torch.empty(sp.numel(), dtype=torch.int64, device=dev); cur = torch.zeros(2, dtype=torch.int64, device=dev)
                triton_cuda._compact_kernel[(triton_cuda.triton.cdiv(n_pre, 256), 1, m)](
                    sp.view(torch.int8), ev, cur, cur[1:], ev.numel(), 1, n_pre, BLOCK=256)
                return ev, cur
            (ev0, c0), (ev1, c1) = compacted(zero), compacted(some)
            chunks = triton_cuda.triton.cdiv(k_out, 128)
            dl = lambda ev, cur: triton_cuda.launch_delivery(ev, cur, step, 0, row_ptr, post, w, ring, False, chunks,
                                                              n_pre, programs)
            t_empty = timeit(lambda: dl(ev0, c0), reps)
            t_some = timeit(lambda: dl(ev1, c1), reps)
            t_compact = timeit(lambda: compacted(some), reps)
            events = int(some.sum()) * k_out
            row = {"n_pre": n_pre, "out_degree": k_out, "programs": programs, "s_per_launch_empty": t_empty,
                   "s_per_compaction": t_compact,
                   "empty_programs_per_s": programs / t_empty, "s_per_launch_p": t_some, "events": events,
                   "events_per_s_kernel": events / t_some,
                   "events_per_s_net_of_empty": events / max(t_some - t_empty, 1e-9)}
            bench.append(row)
            print(f"deliver N_pre={n_pre:>8}: empty grid {t_empty*1e6:9.1f} us ({row['empty_programs_per_s']:.3g} "
                  f"programs/s); p={p}: {t_some*1e6:9.1f} us, {row['events_per_s_kernel']:.3g} events/s "
                  f"({row['events_per_s_net_of_empty']:.3g} net of the empty grid)")
            del post, ring, zero, some
            if cuda: torch.cuda.empty_cache()
        except torch.cuda.OutOfMemoryError as err:  # pragma: no cover
            bench.append({"n_pre": n_pre, "error": str(err)[:200]}); break
    res["delivery_benchmark"] = bench
    # host-side launch overhead: tiny Triton launch and tiny torch op, no sync in between
    row_ptr = torch.tensor([0, 1], dtype=torch.int64, device=dev); post = torch.zeros(1, dtype=torch.int32, device=dev)
    ring = torch.zeros(1, 1, 1, dtype=torch.int64, device=dev); sp = torch.zeros(1, 1, 1, dtype=torch.bool, device=dev)
    x = torch.zeros(16, device=dev); w = torch.tensor(0.1, device=dev)
    nrep = 20 if a.dry else 2000
    ev_t, cur_t, st_t = torch.zeros(1, dtype=torch.int64, device=dev), torch.zeros(1, dtype=torch.int64, device=dev), torch.zeros(1, dtype=torch.int64, device=dev)
    launch = lambda: triton_cuda.launch_delivery(ev_t, cur_t, st_t, 0, row_ptr, post, w, ring, False, 1, 1, 1)
    for label, fn in (("triton_launch_us", launch),
                      ("torch_op_us", lambda: x.add_(1.0))):
        fn(); sync(); t = time.perf_counter()
        for _ in range(nrep): fn()
        host = (time.perf_counter() - t) / nrep; sync()
        res[label] = host * 1e6
    print(f"host launch overhead: Triton deliver {res['triton_launch_us']:.1f} us, torch op {res['torch_op_us']:.1f} us")

# (d) a small Brunel network (GPU work negligible): wall time and kernel launches per min-delay block
if not a.only or a.only == "block":
    from benchmarks import common
    from torchsnn.config import build_network
    from torchsnn.simulation import simulate
    ne, ni, ke, ki = (80, 20, 8, 2) if a.dry else (800, 200, 80, 20)
    small = [f"network.populations.E.size={ne}", f"network.populations.I.size={ni}",
             f"network.projections.EE.connectivity.indegree={ke}", f"network.projections.IE.connectivity.indegree={ke}",
             f"network.projections.EI.connectivity.indegree={ki}", f"network.projections.II.connectivity.indegree={ki}"]
    cfg = common.compose(["+experiment=brunel_ai", f"simulation.device={a.device}", *small])
    built = build_network(cfg); net = built.network
    kw = dict(generator=built.generator, progress=False, voltage_every_ms=0.0, raster_neurons=0)
    dur = 4.5 if a.dry else 300.0
    simulate(net, duration_ms=dur, **kw); sync()
    t = time.perf_counter(); simulate(net, duration_ms=dur, **kw); host = time.perf_counter() - t; sync()
    total = time.perf_counter() - t
    blocks = round(dur / 0.1) / net.block_steps
    res["small_network_per_block"] = {"host_s_per_block": host / blocks, "wall_s_per_block": total / blocks,
                                      "rtf_floor_brunel_a_from_overhead": total / blocks * (1e4 / net.block_steps)}
    try:
        from torch.profiler import ProfilerActivity, profile
        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
        with profile(activities=acts) as prof:
            simulate(net, duration_ms=4.5 if a.dry else 30.0, **kw); sync()
        nb = round((4.5 if a.dry else 30.0) / 0.1) / net.block_steps
        names = [ev.name for ev in prof.events()]
        launches = sum(1 for nm in names if "LaunchKernel" in nm)
        kernels = sum(1 for ev in prof.events() if getattr(ev, "device_type", None) is not None
                      and str(ev.device_type).endswith("CUDA"))
        res["small_network_per_block"].update(launch_calls_per_block=launches / nb, gpu_kernels_per_block=kernels / nb,
                                              profiler_events_per_block=len(names) / nb)
    except Exception as err:  # the profiler is a bonus
        res["small_network_per_block"]["profiler_error"] = repr(err)[:200]
    print("small network, per min-delay block:", json.dumps(res["small_network_per_block"]))

with open(a.out, "w") as fh:
    json.dump(res, fh, indent=2, default=str)
print("wrote", a.out)
EOF

cat > "$OUT/py/gpu_check_compare.py" <<'EOF'
"""Step 6: the same network and seed on the CPU and on the GPU path (and the GPU path twice)."""
import argparse, hashlib, json, os, time
import numpy as np
import torch
from scipy import stats

ap = argparse.ArgumentParser()
ap.add_argument("--gpu-device", default="cuda"); ap.add_argument("--dry", action="store_true")
ap.add_argument("--seed", type=int, default=1234); ap.add_argument("--cpu-threads", type=int, default=8)
ap.add_argument("--out", required=True)
a = ap.parse_args()
from benchmarks import common
from torchsnn.config import build_network
from torchsnn.simulation import simulate

ov = ["+experiment=brunel_ai", f"seed={a.seed}", "simulation.replicas=1"]
if a.dry:  # tiny network; the "gpu" runs are the Triton kernels under the interpreter on the CPU
    ov += ["network.populations.E.size=80", "network.populations.I.size=20",
           "network.projections.EE.connectivity.indegree=20", "network.projections.IE.connectivity.indegree=20",
           "network.projections.EI.connectivity.indegree=5", "network.projections.II.connectivity.indegree=5",
           "network.projections.EE.weight_mv=0.5", "network.projections.IE.weight_mv=0.5",
           "network.projections.EI.weight_mv=2.5", "network.projections.II.weight_mv=2.5"]
duration, transient = (30.0, 10.5) if a.dry else (1200.0, 200.0)

def fingerprint(net):
    h = hashlib.sha1()
    for name, p in net.projections.items():
        h.update(name.encode()); h.update(p.row_ptr.cpu().numpy().tobytes()); h.update(p.post_index.cpu().numpy().tobytes())
    return h.hexdigest()[:16]

runs = {}
for label, dev, kind in (("cpu", "cpu", "numba"), ("gpu", a.gpu_device, "triton"), ("gpu_again", a.gpu_device, "triton")):
    torch.set_num_threads(a.cpu_threads if label == "cpu" else 1)
    cfg = common.compose([*ov, f"simulation.device={dev}", f"simulation.backend={kind}"])
    t0 = time.perf_counter(); built = build_network(cfg); build_s = time.perf_counter() - t0
    net = built.network
    t0 = time.perf_counter()
    res = simulate(net, duration_ms=duration, transient_ms=transient, generator=built.generator, progress=False,
                   voltage_every_ms=1.0)
    if dev.startswith("cuda"): torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    runs[label] = {"device": dev, "backend": res.backend, "ring_dtype": str(net.ring("E").dtype), "build_s": build_s, "wall_s": wall,
                   "rtf": wall / (duration * 1e-3), "scaffold": fingerprint(net), "summary": res.summary(),
                   "rates": {n: st["rates_hz"].flatten().numpy() for n, st in res.spike_stats.items()},
                   "counts": {n: st["counts"].numpy() for n, st in res.spike_stats.items()}}
    s = runs[label]["summary"]
    print(f"{label:9s} {dev:6s} ring {runs[label]['ring_dtype']:11s} wall {wall:7.2f} s (RTF {runs[label]['rtf']:.3f}) "
          + "  ".join(f"{n}: {v['rate_mean_hz']:.2f} Hz sd {v['rate_std_hz']:.2f} CV {v['cv_isi_mean']:.3f} "
                      f"chi {v['chi']:.3f}" for n, v in s.items()))

cpu, gpu = runs["cpu"], runs["gpu"]
comparison = {}
for name in cpu["rates"]:
    x, y = cpu["rates"][name], gpu["rates"][name]
    ks = stats.ks_2samp(x, y)
    se = float(np.hypot(x.std(ddof=1), y.std(ddof=1)) / np.sqrt(x.size))
    comparison[name] = {"cpu_mean_hz": float(x.mean()), "gpu_mean_hz": float(y.mean()),
                        "rel_diff": float(y.mean() / x.mean() - 1), "diff_in_se": float((y.mean() - x.mean()) / se),
                        "ks_statistic": float(ks.statistic), "ks_pvalue": float(ks.pvalue),
                        "cv_cpu": cpu["summary"][name]["cv_isi_mean"], "cv_gpu": gpu["summary"][name]["cv_isi_mean"],
                        "theory_hz": 37.95 if not a.dry else None}
    print(f"{name}: cpu {x.mean():.2f} Hz, gpu {y.mean():.2f} Hz ({100 * comparison[name]['rel_diff']:+.2f} %, "
          f"{comparison[name]['diff_in_se']:+.1f} SE), KS D={ks.statistic:.4f} p={ks.pvalue:.3g}")
same_scaffold = cpu["scaffold"] == gpu["scaffold"] == runs["gpu_again"]["scaffold"]
reproducible = all(np.array_equal(gpu["counts"][n], runs["gpu_again"]["counts"][n]) for n in gpu["counts"])
print(f"same scaffold on both devices: {same_scaffold}; GPU path run twice, identical spike counts: {reproducible}")
out = {"duration_ms": duration, "transient_ms": transient, "seed": a.seed, "comparison": comparison,
       "same_scaffold": same_scaffold, "gpu_reproducible": reproducible,
       "runs": {k: {kk: vv for kk, vv in v.items() if kk not in ("rates", "counts")} for k, v in runs.items()}}
with open(a.out, "w") as fh:
    json.dump(out, fh, indent=2, default=float)
print("wrote", a.out)
EOF

cat > "$OUT/py/gpu_check_summary.py" <<'EOF'
"""Step 8: compact summary of everything under OUT."""
import glob, json, os, re, sys
out = sys.argv[1]; root = sys.argv[2]; dry = sys.argv[3] == "1"
S, lines = {}, []
def load(p):
    try:
        with open(p) as fh: return json.load(fh)
    except Exception: return None
def say(s=""): lines.append(s)
say(f"== torchsnn GPU check {'(DRY RUN on the CPU: numbers mean nothing)' if dry else ''} ==")
env = open(os.path.join(out, "00_env.log")).read() if os.path.exists(os.path.join(out, "00_env.log")) else ""
for key in ("gpu:", "torch", "triton", "numba", "git"):
    for l in env.splitlines():
        if l.startswith(key): say("  " + l.strip()); break
say("steps:")
for row in open(os.path.join(out, "status.tsv")).read().splitlines()[1:]:
    name, st, sec, *_ = row.split("\t"); say(f"  {name:22s} {st:14s} {sec:>4s} s")
log = os.path.join(out, "02_cuda_tests.log")
if os.path.exists(log):
    tail = [l for l in open(log).read().splitlines() if re.search(r"(passed|failed|skipped|error)", l) and " in " in l]
    S["cuda_tests"] = tail[-1] if tail else "?"
    fails = [l for l in open(log).read().splitlines() if l.startswith(("FAILED", "ERROR"))]
    say(f"CUDA tests: {S['cuda_tests']}"); [say("  " + f) for f in fails[:10]]
pr = load(os.path.join(out, "03_probes.json")) or {}
pr0 = load(os.path.join(out, "03_probes_nofusion.json")) or {}
if pr:
    d = pr.get("delivery_exactness", {})
    say("delivery kernel vs reference (bit-exact / deterministic): " + ", ".join(
        f"{k} {v['bit_exact_vs_reference']}/{v['deterministic']}" for k, v in d.items()))
    for lab, p in (("default FP fusion", pr), ("TRITON_DEFAULT_FP_FUSION=0", pr0)):
        l = p.get("lif_exactness")
        if l: say(f"LIF kernel vs torch reference ({lab}): spikes equal {l['spikes_equal']}, voltage mismatches "
                  f"{l['voltage_mismatches']}, max |dv| {l['max_abs_voltage_diff_mv']:.3g} mV")
    for b in pr.get("delivery_benchmark", []):
        if "error" in b: say(f"  deliver N_pre={b['n_pre']}: {b['error']}"); continue
        say(f"deliver kernel N_pre={b['n_pre']:>8}: empty grid {b['s_per_launch_empty']*1e6:8.1f} us/launch "
            f"({b['empty_programs_per_s']:.2e} programs/s); at 38 Hz {b['events_per_s_kernel']:.2e} events/s")
    if "triton_launch_us" in pr:
        say(f"host overhead: Triton launch {pr['triton_launch_us']:.1f} us, torch op {pr['torch_op_us']:.1f} us")
    sb = pr.get("small_network_per_block")
    if sb:
        say(f"per min-delay block (small net): wall {sb['wall_s_per_block']*1e6:.0f} us, host {sb['host_s_per_block']*1e6:.0f} us"
            + (f", {sb.get('launch_calls_per_block', 0):.0f} launch calls, {sb.get('gpu_kernels_per_block', 0):.0f} GPU kernels"
               if 'launch_calls_per_block' in sb else "")
            + f" -> RTF floor for brunel_a {sb['rtf_floor_brunel_a_from_overhead']:.3f}")
def rows(p):
    r = load(p); return [x for x in (r or {}).get("results", [])]
ref = {r["variant"]: r for r in rows(os.path.join(root, "benchmarks/results/cpu_reference.json"))
       if r.get("scenario") == "brunel_a" and "events_per_s" in r}
cpu_ref = ref.get("torchsnn cpu compiled", {})
for r in rows(os.path.join(out, "04_brunel_a.json")):
    if "skipped" in r: say(f"brunel_a: skipped: {r['skipped']}"); continue
    say(f"brunel_a [{r['variant']}]: RTF {r['rtf']:.3f}, {r['events_per_s']:.3g} events/s, rates "
        + "/".join(f"{v:.2f}" for v in r["rate_mean_hz"].values()) + " Hz, segments "
        + ",".join(f"{w:.2f}" for w in r["walls_s"]) + " s"
        + (f"; vs committed 2-core CPU reference {cpu_ref['events_per_s']:.3g} events/s: x{r['events_per_s']/cpu_ref['events_per_s']:.1f}" if cpu_ref else ""))
    S["brunel_a"] = {"rtf": r["rtf"], "events_per_s": r["events_per_s"]}
prof = load(os.path.join(out, "04_profile.json"))
if prof:
    k = [x for x in prof if x not in ("machine", "args")][0]
    say("profile (synchronised, s per model s): " + ", ".join(f"{p} {v:.3f}" if isinstance(v, (int, float)) else f"{p} {v}" for p, v in prof[k].items()))
b = rows(os.path.join(out, "05_batch.json"))
if b:
    say("brunel_a_batch:  B | RTF     | aggregate events/s | x vs B=1")
    for r in b:
        if "skipped" in r: say(f"   skipped: {r['skipped']}"); continue
        say(f"           {r['batch']:>3} | {r['rtf']:7.3f} | {r['events_per_s']:18.3g} | {r.get('speedup_vs_b1_events') or 1:.2f}")
    S["batch"] = {r["batch"]: r["events_per_s"] for r in b if "events_per_s" in r}
c = load(os.path.join(out, "06_cpu_vs_gpu.json"))
if c:
    for n, v in c["comparison"].items():
        say(f"CPU vs GPU path, {n}: {v['cpu_mean_hz']:.2f} vs {v['gpu_mean_hz']:.2f} Hz ({100*v['rel_diff']:+.2f} %, "
            f"{v['diff_in_se']:+.1f} SE), KS D {v['ks_statistic']:.4f} (p {v['ks_pvalue']:.2g}), CV {v['cv_cpu']:.3f}/{v['cv_gpu']:.3f}")
    say("  backends: " + ", ".join(f"{k} {v.get('backend', {}).get('name')} ({v.get('backend', {}).get('graph_replay', '-')})" for k, v in c["runs"].items()))
    say(f"  same scaffold {c['same_scaffold']}; GPU path reproducible (same seed, twice) {c['gpu_reproducible']}; "
        f"RTF cpu {c['runs']['cpu']['rtf']:.2f} / gpu {c['runs']['gpu']['rtf']:.3f}")
best = None
for p in sorted(glob.glob(os.path.join(out, "07_scale_*.json")), key=lambda s: int(re.findall(r"(\d+)\.json$", s)[0])):
    for r in rows(p):
        if "skipped" in r: say(f"scale: {r.get('variant')}: skipped: {r['skipped'][:120]}"); continue
        say(f"scale {r['variant']:>10}: {r['n_synapses']:.3g} synapses, build {r['build_s']:.1f} s, RTF {r['rtf']:.3f}, "
            f"{r['events_per_s']:.3g} events/s, {r.get('bytes_per_synapse', float('nan')):.2f} B/synapse GPU, rates "
            + "/".join(f"{v:.1f}" for v in r["rate_mean_hz"].values()))
        best = r
sc = os.path.join(out, "07_scale_points.tsv")
if os.path.exists(sc):
    pts = [l.split("\t") for l in open(sc).read().splitlines()[1:]]
    ok = [int(n) for n, rc, sec in pts if rc == "0" and int(sec) <= int(os.environ.get("SCALE_POINT_LIMIT", "30")) + 15]
    say("scale points (N rc s): " + "; ".join(" ".join(p) for p in pts)
        + (f" -> largest N within the limit: {max(ok)}" if ok else ""))
    S["scale_largest_n"] = max(ok) if ok else None
say("targets (shared/performance.md, H100): "
    + (f"brunel_a RTF <= 0.1: {'MET' if S['brunel_a']['rtf'] <= 0.1 else 'MISSED'} ({S['brunel_a']['rtf']:.3f}); " if "brunel_a" in S else "")
    + (f"batch >= 2e10 events/s: {'MET' if max(S['batch'].values()) >= 2e10 else 'MISSED'} (best {max(S['batch'].values()):.3g}); " if S.get("batch") else "")
    + (f"1e9 synapses in <= 12 GB: ~{best['bytes_per_synapse']:.1f} B/synapse at N={best['variant'][2:]} -> ~{best['bytes_per_synapse']:.1f} GB per 1e9 synapses"
       if best and best.get("bytes_per_synapse") else ""))
tc = os.path.join(out, "triton_cache")
variants = {}
for f in glob.glob(os.path.join(tc, "*", "*.json")):
    nm = os.path.basename(f)[:-5]
    if nm.startswith("_") and not nm.startswith("__grp__"): variants[nm] = variants.get(nm, 0) + 1
if variants: say("compiled Triton variants (specialisations) this run: " + ", ".join(f"{k} x{v}" for k, v in variants.items()))
S["lines"] = lines
open(os.path.join(out, "summary.txt"), "w").write("\n".join(lines) + "\n")
json.dump(S, open(os.path.join(out, "summary.json"), "w"), indent=2, default=str)
print("\n".join(lines))
EOF

# ---------------------------------------------------------------------------------------------- step 0
env_info() {
  echo "date: $(date -Is)"; echo "host: $(hostname) cores $(nproc) mem $(free -g 2>/dev/null | awk '/Mem:/{print $2" GiB"}')"
  echo "root: $ROOT"; echo "git: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null) $(git -C "$ROOT" status --porcelain 2>/dev/null | wc -l) changed files"
  if command -v nvidia-smi >/dev/null; then
    echo "gpu: $(nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader 2>&1 | head -1)"
    nvidia-smi 2>&1 | head -15
  else echo "gpu: nvidia-smi not found"; fi
  "$PY" - <<'EOF'
import importlib, sys
print("python", sys.version.split()[0])
for m in ("torch", "triton", "numpy", "scipy", "numba", "hydra", "omegaconf", "tqdm", "tensorboard", "matplotlib", "pytest", "yaml"):
    try:
        mod = importlib.import_module(m); print(f"{m} {getattr(mod, '__version__', '?')}")
    except Exception as e:
        print(f"{m} MISSING ({type(e).__name__})")
import torch
print("torch cuda", torch.version.cuda, "available", torch.cuda.is_available(), "devices", torch.cuda.device_count())
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print(f"device 0: {p.name}, {p.total_memory/2**30:.1f} GiB, {p.multi_processor_count} SMs, cc {p.major}.{p.minor}")
EOF
}
run_step 00_env 60 env_info

# ---------------------------------------------------------------------------------------------- step 1
install_offline() {
  set -e
  if ! "$PY" -c "import hydra, omegaconf" 2>/dev/null; then
    local w=""
    for d in "${WHEELS_DIR:-}" "$ROOT/.whl" "$ROOT/../shared/device/wheels" "$ROOT/shared/device/wheels"; do
      [[ -n "$d" ]] && compgen -G "$d/hydra_core-*.whl" >/dev/null && { w=$d; break; }
    done
    [[ -n "$w" ]] || { echo "hydra-core/omegaconf missing and no wheels found (.whl/, ../shared/device/wheels, \$WHEELS_DIR)"; return 1; }
    echo "installing from $w into $OUT/site (no index, no deps):"; ls "$w"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$OUT/site" "$w"/*.whl
  else
    echo "hydra-core and omegaconf already importable"
  fi
  echo "project on PYTHONPATH: $ROOT (no build, no dependency resolution)"
  "$PY" - <<'EOF'
import importlib, torch
mods = ["torchsnn", "torchsnn.kernels.triton_cuda", "torchsnn.config", "torchsnn.simulation", "torchsnn.network",
        "torchsnn.delivery", "torchsnn.monitors", "torchsnn.memory", "torchsnn.checkpoint", "benchmarks.run",
        "benchmarks.profile_step", "benchmarks.scenarios.brunel_a", "benchmarks.scenarios.brunel_a_batch",
        "benchmarks.scenarios.scale"]
for m in mods:
    importlib.import_module(m)
from torchsnn.kernels import NUMBA_AVAILABLE, TRITON_AVAILABLE
print("imports ok:", len(mods), "modules; TRITON_AVAILABLE", TRITON_AVAILABLE, "; numba (CPU kernels)", NUMBA_AVAILABLE)
for opt in ("torchsnn.pipeline", "torchsnn.run"):  # full pipeline needs matplotlib; not used by this script
    try:
        importlib.import_module(opt); print(opt, "importable")
    except Exception as e:
        print(opt, "NOT importable here:", type(e).__name__, e)
assert TRITON_AVAILABLE, "triton is not importable: auto would select the slow torch_cuda reference backend"
EOF
}
run_step 01_install 120 install_offline

# ---------------------------------------------------------------------------------------------- step 2
# the tests marked cuda (skipped on a CPU-only machine); on a dry run they are collected and skip
mapfile -t CUDA_TEST_FILES < <(grep -rl --include='test_*.py' 'mark.cuda' tests | sort)
echo "files with cuda-marked tests: ${CUDA_TEST_FILES[*]}"
run_step 02_cuda_tests 300 "$PY" -m pytest -m cuda -p no:cacheprovider -rs -q -o addopts="" \
  --continue-on-collection-errors --durations=5 --junitxml="$OUT/02_cuda_tests.xml" "${CUDA_TEST_FILES[@]}"

# ---------------------------------------------------------------------------------------------- step 3
DRYFLAG=(--device "$DEV"); [[ "$DRY" == 1 ]] && DRYFLAG+=(--dry)
run_step 03_probes 150 env "${KERNEL_ENV[@]}" "$PY" "$OUT/py/gpu_check_probes.py" "${DRYFLAG[@]}" \
  --out "$OUT/03_probes.json"
# the LIF probe again with FP fusion (FMA contraction) off: mismatches that vanish here come from FMA
run_step 03_probes_nofusion 90 env "${KERNEL_ENV[@]}" TRITON_DEFAULT_FP_FUSION=0 "$PY" "$OUT/py/gpu_check_probes.py" \
  "${DRYFLAG[@]}" --only lif --out "$OUT/03_probes_nofusion.json"

# ---------------------------------------------------------------------------------------------- step 4
# durations that are whole min-delay blocks (1.5 ms) so that every timed block has the same Triton specialisation
# as the warm-up (first_slot is specialised on ==1 / %16: a misaligned segment compiles a new variant while timed)
if [[ "$DRY" == 1 ]]; then
  B_ARGS=(--duration-ms 30 --warmup-ms 15 --repeats 1 --no-reference)
  BATCH_ARGS=(--batch-sizes 1,4 --duration-ms 15 --warmup-ms 15 --repeats 1)
  PROF_ARGS=(--duration-ms 30 --warmup-ms 15 --no-reference)
  SCALE_SIZES=${SCALE_SIZES:-"5000 10000"}; SCALE_ARGS=(--scale-on-cpu --duration-ms 15 --warmup-ms 15 --repeats 1)
else
  B_ARGS=(--duration-ms 999 --warmup-ms 99 --repeats 3)
  BATCH_ARGS=(--batch-sizes 1,4,16,64 --duration-ms 300 --warmup-ms 99 --repeats 3)
  PROF_ARGS=(--duration-ms 300 --warmup-ms 99)
  SCALE_SIZES=${SCALE_SIZES:-"50000 100000 250000 500000 1000000"}; SCALE_ARGS=(--duration-ms 150 --warmup-ms 30 --repeats 1)
fi
BENCH=("$PY" "$OUT/py/gpu_check_bench.py")
run_step 04_brunel_a 180 "${BENCH[@]}" benchmarks.run --device "$DEV" --scenarios brunel_a --peers none \
  "${B_ARGS[@]}" --out "$OUT/04_brunel_a.json"
run_step 04_profile 90 "${BENCH[@]}" benchmarks.profile_step --experiment brunel_ai --device "$DEV" \
  "${PROF_ARGS[@]}" --out "$OUT/04_profile.json"

# ---------------------------------------------------------------------------------------------- step 5
run_step 05_batch 210 "${BENCH[@]}" benchmarks.run --device "$DEV" --scenarios brunel_a_batch --peers none \
  "${BATCH_ARGS[@]}" --out "$OUT/05_batch.json"

# ---------------------------------------------------------------------------------------------- step 6
if [[ "$DRY" == 1 ]]; then
  run_step 06_cpu_vs_gpu 300 env "${KERNEL_ENV[@]}" "$PY" "$OUT/py/gpu_check_compare.py" --gpu-device cpu --dry \
    --cpu-threads 1 --out "$OUT/06_cpu_vs_gpu.json"
else
  run_step 06_cpu_vs_gpu 150 "$PY" "$OUT/py/gpu_check_compare.py" --gpu-device "$DEV" \
    --cpu-threads "${CPU_THREADS:-8}" --out "$OUT/06_cpu_vs_gpu.json"
fi

# ---------------------------------------------------------------------------------------------- step 7
SCALE_POINT_LIMIT=${SCALE_POINT_LIMIT:-30}; export SCALE_POINT_LIMIT
printf 'N\trc\tseconds\n' > "$OUT/07_scale_points.tsv"
prev=0; prevN=0
for N in $SCALE_SIZES; do
  rem=$(left)
  # build (on the host CPU) and run grow ~linearly with N; ~8 s of process start-up (imports, config) do not
  if (( prev > 0 )); then
    est=$(( 8 + (prev - 8) * N / prevN ))
    if (( 10 * est > 13 * SCALE_POINT_LIMIT )); then
      echo "scale: stopping before N=$N (previous point took ${prev}s; this one would take ~${est}s > ${SCALE_POINT_LIMIT}s)"
      break
    fi
  fi
  (( rem < 40 )) && { echo "scale: stopping before N=$N (global budget)"; break; }
  t0=$SECONDS
  run_step "07_scale_$N" $(( SCALE_POINT_LIMIT * 3 )) "${BENCH[@]}" benchmarks.run --device "$DEV" --scenarios scale \
    --scale-sizes "$N" --peers none "${SCALE_ARGS[@]}" --out "$OUT/07_scale_$N.json"
  prev=$(( SECONDS - t0 )); prevN=$N
  st=$(tail -n1 "$STATUS" | cut -f2)
  rc=0; [[ "$st" == OK ]] || rc=1
  [[ -f "$OUT/07_scale_$N.json" ]] && grep -q '"skipped"' "$OUT/07_scale_$N.json" && rc=1
  printf '%s\t%s\t%s\n' "$N" "$rc" "$prev" >> "$OUT/07_scale_points.tsv"
  (( rc != 0 )) && break
done

# ---------------------------------------------------------------------------------------------- step 8
echo
echo "[$(elapsed)s] summary"
"$PY" "$OUT/py/gpu_check_summary.py" "$OUT" "$ROOT" "$DRY" 2>&1 | tee "$OUT/08_summary.log"
echo "total $(elapsed) s; everything is in $OUT"
