"""Shared helpers for the simulator tests (imported as ``sim_helpers``: a unique module name, because pytest
replaces ``sys.modules['conftest']`` whenever it loads another directory's conftest.py, so ``from conftest import``
breaks as soon as a sibling test folder has one): independent references (the ISI CV by scipy quadrature, the
Siegert rate from testkit, the discrete-time threshold correction, a dense step-by-step network simulator), tiny
hand-built networks and Hydra configs, and spike recording.

Nothing here calls torchsnn.meanfield: the references are written from the formulas of theory.md §1 and §5.1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy import integrate, special
from testkit import CONF_DIR, LIF, brunel_size_overrides, compose_config, siegert_hz  # noqa: F401 (re-exported)

from torchsnn.network import Network
from torchsnn.populations import ExternalDrive, LIFPopulation
from torchsnn.projection import Projection
from torchsnn.scaffold import ScaffoldBlock

# A small E/I network from conf/network/brunel.yaml: 200 E + 50 I neurons, in-degrees 20 / 5, Poisson drive of
# 500 sources x 10 Hz x 0.2 mV (mu_ext = 20 mV at threshold, sigma_ext = 2 mV): fluctuation-driven, about 18 Hz,
# ISI CV about 0.4, asynchronous (chi ~ 0.08). 500 ms of which 100 ms transient; about 0.6 s per replica-free run.
TINY_OVERRIDES = [
    "network=brunel",
    "drive=poisson",
    *brunel_size_overrides(200, 50, 20, 5),
    "drive.k_ext=500",
    "drive.nu_ext_hz=10.0",
    "drive.j_ext_mv=0.2",
    "simulation.duration_ms=500.0",
    "simulation.transient_ms=100.0",
    "simulation.device=cpu",
    "logging.progress=false",
]


# ----------------------------------------------------------------------------------------------- theory
def isi_cv_theory(
    mu_mv: float,
    sigma_mv: float,
    *,
    theta_mv: float = 20.0,
    v_reset_mv: float = 10.0,
    tau_m_ms: float = 20.0,
    tau_ref_ms: float = 2.0,
) -> float:
    """CV of the ISI of an LIF neuron under white noise (Brunel 2000, eq. A.13):

    CV^2 = 2 pi (nu tau_m)^2 Int_{y_r}^{y_th} e^{x^2} Int_{-inf}^{x} e^{y^2} (1 + erf y)^2 dy dx,
    with e^{y^2} (1 + erf y)^2 = erfcx(-y)^2 e^{-y^2} (finite for y -> -inf).
    """
    nu = siegert_hz(mu_mv, sigma_mv, theta_mv=theta_mv, v_reset_mv=v_reset_mv, tau_m_ms=tau_m_ms, tau_ref_ms=tau_ref_ms)
    y_r = (v_reset_mv - mu_mv) / sigma_mv
    y_th = (theta_mv - mu_mv) / sigma_mv

    def inner(x: float) -> float:
        f = lambda y: special.erfcx(-y) ** 2 * math.exp(-y * y)  # noqa: E731
        return integrate.quad(f, -np.inf, x, epsabs=0.0, epsrel=1e-11, limit=200)[0]

    outer = integrate.quad(lambda x: math.exp(x * x) * inner(x), y_r, y_th, epsabs=0.0, epsrel=1e-10, limit=200)[0]
    return math.sqrt(2.0 * math.pi * (nu * tau_m_ms * 1e-3) ** 2 * outer)


# Mean overshoot of a Gaussian random walk over a flat barrier, in units of the step std (Siegmund 1979;
# Broadie, Glasserman & Kou 1997): beta = -zeta(1/2) / sqrt(2 pi) = 0.5826.
OVERSHOOT_BETA = -float(special.zeta(0.5)) / math.sqrt(2.0 * math.pi)


def discrete_threshold_shift_mv(sigma_mv: float, dt_ms: float, tau_m_ms: float = 20.0) -> float:
    """Effective threshold shift of a clock-driven LIF under white noise (first order in sqrt(dt)).

    A neuron checked only at the ends of steps misses excursions above theta between them; to first order it
    fires like a continuous-time neuron whose absorbing threshold sits beta * s higher, s being the std of the
    noise added per step, s = sigma sqrt((1 - e^{-2 dt / tau_m}) / 2) ~ sigma sqrt(dt / tau_m) (exact OU update,
    see GaussianDrive). The reset is exact in discrete time and is not shifted.
    """
    d = math.exp(-dt_ms / tau_m_ms)
    return OVERSHOOT_BETA * sigma_mv * math.sqrt((1.0 - d * d) / 2.0)


# ----------------------------------------------------------------------------------------------- building blocks
def block_from_pairs(post: str, pre: str, n_post: int, n_pre: int, pairs: Sequence[tuple[int, int]]) -> ScaffoldBlock:
    """A scaffold block with the given (pre, post) edges."""
    arr = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    return ScaffoldBlock.from_edges(post, pre, n_post, n_pre, arr[:, 0], arr[:, 1])


def random_block(
    rng: np.random.Generator, post: str, pre: str, n_post: int, n_pre: int, p: float, square: bool = False
) -> ScaffoldBlock:
    """Each (pre, post) pair independently with probability p (no autapses in a square block); built here, not by
    the package's connectivity rules, so that delivery tests do not depend on them."""
    mask = rng.random((n_pre, n_post)) < p
    if square:
        np.fill_diagonal(mask, False)
    pre_idx, post_idx = np.nonzero(mask)
    return ScaffoldBlock.from_edges(post, pre, n_post, n_pre, pre_idx, post_idx)


