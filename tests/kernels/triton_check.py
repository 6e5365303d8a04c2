"""Run under TRITON_INTERPRET=1 TORCHSNN_TRITON_ON_CPU=1 (see test_kernel_triton.py): the GPU kernels, executed by
Triton's interpreter on the CPU, against the torch reference. Prints one line per check; exits 1 on a mismatch."""

from __future__ import annotations

import os
import sys

import numpy as np
import torch

from torchsnn.delivery import deliver_block
from torchsnn.kernels import triton_cuda
from torchsnn.populations import LIFPopulation, NeuronPopulation
from torchsnn.scaffold import ScaffoldBlock

assert triton_cuda.triton_enabled(torch.zeros(1)), "run with TRITON_INTERPRET=1 TORCHSNN_TRITON_ON_CPU=1"
failures = []


def check(name: str, ok: bool) -> None:
    print(f"{name}: {'ok' if ok else 'MISMATCH'}")
    if not ok:
        failures.append(name)


rng = np.random.default_rng(0)
n_pre, n_post, batch, steps, slots = 23, 17, 2, 4, 7
pre = rng.integers(0, n_pre, 120)
post = rng.integers(0, n_post, 120)
keys = np.unique(pre * n_post + post)
block = ScaffoldBlock.from_edges("B", "A", n_post, n_pre, keys // n_post, keys % n_post)
spikes = torch.from_numpy(rng.random((steps, batch, n_pre)) < 0.3)
e = block.n_edges
weights = {
    "homogeneous": (torch.tensor(0.37), False),
    "per_edge_shared": (torch.from_numpy(rng.normal(0, 1, e).astype(np.float32)), False),
    "per_edge_replica": (torch.from_numpy(rng.normal(0, 1, (batch, e)).astype(np.float32)), False),
    "per_row": (torch.from_numpy(rng.normal(0, 1, (batch, n_pre)).astype(np.float32)), True),
}
for name, (w, per_row) in weights.items():
    ring_ref = torch.zeros(slots, batch, n_post, dtype=torch.int64)
    ring_tri = torch.zeros_like(ring_ref)
    deliver_block(spikes, block.row_ptr, block.post_index, w, ring_ref, 5, per_row=per_row)
    triton_cuda.deliver(spikes, block.row_ptr, block.post_index, w, ring_tri, 5, per_row=per_row, block_e=4)
    check(f"delivery {name}", torch.equal(ring_ref, ring_tri) and int(ring_ref.abs().sum()) > 0)

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
        if k == 0:
            out = NeuronPopulation.run_block(pop, ring, 3, drive, 6, [1, 4])
        else:
            out = triton_cuda.lif_block(
                pop.v_mv,
                pop.refractory_left,
                ring,
                3,
                drive,
                6,
                [1, 4],
                pop.decay,
                pop.theta_mv,
                pop.v_reset_mv,
                pop.refractory_steps,
                block=16,
            )
        outs.append((out, pop.v_mv.clone(), pop.refractory_left.clone(), ring))
    (s0, r0), v0_, f0, g0 = outs[0]
    (s1, r1), v1_, f1, g1 = outs[1]
    same = (
        torch.equal(s0, s1)
        and torch.equal(v0_, v1_)
        and torch.equal(f0, f1)
        and torch.equal(g0, g1)
        and all(torch.equal(a, b) for a, b in zip(r0, r1, strict=True))
        and bool(s0.any())
    )
    check(f"lif block drive={with_drive}", same)

# a whole network through the GPU code path (fixed-point ring, Triton kernels) against the CPU path: the ring
# arithmetic differs (integers vs float32 sums), so the comparison is statistical
from hydra import compose, initialize_config_dir  # noqa: E402

from torchsnn.config import build_network  # noqa: E402
from torchsnn.simulation import simulate  # noqa: E402

overrides = [
    "+experiment=brunel_ai",
    "network.populations.E.size=80",
    "network.populations.I.size=20",
    "network.projections.EE.connectivity.indegree=20",
    "network.projections.IE.connectivity.indegree=20",
    "network.projections.EI.connectivity.indegree=5",
    "network.projections.II.connectivity.indegree=5",
    "network.projections.EE.weight_mv=0.5",
    "network.projections.IE.weight_mv=0.5",
    "network.projections.EI.weight_mv=2.5",
    "network.projections.II.weight_mv=2.5",
    "simulation.replicas=2",
]
with initialize_config_dir(
    config_dir=str(__import__("pathlib").Path(__file__).resolve().parents[2] / "conf"), version_base="1.3"
):
    cfg = compose("config", overrides=overrides)
rates = {}
for label, on in (("gpu path", "1"), ("cpu path", "0")):
    os.environ["TORCHSNN_TRITON"] = on
    built = build_network(cfg)
    assert (built.network.ring("E").dtype == torch.int64) == (on == "1")
    res = simulate(built.network, duration_ms=150, transient_ms=50, generator=built.generator, progress=False)
    rates[label] = res.rates_hz("E").flatten()
a, b = rates["gpu path"], rates["cpu path"]
se = float(torch.sqrt(a.var() / a.numel() + b.var() / b.numel()))
print(f"network mean E rate: gpu path {float(a.mean()):.2f} Hz, cpu path {float(b.mean()):.2f} Hz (se {se:.2f})")
check("network rates statistically equal", abs(float(a.mean() - b.mean())) < 4 * se)

sys.exit(1 if failures else 0)
