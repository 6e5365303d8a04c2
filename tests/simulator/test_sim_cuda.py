"""CPU vs CUDA: the same delivery bit for bit (exact binary-fraction weights), the same network spikes for the same
external input, and statistically identical rates when each device draws its own noise. Skipped without CUDA."""

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


@pytest.mark.parametrize("kind", ["scalar", "per_edge", "per_replica"])
def test_delivery_on_cuda_equals_cpu(kind):
    rng = np.random.default_rng(1)
    block = random_block(rng, "P", "E", 300, 400, 0.05)
    batch, m = 4, 15
    spikes = torch.from_numpy(rng.random((m, batch, 400)) < 0.05)
    if kind == "scalar":
        weight = torch.tensor(0.375)
    else:
        shape = (block.n_edges,) if kind == "per_edge" else (batch, block.n_edges)
        weight = torch.from_numpy(rng.integers(-16, 17, size=shape) / 8.0).float()
    rings = []
    for device in ("cpu", "cuda"):
        ring = torch.zeros(30, batch, 300, device=device)
        deliver_block(
            spikes.to(device), block.row_ptr.to(device), block.post_index.to(device), weight.to(device), ring, 22
        )
        rings.append(ring.cpu())
    assert torch.equal(rings[0], rings[1])
    assert rings[0].abs().sum() > 0


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
