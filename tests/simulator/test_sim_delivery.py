"""Event-driven delivery (torchsnn.delivery, Projection.deliver) and the min-delay block schedule of
Network.run_block against dense references: ``input = spikes @ W`` placed at step t + D, and a step-by-step dense
re-implementation of the whole network (sim_helpers.reference_simulation).

Weights are exact binary fractions, so synaptic sums are exact in any order and the comparisons are bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sim_helpers import (
    ProjSpec,
    ReplayDrive,
    dense_weights,
    hand_network,
    random_block,
    reference_simulation,
    run_network,
)

from torchsnn.delivery import deliver_block, gather_spiking_edges
from torchsnn.populations import GaussianDrive, NoDrive
from torchsnn.projection import Projection
from torchsnn.scaffold import ScaffoldBlock

WEIGHT_KINDS = ["scalar", "per_edge", "per_replica"]


def _weights(kind: str, n_edges: int, batch: int, rng: np.random.Generator, sign: float = 1.0) -> torch.Tensor:
    """Signed weights that are multiples of 1/8 in [1/8, 2] (exact in float32, sums exact in any order)."""
    if kind == "scalar":
        return torch.tensor(sign * 0.625)
    shape = (n_edges,) if kind == "per_edge" else (batch, n_edges)
    return torch.from_numpy(sign * rng.integers(1, 17, size=shape) / 8.0).to(torch.float32)


def _dense_reference(spikes, block, weight, ring, first_slot):
    """ring[(first_slot + s) mod R, b] += spikes[s, b] @ W_b (W_b dense (N_pre, N_post))."""
    expected = ring.clone()
    m, batch, _ = spikes.shape
    w = dense_weights(block, weight, batch)
    for s in range(m):
        expected[(first_slot + s) % ring.shape[0]] += torch.bmm(spikes[s].float().unsqueeze(1), w).squeeze(1)
    return expected


@pytest.mark.parametrize("kind", WEIGHT_KINDS)
@pytest.mark.parametrize("first_slot", [0, 9, 20])
def test_deliver_block_equals_dense_matmul(kind, first_slot):
    """Random block 30 -> 25 (p = 0.2), 7 steps x 3 replicas of random spikes, ring of 12 slots already holding
    input (delivery adds), slots wrapping around the ring."""
    rng = np.random.default_rng(1)
    block = random_block(rng, "P", "E", 25, 30, 0.2)
    batch, m = 3, 7
    spikes = torch.from_numpy(rng.random((m, batch, 30)) < 0.2)
    weight = _weights(kind, block.n_edges, batch, rng, sign=-1.0)
    ring = torch.from_numpy(rng.integers(-8, 8, size=(12, batch, 25)) / 4.0).to(torch.float32)
    expected = _dense_reference(spikes, block, weight, ring, first_slot)
    deliver_block(spikes, block.row_ptr, block.post_index.to(torch.int32), weight, ring, first_slot)
    assert torch.equal(ring, expected)
    assert spikes.sum() > 20 and block.n_edges > 100  # the case is not trivial


def test_gather_spiking_edges_lists_every_event_once():
    rng = np.random.default_rng(2)
    block = random_block(rng, "P", "E", 10, 12, 0.3)
    spikes = torch.from_numpy(rng.random((4, 2, 12)) < 0.3)
    step, replica, neuron, edge = gather_spiking_edges(spikes, block.row_ptr)
    row_ptr = block.row_ptr.numpy()
    expected = sorted(
        (s, b, i, e)
        for s, b, i in zip(*np.nonzero(spikes.numpy()), strict=True)
        for e in range(row_ptr[i], row_ptr[i + 1])
    )
    got = zip(step.tolist(), replica.tolist(), neuron.tolist(), edge.tolist(), strict=True)
    assert sorted(got) == expected


def test_deliver_block_without_spikes_or_edges_is_a_no_op():
    block = ScaffoldBlock.from_edges("P", "E", 5, 4, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    ring = torch.ones(3, 2, 5)
    deliver_block(torch.ones(2, 2, 4, dtype=torch.bool), block.row_ptr, block.post_index, torch.tensor(1.0), ring, 1)
    deliver_block(torch.zeros(2, 2, 4, dtype=torch.bool), block.row_ptr, block.post_index, torch.tensor(1.0), ring, 1)
    assert torch.equal(ring, torch.ones(3, 2, 5))


@pytest.mark.parametrize("kind", WEIGHT_KINDS)
def test_projection_deliver_places_input_at_t_plus_delay(kind):
    """Projection.deliver: a spike of block step s (block starting at t0) lands in slot (t0 + s + D) mod R with
    D = round(delay / dt) = 15 steps, signed by Dale's law."""
    rng = np.random.default_rng(3)
    block = random_block(rng, "P", "I", 20, 16, 0.25)
    batch, m, t0 = 2, 15, 45
    proj = Projection("PI", block, 0.625, -1.0, 1.5, 0.1)
    assert proj.delay_steps == 15 and proj.weight_mv.item() == -0.625
    weight = _weights(kind, block.n_edges, batch, rng, sign=-1.0)
    if kind != "scalar":
        proj.weight_mv = weight
    spikes = torch.from_numpy(rng.random((m, batch, 16)) < 0.15)
    ring = torch.zeros(15 + m, batch, 20)
    expected = _dense_reference(spikes, block, weight, ring, t0 + 15)
    proj.deliver(spikes, ring, t0)
    assert torch.equal(ring, expected)
    assert (expected < 0).any()