def edges_of(block: ScaffoldBlock) -> tuple[np.ndarray, np.ndarray]:
    """(pre, post) of every edge in CSR order, read with a plain Python loop over the rows."""
    row_ptr = block.row_ptr.numpy()
    post_index = block.post_index.numpy()
    pre = np.concatenate([np.full(row_ptr[i + 1] - row_ptr[i], i, dtype=np.int64) for i in range(block.n_pre)])
    return pre, post_index.astype(np.int64)


def dense_weights(block: ScaffoldBlock, weight: torch.Tensor, batch: int) -> torch.Tensor:
    """(B, N_pre, N_post) float32 dense matrix of the (scalar, (E,) or (B, E)) edge weights."""
    pre, post = edges_of(block)
    w = torch.as_tensor(weight, dtype=torch.float32)
    if w.dim() < 2:  # one weight for all edges, or one per edge shared by the replicas
        w = w.expand(batch, block.n_edges)
    dense = torch.zeros(batch, block.n_pre, block.n_post, dtype=torch.float32)
    for b in range(batch):
        dense[b, torch.from_numpy(pre), torch.from_numpy(post)] = w[b]
    return dense


class ReplayDrive(ExternalDrive):
    """Replays a pre-drawn input (T, B, N) in order, whatever the block lengths asked for: lets two schedules (or
    the network and a reference simulator) see exactly the same external input."""

    def __init__(self, inputs_mv: torch.Tensor) -> None:
        super().__init__()
        self.inputs_mv = inputs_mv.to(torch.float32)
        self.position = 0
        self.register_buffer("_device_probe", torch.zeros(0), persistent=False)

    def sample_block(
        self, n_steps: int, batch: int, size: int, generator: torch.Generator | None, backend: object = None
    ) -> torch.Tensor:
        block = self.inputs_mv[self.position : self.position + n_steps]
        assert block.shape == (n_steps, batch, size), (block.shape, n_steps, batch, size)
        self.position += n_steps
        return block.to(self.device)

    def moments(self, tau_m_ms: float) -> tuple[float, float]:
        return 0.0, 0.0


@dataclass
class ProjSpec:
    """A projection for the hand-built networks: block, signed weight (scalar, (E,) or (B, E)) and delay."""

    name: str
    block: ScaffoldBlock
    weight_mv: float | torch.Tensor
    delay_ms: float


def hand_network(
    sizes: dict[str, int],
    projections: Sequence[ProjSpec],
    drives: dict[str, ExternalDrive],
    dt_ms: float,
    batch: int,
    v_init_mv: dict[str, torch.Tensor],
    neuron: dict[str, float] | None = None,
    device: str | torch.device = "cpu",
    backend: object = "auto",
) -> Network:
    """A Network of LIF populations (excitatory iff the name starts with E) with given initial voltages (B, N).

    Weights that are tensors are installed per edge (and per replica for (B, E)) after ``reset``, as a plastic
    projection would hold them.
    """
    params = {**LIF, **(neuron or {})}
    pops = {name: LIFPopulation(name, n, dt_ms, excitatory=name.startswith("E"), **params) for name, n in sizes.items()}
    projs = {}
    for spec in projections:
        w = spec.weight_mv
        magnitude = abs(float(w)) if not torch.is_tensor(w) else 1.0
        sign = pops[spec.block.pre].sign
        projs[spec.name] = Projection(spec.name, spec.block, magnitude, sign, spec.delay_ms, dt_ms)
    net = Network(pops, drives, projs, dt_ms, backend=backend).to(device)
    net.reset(batch)
    for name, pop in pops.items():
        pop.reset_state(batch, v_init_mv=v_init_mv[name].to(device))
    for spec in projections:
        if torch.is_tensor(spec.weight_mv):
            projs[spec.name].weight_mv = spec.weight_mv.to(device=device, dtype=torch.float32).clone()
        else:
            assert float(spec.weight_mv) == projs[spec.name].weight_mv.item()
    return net


