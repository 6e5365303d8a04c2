"""CPU vs CUDA: Triton delivery on the int64 ring bit for bit against the CPU reference, graph replay equal to eager
runs, the same network spikes for the same external input, and statistically identical rates when each device
draws its own noise (the Triton backend's in-kernel drive on CUDA). Skipped without CUDA."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sim_helpers import (
    LIF,
    TINY_OVERRIDES,
    ProjSpec,
    ReplayDrive,
    compose_config,
    discrete_threshold_shift_mv,
    hand_network,
    random_block,
    reference_simulation,
    run_network,
    siegert_hz,
)

from torchsnn.config import build_network
from torchsnn.delivery import deliver_block
from torchsnn.network import Network
from torchsnn.populations import GaussianDrive, LIFPopulation
from torchsnn.simulation import simulate

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.mark.parametrize("kind", ["scalar", "per_edge", "per_replica", "per_row"])
def test_triton_delivery_on_the_int64_ring_equals_the_cpu_reference(kind):
    """The Triton event-list delivery on the GPU's int64 fixed-point ring against the torch reference on the CPU
    (same ring): bit for bit, ring wrap included, and the same twice (integer atomics)."""
    from torchsnn.kernels import triton_cuda

    rng = np.random.default_rng(1)
    block = random_block(rng, "P", "E", 300, 400, 0.05)
    batch, m = 4, 15
    spikes = torch.from_numpy(rng.random((m, batch, 400)) < 0.05)
    shape = {"scalar": (), "per_edge": (block.n_edges,), "per_replica": (batch, block.n_edges), "per_row": (batch, 400)}
    weight = torch.from_numpy(rng.normal(0.0, 1.0, size=shape[kind]).astype(np.float32))
    per_row = kind == "per_row"
    ref = torch.zeros(30, batch, 300, dtype=torch.int64)
    deliver_block(spikes, block.row_ptr, block.post_index, weight, ref, 22, per_row=per_row)
    rings = []
    for _ in range(2):
        ring = torch.zeros(30, batch, 300, dtype=torch.int64, device="cuda")
        args = (spikes.cuda(), block.row_ptr.cuda(), block.post_index.cuda(), weight.cuda(), ring, 22)
        triton_cuda.deliver(*args, per_row=per_row)
        rings.append(ring.cpu())
    assert torch.equal(rings[0], ref) and torch.equal(rings[1], ref)
    assert ref.abs().sum() > 0


def test_graph_replay_equals_eager():
    """The same network and seed with CUDA-graph replay and eagerly: identical spikes, statistics and state."""
    from torchsnn.kernels.triton_backend import TritonBackend

    runs = []
    for graphs in (True, False):
        cfg = compose_config([*TINY_OVERRIDES, "simulation.device=cuda", "simulation.replicas=2"])
        built = build_network(cfg)
        built.network.set_backend(TritonBackend("cuda", graphs=graphs))
        gen = torch.Generator(device="cuda").manual_seed(3)
        built.network.reset(2, gen)
        res = simulate(built.network, duration_ms=300.0, transient_ms=50.0, generator=gen, progress=False)
        runs.append((built.network, res))
    (ng, rg), (ne, re_) = runs
    assert rg.backend["graph_replay"].startswith("replay"), rg.backend
    assert re_.backend["graph_replay"].startswith("eager") or re_.backend["graph_replay"] == "not yet"
    for name in ("E", "I"):
        assert torch.equal(rg.spike_stats[name]["counts"], re_.spike_stats[name]["counts"])
        assert torch.equal(rg.population_rate.counts[name], re_.population_rate.counts[name])
        assert torch.equal(ng.populations[name].v_mv, ne.populations[name].v_mv)
        assert torch.equal(ng.ring(name), ne.ring(name))
    assert rg.summary()["E"]["rate_mean_hz"] > 1.0


def test_cuda_runs_are_reproducible_and_report_triton():
    counts = []
    for _ in range(2):
        built = build_network(compose_config([*TINY_OVERRIDES, "simulation.device=cuda"]))
        res = simulate(built.network, duration_ms=200.0, transient_ms=50.0, generator=built.generator, progress=False)
        counts.append(res.spike_stats["E"]["counts"])
        assert res.backend["name"] == "triton_cuda" and res.backend["ring"] == "int64"
    assert torch.equal(counts[0], counts[1])


def test_network_on_cuda_equals_the_dense_reference():
    """Same external input (replayed), exact weights: the CUDA network's spikes equal the CPU reference's."""
    rng = np.random.default_rng(5)
    sizes = {"E": 80, "I": 20}
    specs = []
    for (post, pre), delay in zip([("E", "E"), ("E", "I"), ("I", "E"), ("I", "I")], (1.5, 1.0, 0.7, 2.0), strict=True):
        block = random_block(rng, post, pre, sizes[post], sizes[pre], 0.2, square=post == pre)
        specs.append(ProjSpec(post + pre, block, 0.5 if pre == "E" else -1.75, delay))
    gen = torch.Generator().manual_seed(6)
    ext = {}
    for name, n in sizes.items():
        drive = GaussianDrive(19.0, 4.0)
        drive.bind(20.0, 0.1)
        ext[name] = drive.sample_block(2000, 2, n, gen)
    v0 = {name: torch.from_numpy(rng.uniform(10.0, 20.0, size=(2, n))).float() for name, n in sizes.items()}
    ref = reference_simulation(sizes, specs, ext, 0.1, 2, v0, 2000)
    net = hand_network(sizes, specs, {k: ReplayDrive(x) for k, x in ext.items()}, 0.1, 2, v0, device="cuda")
    got = run_network(net, 2000)
    for name in sizes:
        assert ref[name].sum() > 100
        assert torch.equal(got[name], ref[name])


def _isolated_rates(device: str, mu: float, sigma: float, n: int, seed: int) -> np.ndarray:
    dt = 0.1
    pop = LIFPopulation("P", n, dt, **LIF)
    net = Network({"P": pop}, {"P": GaussianDrive(mu, sigma)}, {}, dt).to(device)
    gen = torch.Generator(device=device).manual_seed(seed)
    net.reset(1, gen)
    res = simulate(net, duration_ms=1200.0, transient_ms=200.0, generator=gen, progress=False, voltage_every_ms=0)
    return res.rates_hz("P")[0].numpy()


@pytest.mark.parametrize(("mu", "sigma"), [(15.0, 5.0), (21.0, 7.4)])
def test_isolated_rates_cpu_and_cuda_agree(mu, sigma):
    """Each device draws its own noise: mean rates agree within 4 SE of their difference (SE = per-neuron std /
    sqrt(N)), and both agree with the corrected Siegert rate (see test_sim_noise)."""
    n = 8000
    cpu, gpu = _isolated_rates("cpu", mu, sigma, n, 0), _isolated_rates("cuda", mu, sigma, n, 0)
    se = math.hypot(cpu.std(ddof=1), gpu.std(ddof=1)) / math.sqrt(n)
    assert abs(cpu.mean() - gpu.mean()) < 4 * se
    corrected = siegert_hz(mu, sigma, theta_mv=LIF["theta_mv"] + discrete_threshold_shift_mv(sigma, 0.1))
    assert abs(gpu.mean() - corrected) < 4 * gpu.std(ddof=1) / math.sqrt(n) + corrected**2 * 1e-4


def test_tiny_network_rates_cpu_and_cuda_agree():
    """8 replicas per device, 1 s: replica mean E rates have the same mean (4 SE of the difference, SE from the
    spread over replicas) and the pooled per-neuron rate distributions the same std (within 15 %)."""
    means, stds = {}, {}
    for device in ("cpu", "cuda"):
        built = build_network(compose_config([*TINY_OVERRIDES, f"simulation.device={device}", "simulation.replicas=8"]))
        res = simulate(built.network, duration_ms=1100.0, transient_ms=100.0, generator=built.generator, progress=False)
        rates = res.rates_hz("E").numpy()
        means[device] = rates.mean(1)
        stds[device] = rates.std()
    se = math.hypot(means["cpu"].std(ddof=1), means["cuda"].std(ddof=1)) / math.sqrt(8)
    assert abs(means["cpu"].mean() - means["cuda"].mean()) < 4 * se + 1e-9
    assert stds["cuda"] == pytest.approx(stds["cpu"], rel=0.15)