@pytest.mark.parametrize(
    ("delay_ms", "spike_step", "neuron"),
    [(1.5, 0, 0), (1.5, 14, 3), (1.5, 15, 5), (1.5, 23, 2), (0.1, 7, 1), (0.7, 30, 4)],
)
def test_single_spike_reaches_exactly_its_targets_at_t_plus_delay(delay_ms, spike_step, neuron):
    """One spike of pre neuron i at step t changes the voltage of its targets, and of no other neuron, first at step
    t + D, by w, then decays as w e^{-(n - t - D) dt / tau_m}. Post neurons start at 0 mV without drive; the run uses
    the network's own block schedule (blocks of D steps)."""
    dt, w, n_steps = 0.1, 1.5, 80
    d_steps = round(delay_ms / dt)
    rng = np.random.default_rng(4)
    block = random_block(rng, "P", "E", 9, 6, 0.4)
    targets = block.post_index[block.row_ptr[neuron] : block.row_ptr[neuron + 1]].long()
    assert 0 < targets.numel() < 9
    kick = torch.zeros(n_steps, 1, 6)
    kick[spike_step, 0, neuron] = 1e4
    net = hand_network(
        {"E": 6, "P": 9},
        [ProjSpec("PE", block, w, delay_ms)],
        {"E": ReplayDrive(kick), "P": NoDrive()},
        dt,
        1,
        {"E": torch.zeros(6), "P": torch.zeros(9)},
        neuron={"theta_mv": 500.0},
    )
    assert net.block_steps == d_steps
    volts, pre_spikes = [], []
    while net.step_count < n_steps:
        out = net.run_block(None, n_steps - net.step_count, voltage_every_steps=1)
        volts += [v[0] for v in out.voltage_samples["P"]]
        pre_spikes.append(out.spikes["E"][:, 0])
    v = torch.stack(volts).double()
    assert torch.nonzero(torch.cat(pre_spikes)).tolist() == [[spike_step, neuron]]
    arrival = spike_step + d_steps
    expected = torch.zeros(n_steps, 9, dtype=torch.float64)
    k = torch.arange(n_steps - arrival, dtype=torch.float64)
    expected[arrival:, targets] = (w * torch.exp(-k * dt / 20.0)).unsqueeze(1)
    torch.testing.assert_close(v, expected, rtol=1e-5, atol=0)


def _random_ei_network(rng, delays, kind, batch):
    """E (40) and I (10), all four blocks random (p = 0.25), exact binary-fraction weights."""
    sizes = {"E": 40, "I": 10}
    specs = []
    for (post, pre), delay in zip([("E", "E"), ("E", "I"), ("I", "E"), ("I", "I")], delays, strict=True):
        block = random_block(rng, post, pre, sizes[post], sizes[pre], 0.25, square=post == pre)
        sign = 1.0 if pre == "E" else -1.0
        weight = _weights(kind, block.n_edges, batch, rng, sign=sign)
        if kind == "scalar":
            weight = torch.tensor(sign * (0.5 if pre == "E" else 1.75))
        specs.append(ProjSpec(post + pre, block, weight if kind != "scalar" else float(weight), delay))
    return sizes, specs