def run_network(net: Network, n_steps: int, chunk: int | None = None) -> dict[str, torch.Tensor]:
    """All spikes (T, B, N) per population, advancing ``chunk`` steps per run_block call (default: whole blocks)."""
    out: dict[str, list[torch.Tensor]] = {name: [] for name in net.populations}
    end = net.step_count + n_steps
    while net.step_count < end:
        n = end - net.step_count if chunk is None else min(chunk, end - net.step_count)
        block = net.run_block(None, n)
        for name, sp in block.spikes.items():
            out[name].append(sp.to("cpu", copy=True))  # a fused backend reuses its spike buffers
    return {name: torch.cat(v) for name, v in out.items()}


def reference_simulation(
    sizes: dict[str, int],
    projections: Sequence[ProjSpec],
    external_mv: dict[str, torch.Tensor],
    dt_ms: float,
    batch: int,
    v_init_mv: dict[str, torch.Tensor],
    n_steps: int,
    neuron: dict[str, float] | None = None,
) -> dict[str, torch.Tensor]:
    """Dense, step-by-step re-implementation of theory.md §1 (no blocks, no ring buffer, no CSR).

    Per step and population: V <- where(refractory, V_r, V e^{-dt/tau_m} + (synaptic + external input)); spike if
    V >= theta; reset to V_r and count tau_ref / dt refractory steps. A spike of step t adds ``spikes @ W`` to the
    post population's input at step t + D. Float32 throughout, with the same order of operations within a step
    as the package's documented update, so with weights that are exact binary fractions (sums exact in any order)
    the spikes must agree bit for bit.
    """
    p = {**LIF, **(neuron or {})}
    decay = math.exp(-dt_ms / p["tau_m_ms"])
    n_ref = round(p["tau_ref_ms"] / dt_ms)
    max_delay = max((round(s.delay_ms / dt_ms) for s in projections), default=0)
    syn = {name: torch.zeros(n_steps + max_delay + 1, batch, n, dtype=torch.float32) for name, n in sizes.items()}
    dense = [
        (s, dense_weights(s.block, torch.as_tensor(s.weight_mv), batch), round(s.delay_ms / dt_ms)) for s in projections
    ]
    v = {name: v_init_mv[name].to(torch.float32).expand(batch, n).clone() for name, n in sizes.items()}
    ref = {name: torch.zeros(batch, n, dtype=torch.int64) for name, n in sizes.items()}
    spikes = {name: torch.zeros(n_steps, batch, n, dtype=torch.bool) for name, n in sizes.items()}
    for t in range(n_steps):
        for name in sizes:
            inp = syn[name][t] + external_mv[name][t] if name in external_mv else syn[name][t]
            refractory = ref[name] > 0
            new_v = torch.where(refractory, torch.tensor(p["v_reset_mv"]), v[name] * decay + inp)
            s = new_v >= p["theta_mv"]
            v[name] = torch.where(s, torch.tensor(p["v_reset_mv"]), new_v)
            ref[name] = torch.where(s, n_ref, torch.where(refractory, ref[name] - 1, ref[name]))
            spikes[name][t] = s
        for spec, w, d in dense:
            s = spikes[spec.block.pre][t].to(torch.float32)
            syn[spec.block.post][t + d] += torch.bmm(s.unsqueeze(1), w).squeeze(1)
    return spikes


def record_spike_times(net: Network, generator: torch.Generator | None, n_steps: int) -> dict[str, np.ndarray]:
    """Run ``n_steps`` and return, per population, an array (n_spikes, 3) of (step, replica, neuron)."""
    rows: dict[str, list[torch.Tensor]] = {name: [] for name in net.populations}
    end = net.step_count + n_steps
    while net.step_count < end:
        out = net.run_block(generator, end - net.step_count)
        for name, sp in out.spikes.items():
            idx = sp.nonzero()
            idx[:, 0] += out.start_step
            rows[name].append(idx)
    return {name: torch.cat(r).numpy() for name, r in rows.items()}
