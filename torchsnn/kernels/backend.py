"""The compute backend: chosen once per run (``select_backend``), passed to every component that has a kernel.

Four backends, one semantics each:

==============  ======  ===========================================================================================
name            device  what runs
==============  ======  ===========================================================================================
``numba_cpu``   cpu     numba kernels (``torchsnn.kernels.numba_cpu``), float32 ring; bit-identical to torch_cpu
``torch_cpu``   cpu     the plain-torch reference (``torchsnn.delivery``, ``NeuronPopulation.run_block``)
``triton_cuda`` cuda    fused Triton kernels (``torchsnn.kernels.triton_cuda``), int64 fixed-point ring, CUDA graphs
``torch_cuda``  cuda    the torch reference on the GPU, same int64 fixed-point ring (deterministic, slow: host syncs)
==============  ======  ===========================================================================================

The CUDA backends share the fixed-point ring (``torchsnn.kernels.fixed_point``): integer sums do not depend on the
order of additions, so ``torch_cuda`` is a deterministic fallback with the same results as ``triton_cuda``, never
a float32 ring with non-deterministic ``index_add_``. ``auto`` on CUDA without Triton selects ``torch_cuda`` and
says so in :meth:`Backend.describe` (reported in the run summary); asking for ``triton`` without Triton is an
error. Triton and numba are imported only when their backend is chosen. ``triton`` on the CPU runs the Triton
kernels in Triton's interpreter (``TRITON_INTERPRET=1`` must be set before anything imports Triton): for tests.
"""

from __future__ import annotations

import importlib.util
import os
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

if TYPE_CHECKING:
    from torchsnn.populations.base import NeuronPopulation
    from torchsnn.projection import Projection

KINDS = ("auto", "numba", "torch", "triton")
NUMBA_AVAILABLE = importlib.util.find_spec("numba") is not None
TRITON_AVAILABLE = importlib.util.find_spec("triton") is not None
# the process-wide default of ``auto`` on the CPU (numba or the torch reference); read by select_backend only
_CPU_KERNELS = os.environ.get("TORCHSNN_CPU_KERNELS", "1") != "0"


def cpu_kernels_enabled() -> bool:
    """Whether ``auto`` picks numba on the CPU (``TORCHSNN_CPU_KERNELS=0`` or ``set_cpu_kernels(False)``: the
    torch reference)."""
    return NUMBA_AVAILABLE and _CPU_KERNELS


def set_cpu_kernels(enabled: bool) -> bool:
    """Default of ``auto`` on the CPU for networks reset from now on; returns the previous setting."""
    global _CPU_KERNELS
    previous, _CPU_KERNELS = _CPU_KERNELS, bool(enabled)
    return previous