def _external(sizes, batch, n_steps, seed):
    """Gaussian input per step (GaussianDrive's own sampler, mu = 19, sigma = 4 mV): irregular spiking."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for name, n in sizes.items():
        drive = GaussianDrive(19.0, 4.0)
        drive.bind(20.0, 0.1)
        out[name] = drive.sample_block(n_steps, batch, n, gen)
    return out


@pytest.mark.parametrize("kind", WEIGHT_KINDS)
@pytest.mark.parametrize("delays", [(1.5, 1.5, 1.5, 1.5), (1.0, 0.7, 2.3, 0.1)])
@pytest.mark.parametrize("chunk", [None, 1, 4])
def test_network_equals_dense_step_by_step_reference(kind, delays, chunk):
    """The whole network, 2000 steps x 2 replicas: spikes identical to the dense reference, whatever the number of
    steps per run_block call (whole min-delay blocks, 1 step, 4 steps)."""
    rng = np.random.default_rng(5)
    batch, n_steps, dt = 2, 2000, 0.1
    sizes, specs = _random_ei_network(rng, delays, kind, batch)
    ext = _external(sizes, batch, n_steps, seed=6)
    v0 = {name: torch.from_numpy(rng.uniform(10.0, 20.0, size=(batch, n))).float() for name, n in sizes.items()}
    ref = reference_simulation(sizes, specs, ext, dt, batch, v0, n_steps)
    net = hand_network(sizes, specs, {k: ReplayDrive(x) for k, x in ext.items()}, dt, batch, v0)
    assert net.block_steps == min(round(x / dt) for x in delays)
    got = run_network(net, n_steps, chunk)
    for name in sizes:
        rate = ref[name].float().mean() / (dt * 1e-3)
        assert 5.0 < rate < 200.0  # irregular activity, recurrent input matters
        mismatch = torch.nonzero(got[name] != ref[name])
        assert mismatch.numel() == 0, f"{name}: first mismatch (step, replica, neuron) {mismatch[:3].tolist()}"


def test_recurrent_input_changes_the_spikes():
    """Guard for the comparison above: without the synapses the spikes differ (so the test sees delivery)."""
    rng = np.random.default_rng(5)
    sizes, specs = _random_ei_network(rng, (1.5, 1.5, 1.5, 1.5), "scalar", 2)
    ext = _external(sizes, 2, 500, seed=6)
    v0 = {name: torch.full((2, n), 15.0) for name, n in sizes.items()}
    with_syn = reference_simulation(sizes, specs, ext, 0.1, 2, v0, 500)
    without = reference_simulation(sizes, [], ext, 0.1, 2, v0, 500)
    assert not torch.equal(with_syn["E"], without["E"])


def test_block_length_does_not_change_the_spikes():
    """The same network advanced in min-delay blocks of 15 steps and (i) one step per call, (ii) as a network whose
    min delay is one step because of an extra empty projection of delay dt: identical spikes. The real GaussianDrive
    with sigma = 0 (a deterministic input, so the RNG stream cannot differ) and heterogeneous initial voltages."""
    rng = np.random.default_rng(7)
    batch, n_steps, dt = 2, 3000, 0.1
    sizes, specs = _random_ei_network(rng, (1.5, 1.5, 1.5, 1.5), "scalar", batch)
    v0 = {name: torch.from_numpy(rng.uniform(0.0, 20.0, size=(batch, n))).float() for name, n in sizes.items()}

    def drives():
        return {"E": GaussianDrive(23.0, 0.0), "I": GaussianDrive(22.0, 0.0)}

    blocks = run_network(hand_network(sizes, specs, drives(), dt, batch, v0), n_steps)
    single = run_network(hand_network(sizes, specs, drives(), dt, batch, v0), n_steps, chunk=1)
    # an extra projection I <- E without edges and with delay dt: nothing changes but the block length (1 step)
    empty = ScaffoldBlock.from_edges("I", "E", 10, 40, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    fast = hand_network(sizes, [*specs, ProjSpec("IEx", empty, 0.5, dt)], drives(), dt, batch, v0)
    assert fast.block_steps == 1
    stepped = run_network(fast, n_steps)
    for name in sizes:
        assert blocks[name].sum() > 100
        assert torch.equal(blocks[name], single[name])
        assert torch.equal(blocks[name], stepped[name])
