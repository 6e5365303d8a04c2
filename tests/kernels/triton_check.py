"""Run under TRITON_INTERPRET=1 (see test_kernel_triton.py): the Triton backend's kernels, executed by Triton's
interpreter on the CPU, against the torch reference. Prints one line per check; exits 1 on a mismatch.

Bit for bit: delivery (4 weight layouts, 2 replicas, ring wrap, several chunks per row, duplicate targets, through
the Projection API too), event lists (the set of spikes; overflow counted), LIF blocks (drive or none, record
steps, refractory neurons, ring wrap), the fused neuron kernel with statistics and population counts, drive
sampled in the kernel (the reference LIF fed the kernel's own drive values), and a whole network through
``simulate`` (mixed delays, replayed input) against the torch backend on the same int64 fixed-point ring.
Statistical: the in-kernel Poisson and Gaussian drives have the law's moments (the network-level rate comparison
with the drive drawn in the kernel is CUDA-marked: tests/simulator/test_sim_cuda.py; under the interpreter it
would take minutes)."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [
    str(ROOT),
    str(ROOT / "tests"),
    str(ROOT / "tests" / "simulator"),
    str(ROOT / "tests" / "kernels"),
]  # this checkout's torchsnn

from kernel_helpers import random_csr  # noqa: E402
from sim_helpers import ProjSpec, ReplayDrive, hand_network, random_block  # noqa: E402

from torchsnn.delivery import deliver_block  # noqa: E402
from torchsnn.kernels import Backend, select_backend  # noqa: E402
from torchsnn.kernels import triton_cuda as tk  # noqa: E402
from torchsnn.populations import GaussianDrive, LIFPopulation, PoissonDrive  # noqa: E402
from torchsnn.projection import Projection  # noqa: E402
from torchsnn.scaffold import ScaffoldBlock  # noqa: E402
from torchsnn.simulation import simulate  # noqa: E402

backend = select_backend("cpu", "triton")
assert backend.name == "triton_cpu_interpreter", backend
failures = []


_last = [time.perf_counter()]


def check(name: str, ok: bool) -> None:
    now = time.perf_counter()
    print(f"{name}: {'ok' if ok else 'MISMATCH'} ({now - _last[0]:.1f} s)")
    _last[0] = now
    if not ok:
        failures.append(name)


rng = np.random.default_rng(0)
# ------------------------------------------------------------------------------------------------ delivery
n_pre, n_post, batch, steps, slots = 23, 17, 2, 4, 7
pre, post = rng.integers(0, n_pre, 150), rng.integers(0, n_post, 150)
keys = np.unique(pre * n_post + post)
block = ScaffoldBlock.from_edges("B", "A", n_post, n_pre, keys // n_post, keys % n_post)
# unsorted rows with repeated targets and empty rows (stresses several events on one ring cell)
row_ptr, post_index = random_csr(rng, n_pre, n_post, 7.0, duplicates=True)
spikes = torch.from_numpy(rng.random((steps, batch, n_pre)) < 0.3)
e = post_index.numel()
weights = {
    "homogeneous": (torch.tensor(0.37), False),
    "per_edge_shared": (torch.from_numpy(rng.normal(0, 1, e).astype(np.float32)), False),
    "per_edge_replica": (torch.from_numpy(rng.normal(0, 1, (batch, e)).astype(np.float32)), False),
    "per_row": (torch.from_numpy(rng.normal(0, 1, (batch, n_pre)).astype(np.float32)), True),
}
for name, (w, per_row) in weights.items():
    ring_ref = torch.zeros(slots, batch, n_post, dtype=torch.int64)
    ring_tri = torch.zeros_like(ring_ref)
    deliver_block(spikes, row_ptr, post_index, w, ring_ref, 5, per_row=per_row)  # slots 5, 6, 0, 1 (wrap)
    tk.deliver(spikes, row_ptr, post_index, w, ring_tri, 5, per_row=per_row, block_e=4)
    check(f"delivery {name}", torch.equal(ring_ref, ring_tri) and int(ring_ref.abs().sum()) > 0)

# plastic layouts through the Projection API on the backend (weights (B, E) and (B, N_pre))
from torchsnn.plasticity.rules import SaturatingPreRule  # noqa: E402

ok = True
for layout_w in (rng.uniform(0.1, 1, (batch, block.n_edges)), rng.uniform(0.1, 1, (batch, n_pre))):
    proj = Projection("P", block, 0.5, -1.0, 0.3, 0.1, SaturatingPreRule(2.0, 5.0, tau_w_ms=100.0))
    proj.reset_weights(batch, torch.from_numpy(layout_w.astype(np.float32)))
    assert proj.layout == ("per_edge" if layout_w.shape[1] == block.n_edges else "per_row"), proj.layout
    rings = [torch.zeros(slots, batch, n_post, dtype=torch.int64) for _ in range(2)]
    proj.deliver(spikes, rings[0], 11, Backend("cpu", fixed_point=True))
    proj.deliver(spikes, rings[1], 11, backend)
    ok &= torch.equal(rings[0], rings[1]) and bool(rings[0].any())
check("delivery of plastic projections (per_edge, per_row) via Projection.deliver", ok)

# event lists: the set of spikes, and an overflowing buffer counts what it lost
flat = spikes.reshape(-1).nonzero().flatten()
events = torch.full((flat.numel() + 5,), -1, dtype=torch.int64)
cursor = torch.zeros(2, dtype=torch.int64)
tk._compact_kernel[(1, batch, steps)](spikes.view(torch.int8), events, cursor, cursor[1:], events.numel(), batch,
                                      n_pre, BLOCK=32)  # fmt: skip
got = torch.sort(events[: int(cursor[0])]).values
check("event list = the spikes", int(cursor[0]) == flat.numel() and torch.equal(got, flat) and int(cursor[1]) == 0)
small = torch.zeros(7, dtype=torch.int64)
cursor.zero_()
tk._compact_kernel[(1, batch, steps)](spikes.view(torch.int8), small, cursor, cursor[1:], 7, batch, n_pre, BLOCK=32)
check("event overflow counted", int(cursor[0]) == flat.numel() and int(cursor[1]) == flat.numel() - 7)

# ------------------------------------------------------------------------------------------------ LIF blocks
for with_drive in (False, True):
    pops = [LIFPopulation("E", 37, 0.1) for _ in range(2)]
    v0 = torch.from_numpy(rng.uniform(5, 25, (batch, 37)).astype(np.float32))
    ring0 = torch.from_numpy(rng.integers(-(2**33), 2**33, (slots, batch, 37)))
    drive = torch.from_numpy(rng.normal(1, 1, (6, batch, 37)).astype(np.float32)) if with_drive else None
    outs = []
    for k, pop in enumerate(pops):
        pop.reset_state(batch, v_init_mv=v0)
        pop.refractory_left[0, :5] = 3
        ring = ring0.clone()
        out = pop.reference_block(ring, 3, drive, 6, [1, 4]) if k == 0 else pop.run_block(ring, 3, drive, 6, [1, 4],
                                                                                           backend)  # fmt: skip
        outs.append((out, pop.v_mv.clone(), pop.refractory_left.clone(), ring))
    (s0, r0), v0_, f0, g0 = outs[0]
    (s1, r1), v1_, f1, g1 = outs[1]
    same = torch.equal(s0, s1) and torch.equal(v0_, v1_) and torch.equal(f0, f1) and torch.equal(g0, g1)
    same &= len(r0) == len(r1) == 2 and all(torch.equal(a, b) for a, b in zip(r0, r1, strict=True))
    check(f"lif block drive={with_drive}", same and bool(s0.any()))


# ------------------------------------------------------------------------------------------------ fused neuron kernel
def fused(pop, ring, t0, m, drive, stats=None, rate=None, record=(), probe=False):
    """One fused launch; ``probe``: decay 0, threshold out of reach, every step recorded -> v_record = drive."""
    spk = torch.zeros(m, batch, pop.size, dtype=torch.int8)
    v_rec = torch.zeros(m, batch, pop.size)
    ev = (torch.empty(m * batch * pop.size, dtype=torch.int64), torch.zeros(1, dtype=torch.int64),
          torch.zeros(1, dtype=torch.int64))  # fmt: skip
    lif = (0.0, 1e30, 0.0, 0) if probe else pop.lif_parameters()
    step = torch.tensor([t0])
    plan = tk.record_plan(list(range(m)) if probe else list(record), m, t0)
    tk.neuron_block(pop.v_mv, pop.refractory_left, ring, step, spk, v_rec, plan, m, lif, drive=drive,
                    events=ev, stats=stats, rate=rate, block=64)  # fmt: skip
    return spk.view(torch.bool), v_rec, ev


size, m, t0 = 90, 15, 37
seed = torch.tensor([12345], dtype=torch.int64)
for kind in ("poisson", "gaussian"):
    if kind == "poisson":
        d = PoissonDrive(800, 20.0, 0.15, 200, 10.0, 0.3)
        d.bind(20.0, 0.1)
        arg = (tk.DRIVE_POISSON, (d.jump_cdf, d.jump_values_mv, seed))
    else:
        d = GaussianDrive(18.0, 6.0)
        d.bind(20.0, 0.1)
        arg = (tk.DRIVE_GAUSSIAN, (*d.noise_scale_offset_mv(), seed))
    probe_pop = LIFPopulation("E", size, 0.1)
    probe_pop.reset_state(batch, v_init_mv=torch.zeros(batch, size))
    _, x, _ = fused(probe_pop, torch.zeros(slots, batch, size, dtype=torch.int64), t0, m, arg, probe=True)
    a, b = LIFPopulation("E", size, 0.1), LIFPopulation("E", size, 0.1)
    v0 = torch.from_numpy(rng.uniform(10, 20, (batch, size)).astype(np.float32))
    ring0 = torch.from_numpy(rng.integers(-(2**31), 2**31, (slots, batch, size)))
    for pop in (a, b):
        pop.reset_state(batch, v_init_mv=v0)
    ring_a, ring_b = ring0.clone(), ring0.clone()
    sa, ra = a.reference_block(ring_a, t0, x, m, list(range(0, m, 3)))
    sb, vb, _ = fused(b, ring_b, t0, m, arg, record=range(0, m, 3))
    ok = torch.equal(sa, sb) and torch.equal(a.v_mv, b.v_mv) and torch.equal(ring_a, ring_b) and bool(sa.any())
    ok &= all(torch.equal(ra[k], vb[k]) for k in range(len(ra)))
    check(f"fused {kind} drive: LIF on the kernel's own drive values = reference", ok)
    # the law: the draws' mean and variance against the drive's exact per-step moments (5 SE)
    if kind == "poisson":
        p = np.diff(np.concatenate([[0.0], d.jump_cdf.numpy()]))
        vals = d.jump_values_mv.double().numpy()
        mean, var = float((p * vals).sum()), float((p * vals**2).sum() - (p * vals).sum() ** 2)
        in_table = bool(torch.isin(x, d.jump_values_mv).all())
    else:
        scale, offset = d.noise_scale_offset_mv()
        mean, var, in_table = offset, scale**2, True
    xs = x.double().flatten()
    n = xs.numel()
    z_mean = abs(float(xs.mean()) - mean) / math.sqrt(var / n)
    z_var = abs(float(xs.var()) - var) / (var * math.sqrt(2.0 / n) * 1.5)
    print(f"  {kind}: {n} draws, mean z {z_mean:.2f}, variance z {z_var:.2f}")
    check(f"fused {kind} drive: moments of the law", in_table and z_mean < 5 and z_var < 5)

# statistics and population counts fused into the neuron kernel, against the torch reference monitor update
pop = LIFPopulation("E", size, 0.1)
pop.reset_state(batch, v_init_mv=torch.from_numpy(rng.uniform(10, 20, (batch, size)).astype(np.float32)))
ring = torch.zeros(slots, batch, size, dtype=torch.int64)
drive_arg = (tk.DRIVE_GAUSSIAN, (1.5, 1.2, seed))


def fresh():
    i32, f64 = torch.int32, torch.float64
    keys = {"count": (0, i32), "last": (-1, torch.int64), "isi_sum": (0, f64), "isi_sq": (0, f64), "isi_n": (0, i32)}
    return {k: torch.full((batch, size), fill, dtype=dt) for k, (fill, dt) in keys.items()}


st_k, st_r = fresh(), fresh()
counts = torch.zeros(200, batch, dtype=torch.int32)
ref = Backend("cpu")
all_ok = True
for blk in range(6):
    start = 5 + blk * 15
    sp, _, (ev, cur, ovf) = fused(pop, ring, start, 15, drive_arg, stats=(st_k, 40), rate=(counts, 5))
    ref.spike_statistics(sp, start, 40, st_r)
    all_ok &= torch.equal(counts[start - 5 : start + 10], sp.sum(-1, dtype=torch.int32))
    all_ok &= torch.equal(torch.sort(ev[: int(cur)]).values, sp.reshape(-1).nonzero().flatten()) and int(ovf) == 0
all_ok &= all(torch.equal(st_k[key], st_r[key]) for key in st_k) and int(st_k["isi_n"].sum()) > 0
check("fused statistics, population counts and event list = reference", all_ok)

# ------------------------------------------------------------------------------------------------ a whole network
sizes = {"E": 60, "I": 20}
specs = []
for (po, pr), delay in zip([("E", "E"), ("E", "I"), ("I", "E"), ("I", "I")], (1.5, 1.0, 0.7, 2.0), strict=True):
    blk = random_block(rng, po, pr, sizes[po], sizes[pr], 0.2, square=po == pr)
    specs.append(ProjSpec(po + pr, blk, 0.5 if pr == "E" else -1.75, delay))
gen = torch.Generator().manual_seed(6)
ext = {}
for name, n in sizes.items():
    g = GaussianDrive(19.0, 4.0)
    g.bind(20.0, 0.1)
    ext[name] = g.sample_block(300, 2, n, gen)
v0 = {name: torch.from_numpy(rng.uniform(10.0, 20.0, size=(2, n))).float() for name, n in sizes.items()}
results = []
for be in (Backend("cpu", fixed_point=True), backend):
    net = hand_network(sizes, specs, {k: ReplayDrive(x) for k, x in ext.items()}, 0.1, 2, v0, backend=be)
    res = simulate(net, duration_ms=30.0, transient_ms=5.0, raster_neurons=10, voltage_every_ms=0.5, progress=False)
    results.append((net, res))
(na, ra), (nb, rb) = results


def same_summary(x: dict, y: dict) -> bool:
    """Equal, NaN equal to NaN (the CV of populations with too few ISIs)."""
    return all(
        a == b or (math.isnan(a) and math.isnan(b))
        for p in x
        for a, b in zip(x[p].values(), y[p].values(), strict=True)
    )


ok = nb.backend.name == "triton_cpu_interpreter" and same_summary(ra.summary(), rb.summary())
for name in sizes:
    ok &= torch.equal(ra.spike_stats[name]["counts"], rb.spike_stats[name]["counts"])
    ok &= torch.equal(ra.spike_stats[name]["cv_isi"].nan_to_num(-1), rb.spike_stats[name]["cv_isi"].nan_to_num(-1))
    ok &= torch.equal(ra.population_rate.counts[name], rb.population_rate.counts[name])
    ok &= torch.equal(ra.raster[name]["step"], rb.raster[name]["step"])
    ok &= torch.equal(ra.synchrony[name]["chi"], rb.synchrony[name]["chi"])
    ok &= torch.equal(na.populations[name].v_mv, nb.populations[name].v_mv) and torch.equal(
        na.ring(name), nb.ring(name)
    )
print(f"  network: E rate {ra.summary()['E']['rate_mean_hz']:.1f} Hz; backend report {rb.backend}")
check(
    "network through simulate (mixed delays, replayed input) = torch backend, same ring",
    ok and ra.summary()["E"]["rate_mean_hz"] > 1,
)

sys.exit(1 if failures else 0)