class Backend:
    """The plain-torch reference on any device (``torch_cpu`` / ``torch_cuda``); subclasses replace the hot
    operations by kernels with identical results. The ring dtype is float32 mV on the CPU, int64 fixed-point units
    on CUDA."""

    kind = "torch"
    #: the network hands whole blocks to :meth:`run_network_block` (fused kernels) instead of the generic schedule
    fused = False

    def __init__(self, device: torch.device | str, note: str = "", fixed_point: bool | None = None) -> None:
        self.device = torch.device(device)
        self.note = note
        # the ring: int64 fixed point on CUDA (or when asked: a CPU reference of the CUDA semantics, for tests)
        self.fixed_point = self.device.type == "cuda" if fixed_point is None else bool(fixed_point)

    @property
    def name(self) -> str:
        return f"{self.kind}_{'cuda' if self.device.type == 'cuda' else 'cpu'}"

    @property
    def ring_dtype(self) -> torch.dtype:
        return torch.int64 if self.fixed_point else torch.float32

    def describe(self) -> dict[str, Any]:
        """What runs, for the run summary."""
        return {"name": self.name, "device": str(self.device), "ring": str(self.ring_dtype).replace("torch.", "")} | (
            {"note": self.note} if self.note else {}
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name})"

    # ------------------------------------------------------------------ network hooks
    def prepare(self, network: Any, generator: torch.Generator | None) -> None:
        """Called by ``Network.reset`` once the state is allocated (device buffers of a fused backend)."""

    def restored(self, network: Any) -> None:
        """Called by ``Network.restore_state`` after a checkpoint was loaded."""

    def check(self, network: Any) -> None:
        """Raise if the run lost anything (bounded device buffers); called at the end of ``simulate``."""

    def run_network_block(self, network: Any, generator: torch.Generator | None, n_steps: int, voltage_every: int):
        """A whole block of the network (fused backends only)."""
        raise NotImplementedError(f"{self.name} runs blocks through the network's generic schedule")

    # ------------------------------------------------------------------ operations (reference implementations)
    def lif_block(
        self,
        pop: NeuronPopulation,
        ring: Tensor,
        first_slot: int,
        drive: Tensor | None,
        n_steps: int,
        record_steps: list[int],
    ) -> tuple[Tensor, list[Tensor]]:
        return pop.reference_block(ring, first_slot, drive, n_steps, record_steps)

    def deliver(self, proj: Projection, spikes: Tensor, ring: Tensor, first_slot: int) -> None:
        from torchsnn.delivery import deliver_block

        deliver_block(
            spikes, proj.row_ptr, proj.post_index, proj.weight_mv, ring, first_slot, per_row=proj.layout == "per_row"
        )

    def invert_table(self, u: Tensor, cdf: Tensor, guide: Tensor, values: Tensor) -> Tensor:
        """values[k], k = #{j : cdf[j] <= u} clamped to the table (inversion sampling)."""
        index = torch.searchsorted(cdf, u, right=True).clamp_(max=cdf.numel() - 1)
        return values[index]

    def spike_statistics(self, spikes: Tensor, first_step: int, window_start: int, st: dict[str, Tensor]) -> None:
        """Counts and ISI sums of a block (M, B, N), see SpikeStatsMonitor. Steps one at a time: (B, N)
        temporaries only (no (M, B, N) int64/float64 ones); the sums are of integers, exact in float64."""
        for s in range(spikes.shape[0]):
            step = first_step + s
            sp = spikes[s]
            if step >= window_start:
                st["count"] += sp
                valid = sp & (st["last"] >= window_start)
                isi = torch.where(valid, step - st["last"], 0).double()
                st["isi_sum"] += isi
                st["isi_sq"] += isi * isi
                st["isi_n"] += valid
            st["last"].masked_fill_(sp, step)

    def relax_separable(self, proj: Projection, f_pre: Tensor, f_post: Tensor, decay: float) -> bool:
        """Compiled exact relaxation of per-edge weights; False: not available here (the rule's torch code runs)."""
        return False


def select_backend(device: torch.device | str, kind: str | Backend = "auto") -> Backend:
    """The backend for ``device``: ``kind`` is auto | numba | torch | triton (or a Backend, returned as is after
    a device check). Raises ValueError naming the field, the value and what is allowed."""
    device = torch.device(device)
    if isinstance(kind, Backend):
        if kind.device.type != device.type:
            raise ValueError(f"simulation.backend: {kind.name} cannot run a network on {device}")
        return kind
    if kind not in KINDS:
        raise ValueError(f"simulation.backend: {kind!r} is not one of {', '.join(KINDS)}")
    if device.type == "cuda":
        if kind == "numba":
            raise ValueError("simulation.backend: numba runs on the CPU only; on CUDA use auto, triton or torch")
        if kind == "torch":
            return Backend(device)
        if not TRITON_AVAILABLE:
            if kind == "triton":
                raise ValueError("simulation.backend: triton is not installed (pip install triton), use torch")
            return Backend(device, note="triton not installed: torch reference on CUDA (same fixed-point ring, slow)")
        from torchsnn.kernels.triton_backend import TritonBackend

        return TritonBackend(device)
    if device.type != "cpu":
        raise ValueError(f"simulation.device: {device} is not supported (cpu or cuda)")
    if kind == "triton":
        if not TRITON_AVAILABLE or os.environ.get("TRITON_INTERPRET") != "1":
            raise ValueError("simulation.backend: triton on the CPU needs triton and TRITON_INTERPRET=1 (tests)")
        from torchsnn.kernels.triton_backend import TritonBackend

        return TritonBackend(device)
    if kind == "numba" and not NUMBA_AVAILABLE:
        raise ValueError("simulation.backend: numba is not installed, use torch")
    if kind == "numba" or (kind == "auto" and cpu_kernels_enabled()):
        from torchsnn.kernels.numba_backend import NumbaBackend

        return NumbaBackend(device)
    return Backend(device)


def default_backend(tensor: Tensor) -> Backend:
    """The ``auto`` backend of a tensor's device, for components used on their own (outside a Network)."""
    return select_backend(tensor.device, "auto")
