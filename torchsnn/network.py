"""Network: populations + projections + external drive + rate estimators, advanced in min-delay blocks."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from torchsnn.estimators import RateEstimator
from torchsnn.kernels.backend import Backend, select_backend
from torchsnn.kernels.fixed_point import from_fixed_point, to_fixed_point
from torchsnn.populations import ExternalDrive, NeuronPopulation
from torchsnn.projection import Projection
from torchsnn.validation import check_int, require


@dataclass
class BlockOutput:
    """What one block produced: spikes (M, B, N) per population and sampled voltages (B, N) per population."""

    start_step: int
    n_steps: int
    spikes: dict[str, Tensor]
    voltage_samples: dict[str, list[Tensor]] = field(default_factory=dict)


class Network(nn.Module):
    """A spiking network of populations connected by projections on one binary scaffold.

    **Step schedule.** Time advances in blocks of M = min over projections of the delay in steps (at least 1):
    every spike emitted inside a block arrives at least M steps later, i.e. in a later block, so a block's spikes
    can be delivered together at its end (NEST's min-delay scheme). Within a block:

    1. external drive: the input of all M steps is drawn at once (one RNG call per population);
    2. for each step t = t0 .. t0 + M - 1 and each population:
       a. the delayed synaptic input due at t is read from the ring buffer slot t mod R, and the slot cleared;
       b. neuron update with drive + synaptic input: decay, threshold, reset, refractoriness -> spikes(t);
       c. rate estimator (spike trace) update with spikes(t);
    3. delivery: each spike emitted at step t is added, with the current weights, to ring slot (t + D) mod R of
       every target (event-driven over the CSR rows of the neurons that spiked);
    4. plasticity (plastic projections, under no_grad): when ``update_every_ms`` has elapsed since the last update,
       weights move by the rule over the elapsed time using the traces at the block's end;
    5. monitors read the block's spikes and sampled voltages (done by the caller, see torchsnn.simulation).

    Ring buffers have R = D_max slots per post population, shaped (R, B, N_post). State is (B, N) for B
    independent replicas sharing the scaffold. Nothing in the loop copies to the host on its own; the
    reference delivery (``nonzero``) does synchronise on CUDA, which the fast CUDA path avoids.

    **Backend.** ``backend`` (auto | numba | torch | triton, or a ``Backend``) is resolved for the network's
    device by ``reset`` (``select_backend``) and passed to every component that runs a kernel; a fused backend
    (Triton) runs steps 1-3 and the spike statistics in its own kernels (:meth:`Backend.run_network_block`).
    """

    def __init__(
        self,
        populations: dict[str, NeuronPopulation],
        drives: dict[str, ExternalDrive],
        projections: dict[str, Projection],
        dt_ms: float,
        estimators: dict[str, RateEstimator] | None = None,
        plasticity_every_ms: float = 1.0,
        backend: str | Backend = "auto",
    ) -> None:
        super().__init__()
        self.backend_request = backend
        self.backend: Backend | None = None
        #: per population, monitor buffers that a fused backend updates inside its kernels (see SpikeStatsMonitor)
        self.sinks: dict[str, dict[str, object]] = {}
        require(len(populations) > 0, "populations", populations, "at least one population is needed")
        for name, proj in projections.items():
            if proj.plastic:
                for end in (proj.pre, proj.post):
                    require(
                        end in (estimators or {}),
                        f"projections.{name}",
                        end,
                        "a plastic projection needs rate estimators on both its populations",
                    )
        for name, proj in projections.items():
            require(
                proj.pre in populations,
                f"projections.{name}.pre",
                proj.pre,
                f"must name a population ({', '.join(populations)})",
            )
            require(
                proj.post in populations,
                f"projections.{name}.post",
                proj.post,
                f"must name a population ({', '.join(populations)})",
            )
        self.dt_ms = float(dt_ms)
        self.populations = nn.ModuleDict(populations)
        self.drives = nn.ModuleDict(drives)
        self.projections = nn.ModuleDict(projections)
        self.estimators = nn.ModuleDict(estimators or {})
        for name, pop in populations.items():
            if name in drives:
                drives[name].bind(pop.tau_m_ms, dt_ms)
        delays = [p.delay_steps for p in projections.values()]
        self.block_steps = min(delays) if delays else 10
        # spikes of a block arrive D >= M steps later; once the block's own slots are read and cleared, pending
        # input spans at most D_max consecutive steps
        self.ring_slots = max(delays) if delays else 1
        self.plasticity_every_steps = max(1, round(plasticity_every_ms / dt_ms))
        self.step_count = 0
        self._last_plasticity_step = 0
        for name, pop in populations.items():
            self.register_buffer(f"ring_{name}", torch.zeros(self.ring_slots, 1, pop.size))

    # ------------------------------------------------------------------ state
    @property
    def device(self) -> torch.device:
        return next(iter(self.buffers())).device

    @property
    def batch(self) -> int:
        return next(iter(self.populations.values())).batch

    def select_backend(self) -> Backend:
        """Resolve ``backend_request`` for the current device (done by ``reset``; the one place it is chosen)."""
        if self.backend is None or self.backend.device != self.device:
            self.backend = select_backend(self.device, self.backend_request)
        return self.backend

    def set_backend(self, backend: str | Backend) -> None:
        """Request another backend; takes effect at the next ``reset``."""
        self.backend_request = backend

    def ring_dtype(self) -> torch.dtype:
        """float32 mV on the CPU backends, int64 fixed-point units on the CUDA ones (deterministic atomics)."""
        return self.select_backend().ring_dtype

    def ring(self, population: str) -> Tensor:
        return getattr(self, f"ring_{population}")

    def reset(
        self,
        batch: int = 1,
        generator: torch.Generator | None = None,
        initial_weights_mv: dict[str, Tensor] | None = None,
        initial_rates_hz: dict[str, Tensor | float] | None = None,
    ) -> None:
        """Fresh state for ``batch`` replicas: random voltages, empty ring buffers, traces at ``initial_rates_hz``
        (per population: a number or one rate per neuron; default each estimator's own), plastic weights from
        ``initial_weights_mv`` (per projection, see Projection.reset_weights)."""
        check_int("replicas", batch, minimum=1)
        self.backend = None  # auto is re-resolved at every reset (the CPU default may have been switched)
        backend = self.select_backend()
        for name, pop in self.populations.items():
            pop.reset_state(batch, generator)
            setattr(
                self,
                f"ring_{name}",
                torch.zeros(self.ring_slots, batch, pop.size, device=self.device, dtype=self.ring_dtype()),
            )
        for name, est in self.estimators.items():
            est.reset_state(batch, (initial_rates_hz or {}).get(name))
        for name, proj in self.projections.items():
            proj.reset_weights(batch, (initial_weights_mv or {}).get(name))
        self.step_count = 0
        self._last_plasticity_step = 0
        backend.prepare(self, generator)

    # ------------------------------------------------------------------ dynamics
    @torch.no_grad()
    def run_block(
        self, generator: torch.Generator | None, n_steps: int | None = None, voltage_every_steps: int = 0
    ) -> BlockOutput:
        """Advance ``n_steps`` (default and at most one min-delay block) following the step schedule.

        Populations do not interact inside a block (every spike emitted in it arrives in a later block), so each
        population runs its steps in one call (a compiled kernel on the CPU) before the block is delivered.
        """
        m = self.block_steps if n_steps is None else min(int(n_steps), self.block_steps)
        backend = self.backend if self.backend is not None else self.select_backend()
        if backend.fused:
            out = backend.run_network_block(self, generator, m, voltage_every_steps)
            self.step_count += m
            self._maybe_update_plasticity()
            return out
        t0 = self.step_count
        batch = self.batch
        drive = {
            name: self.drives[name].sample_block(m, batch, pop.size, generator, backend)
            if name in self.drives
            else None
            for name, pop in self.populations.items()
        }
        record = [s for s in range(m) if voltage_every_steps and (t0 + s) % voltage_every_steps == 0]
        spikes: dict[str, Tensor] = {}
        voltages: dict[str, list[Tensor]] = {}
        for name, pop in self.populations.items():
            spikes[name], voltages[name] = pop.run_block(
                self.ring(name), t0 % self.ring_slots, drive[name], m, record, backend
            )
            if name in self.estimators:
                self.estimators[name].update_block(spikes[name])
        for proj in self.projections.values():
            proj.deliver(spikes[proj.pre], self.ring(proj.post), t0, backend)
        self.step_count = t0 + m
        self._maybe_update_plasticity()
        return BlockOutput(t0, m, spikes, voltages)

    def _maybe_update_plasticity(self) -> None:
        elapsed = self.step_count - self._last_plasticity_step
        if elapsed < self.plasticity_every_steps:
            return
        for proj in self.projections.values():
            if proj.plastic:
                proj.apply_plasticity(
                    self.estimators[proj.pre].rate_hz(),
                    self.estimators[proj.post].rate_hz(),
                    elapsed * self.dt_ms,
                    self.backend,
                )
        self._last_plasticity_step = self.step_count

    # ------------------------------------------------------------------ checkpoints
    def checkpoint_state(self) -> dict[str, object]:
        """Every evolving tensor (copied to the CPU) and counter of the network; the wiring (rebuilt from the seed
        and checked by fingerprint) and constant tables are left out."""
        structure = {"row_ptr", "post_index", "pre_index_long", "post_index_long", "degree_chunks"}
        return {
            "buffers": {
                name: b.detach().cpu().clone()
                for name, b in self.state_dict().items()
                if name.rpartition(".")[2] not in structure
            },
            "step_count": self.step_count,
            "last_plasticity_step": self._last_plasticity_step,
            "layouts": {name: p.layout for name, p in self.projections.items()},
        }

    def restore_state(self, state: dict[str, object]) -> None:
        """Inverse of :meth:`checkpoint_state` (buffers replaced, whatever their shape, on this device)."""
        device = self.device
        ring_dtype = self.ring_dtype()
        for name, value in state["buffers"].items():
            owner_name, _, leaf = name.rpartition(".")
            owner = self.get_submodule(owner_name) if owner_name else self
            if leaf.startswith("ring_") and value.dtype != ring_dtype:  # saved on another kind of device
                value = to_fixed_point(value) if ring_dtype == torch.int64 else from_fixed_point(value)
            setattr(owner, leaf, value.to(device))
        for name, layout in state["layouts"].items():
            self.projections[name].layout = layout
        self.step_count = int(state["step_count"])
        self._last_plasticity_step = int(state["last_plasticity_step"])
        self.select_backend().restored(self)

    # ------------------------------------------------------------------ description
    def population_sizes(self) -> dict[str, int]:
        return {name: pop.size for name, pop in self.populations.items()}

    def export_edges(self) -> dict[str, Tensor]:
        """Plain arrays of the whole network, so the very same network can be run in Brian2 or NEST.

        Returns global ``pre`` and ``post`` indices (populations laid out in order, see ``offsets``), the signed
        ``weight_mv`` of replica 0 and the ``delay_ms`` of every edge, plus ``offsets`` (name -> first index).
        """
        offsets, start = {}, 0
        for name, pop in self.populations.items():
            offsets[name] = start
            start += pop.size
        pre, post, weight, delay = [], [], [], []
        for proj in self.projections.values():
            pre.append(proj.pre_index().cpu() + offsets[proj.pre])
            post.append(proj.post_index.cpu().long() + offsets[proj.post])
            w = proj.edge_weights_mv().detach().cpu()
            weight.append((w[0] if w.dim() == 2 else w).expand(proj.n_edges).clone())
            delay.append(torch.full((proj.n_edges,), proj.delay_steps * self.dt_ms, dtype=torch.float64))

        def cat(xs, dtype):
            return torch.cat(xs) if xs else torch.zeros(0, dtype=dtype)

        return {
            "pre": cat(pre, torch.int64),
            "post": cat(post, torch.int64),
            "weight_mv": cat(weight, torch.float32),
            "delay_ms": cat(delay, torch.float64),
            "offsets": offsets,
        }
