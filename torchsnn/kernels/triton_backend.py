"""The ``triton_cuda`` backend: fused block kernels, event-list delivery and CUDA-graph replay.

One block of the network is, in stream order: per population one neuron kernel (drive + LIF + statistics +
population counts + event compaction, see ``triton_cuda``), per projection one delivery kernel reading its
pre population's event list, and one kernel that advances the device step counter and clears the event
cursors: P + Q + 1 launches (brunel_a: 2 + 4 + 1 = 7). Drives other than Poisson / Gaussian / none are sampled by
their own ``sample_block`` and passed as a tensor (and rule out graph replay).

**Graph replay** (CUDA only): the first full block runs eagerly (Triton compiles there); the second is captured as
a CUDA graph and replayed for every later full block. Everything a block reads that changes is in device memory
(step counter, RNG seeds, weights updated in place), so the replay equals the eager run. A different set of
monitor buffers (a new ``simulate`` call), a restored checkpoint or a reset recaptures; partial blocks run eagerly.
Where capture is unavailable (CPU interpreter, a drive sampled on the host, a capture error) the block runs
eagerly and :meth:`describe` says why.

**Event buffers.** A LIF neuron with r refractory steps spikes at most ceil(M / (r + 1)) times in a block of M
steps, so an event list of B N ceil(M / (r + 1)) entries cannot overflow; the kernels still count lost events,
and :meth:`check` (called at the end of every ``simulate``) raises if any were lost.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from torchsnn.kernels import triton_cuda as tk
from torchsnn.kernels.backend import Backend


class TritonBackend(Backend):
    kind = "triton"
    fused = True

    def __init__(self, device: torch.device | str, graphs: bool = True, note: str = "") -> None:
        super().__init__(device, note, fixed_point=True)
        self.graphs = graphs and self.device.type == "cuda"
        if self.device.type != "cuda":
            self.graph_status = "eager: CUDA graphs need a CUDA device"
        else:
            self.graph_status = "not yet (first full blocks run eagerly)" if graphs else "eager: graphs switched off"
        self.launches = 0  # kernel launches so far (the profiler's count)
        self._state: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return "triton_cuda" if self.device.type == "cuda" else "triton_cpu_interpreter"

    def describe(self) -> dict[str, Any]:
        return super().describe() | {"fused_block": True, "graph_replay": self.graph_status}

    # ------------------------------------------------------------------ components on their own
    def lif_block(self, pop, ring, first_slot, drive, n_steps, record_steps):
        if not hasattr(pop, "lif_parameters"):
            return pop.reference_block(ring, first_slot, drive, n_steps, record_steps)
        decay, theta, v_reset, refractory_steps = pop.lif_parameters()
        self.launches += 1
        return tk.lif_block(
            pop.v_mv, pop.refractory_left, ring, first_slot, drive, n_steps, record_steps, decay, theta, v_reset,
            refractory_steps,
        )  # fmt: skip

    def deliver(self, proj, spikes, ring, first_slot):
        self.launches += tk.deliver(
            spikes, proj.row_ptr, proj.post_index, proj.weight_mv, ring, first_slot, per_row=proj.layout == "per_row"
        )

    # ------------------------------------------------------------------ the network's blocks
    def prepare(self, network, generator: torch.Generator | None) -> None:
        """Device buffers for the fused blocks (after ``Network.reset``)."""
        dev, batch, m = self.device, network.batch, network.block_steps
        pops = list(network.populations)
        for name, pop in network.populations.items():
            if not hasattr(pop, "lif_parameters"):
                raise ValueError(
                    f"simulation.backend: triton fuses LIF populations only; {name} is {type(pop).__name__}"
                )
        seeds = self._seeds(network, generator, len(pops))
        per_pop = {}
        for i, (name, pop) in enumerate(network.populations.items()):
            r = pop.lif_parameters()[3] if hasattr(pop, "lif_parameters") else 0
            capacity = batch * pop.size * math.ceil(m / (r + 1))
            per_pop[name] = {
                "index": i,
                "spikes": torch.zeros(m, batch, pop.size, dtype=torch.int8, device=dev),
                "events": torch.empty(max(capacity, 1), dtype=torch.int64, device=dev),
                "v_record": torch.empty(m, batch, pop.size, dtype=torch.float32, device=dev),
            }
        chunks = {}
        for name, proj in network.projections.items():
            degree = proj.row_ptr[1:] - proj.row_ptr[:-1]
            chunks[name] = -(-int(degree.max() if degree.numel() else 0) // 128)
        self._state = {
            "step": torch.full((1,), network.step_count, dtype=torch.int64, device=dev),
            "host_step": network.step_count,
            "cursors": torch.zeros(len(pops), dtype=torch.int64, device=dev),
            "overflow": torch.zeros(len(pops), dtype=torch.int64, device=dev),
            "seeds": seeds,
            "pops": per_pop,
            "chunks": chunks,
            "programs": tk.delivery_programs(dev),
            "graph": None,
            "graph_key": None,
            "warm_key": None,
        }

    def _seeds(self, network, generator: torch.Generator | None, n: int) -> Tensor:
        """One Philox key per population, drawn from the run's generator and kept as the network buffer
        ``drive_seeds`` (saved in checkpoints); ``generator`` None: the restored buffer is reused."""
        seeds = network._buffers.get("drive_seeds")
        if seeds is None:  # restored from a checkpoint into a network that had not registered it
            seeds = network.__dict__.pop("drive_seeds", None)
        if generator is not None or seeds is None or seeds.numel() != n:
            if generator is None:
                generator = torch.Generator(device=self.device).manual_seed(0)  # deterministic default
            seeds = torch.randint(0, 2**62, (n,), generator=generator, device=self.device, dtype=torch.int64)
        network.register_buffer("drive_seeds", seeds.to(self.device))
        return network.drive_seeds

    def restored(self, network) -> None:
        """After a checkpoint: fresh device buffers (the restored tensors replaced the old ones), the device step
        counter at the restored step, the saved RNG keys, no captured graph."""
        self.prepare(network, None)

    def check(self, network) -> None:
        """Raise if an event list overflowed (one host sync; called at the end of ``simulate``)."""
        if self._state is not None and int(self._state["overflow"].sum()) > 0:
            lost = dict(zip(network.populations, self._state["overflow"].tolist(), strict=True))
            raise RuntimeError(f"event buffers overflowed, events lost per population: {lost}")

    def _drive(self, network, name: str, pop, m: int, generator) -> tuple[tuple[int, Any] | None, bool]:
        """The drive argument of the neuron kernel, and whether it is graph-safe."""
        from torchsnn.populations.drive import GaussianDrive, NoDrive, PoissonDrive

        drive = network.drives[name] if name in network.drives else None  # noqa: SIM401 (a ModuleDict)
        seed = self._state["seeds"][self._state["pops"][name]["index"] :]
        if drive is None or type(drive) is NoDrive:
            return None, True
        if type(drive) is PoissonDrive:
            return (tk.DRIVE_POISSON, (drive.jump_cdf, drive.jump_values_mv, seed)), True
        if type(drive) is GaussianDrive:
            return (tk.DRIVE_GAUSSIAN, (*drive.noise_scale_offset_mv(), seed)), True
        x = drive.sample_block(m, network.batch, pop.size, generator, self)
        return (tk.DRIVE_TENSOR, x.to(torch.float32).contiguous()), False

    def _launch_block(self, network, m: int, voltage_every: int, drives: dict) -> None:
        st = self._state
        for name, pop in network.populations.items():
            p = st["pops"][name]
            i = p["index"]
            sink = network.sinks.get(name, {})
            stats = sink.get("stats")
            record = (0, voltage_every, 0, m) if voltage_every else (m, 1, 0, 0)
            tk.neuron_block(
                pop.v_mv, pop.refractory_left, network.ring(name), st["step"], p["spikes"], p["v_record"], record, m,
                pop.lif_parameters(), drive=drives[name], events=(p["events"], st["cursors"][i:], st["overflow"][i:]),
                stats=stats, rate=sink.get("rate"),
            )  # fmt: skip
        for pname, proj in network.projections.items():
            pre = st["pops"][proj.pre]
            tk.launch_delivery(
                pre["events"], st["cursors"][pre["index"] :], st["step"], proj.delay_steps, proj.row_ptr,
                proj.post_index, proj.weight_mv, network.ring(proj.post), proj.layout == "per_row",
                st["chunks"][pname], proj.n_pre, st["programs"],
            )  # fmt: skip
        tk.advance(st["step"], st["cursors"], m)

    def run_network_block(self, network, generator, n_steps: int, voltage_every: int):
        from torchsnn.network import BlockOutput

        st = self._state
        if st is None:
            self.prepare(network, generator)
            st = self._state
        t0 = network.step_count
        if st["host_step"] != t0:  # the host counter was moved (checkpoint, manual step_count)
            st["step"].fill_(t0)
        drives, safe = {}, True
        for name, pop in network.populations.items():
            drives[name], ok = self._drive(network, name, pop, n_steps, generator)
            safe &= ok
        full = n_steps == network.block_steps
        self.launches += len(network.populations) + len(network.projections) + 1
        if full and safe and self.graphs:
            self._replay(network, n_steps, voltage_every, drives)
        else:
            if self.graphs and not safe:
                self.graph_status = "eager: a drive is sampled on the host"
            self._launch_block(network, n_steps, voltage_every, drives)
        st["host_step"] = t0 + n_steps
        spikes = {name: st["pops"][name]["spikes"][:n_steps].view(torch.bool) for name in network.populations}
        voltages: dict[str, list[Tensor]] = {}
        n_rec = sum(1 for s in range(n_steps) if voltage_every and (t0 + s) % voltage_every == 0)
        for name in network.populations:
            voltages[name] = [st["pops"][name]["v_record"][k] for k in range(n_rec)]
        for name, est in network.estimators.items():
            est.update_block(spikes[name])
        return BlockOutput(t0, n_steps, spikes, voltages)

    def _replay(self, network, m: int, voltage_every: int, drives: dict) -> None:
        st = self._state
        key = self._graph_key(network, m, voltage_every)
        if st["graph"] is not None and st["graph_key"] == key:
            st["graph"].replay()
            return
        if st["warm_key"] != key or st["graph_key"] == ("failed", key):
            st["warm_key"] = key  # new buffers or arguments: run eagerly once (Triton compiles outside capture)
            self._launch_block(network, m, voltage_every, drives)
            return
        try:
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):  # on torch's side stream; Triton launches on the current stream
                self._launch_block(network, m, voltage_every, drives)
        except Exception as err:  # capture unavailable: eager, and say why
            self.graph_status = f"eager: capture failed ({type(err).__name__}: {err})"[:300]
            st["graph_key"] = ("failed", key)
            self._launch_block(network, m, voltage_every, drives)
            return
        st["graph"], st["graph_key"] = graph, key
        self.graph_status = "replay (one CUDA graph per full block)"
        graph.replay()  # capture does not execute: this block runs now

    @staticmethod
    def _graph_key(network, m: int, voltage_every: int) -> tuple:
        """What a captured graph depends on: the arguments and the addresses of every buffer it touches."""
        ptrs = [t.data_ptr() for s in network.sinks.values() for v in s.values() for t in _tensors(v)]
        for name, pop in network.populations.items():
            ptrs += [pop.v_mv.data_ptr(), pop.refractory_left.data_ptr(), network.ring(name).data_ptr()]
        ptrs += [proj.weight_mv.data_ptr() for proj in network.projections.values()]
        return (m, voltage_every, tuple(ptrs))


def _tensors(value) -> list[Tensor]:
    if isinstance(value, Tensor):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors(v)]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _tensors(v)]
    return []
