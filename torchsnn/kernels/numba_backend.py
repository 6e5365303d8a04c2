"""The ``numba_cpu`` backend: the compiled CPU kernels of ``torchsnn.kernels.numba_cpu`` (imported with it),
operating in place on the tensors' memory and bit-identical to the torch reference (tests/kernels)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from torchsnn.kernels import numba_cpu
from torchsnn.kernels.backend import Backend

if TYPE_CHECKING:
    from torchsnn.populations.base import NeuronPopulation
    from torchsnn.projection import Projection

_NO_DRIVE = np.empty((0, 1, 1), dtype=np.float32)


class NumbaBackend(Backend):
    kind = "numba"

    def lif_block(
        self,
        pop: NeuronPopulation,
        ring: Tensor,
        first_slot: int,
        drive: Tensor | None,
        n_steps: int,
        record_steps: list[int],
    ) -> tuple[Tensor, list[Tensor]]:
        if not hasattr(pop, "lif_parameters"):  # a population without a compiled kernel
            return pop.reference_block(ring, first_slot, drive, n_steps, record_steps)
        decay, theta, v_reset, refractory_steps = pop.lif_parameters()
        spikes = torch.empty(n_steps, *pop.v_mv.shape, dtype=torch.bool)
        record_steps = sorted(set(record_steps))
        record = np.zeros(n_steps, dtype=np.bool_)
        record[record_steps] = True
        v_record = np.empty((len(record_steps), *pop.v_mv.shape), dtype=np.float32)
        numba_cpu.lif_block(
            pop.v_mv.numpy(),
            pop.refractory_left.numpy(),
            ring.numpy(),
            first_slot,
            _NO_DRIVE if drive is None else drive.numpy(),
            spikes.numpy(),
            record,
            v_record,
            np.float32(decay),
            np.float32(theta),
            np.float32(v_reset),
            np.int32(refractory_steps),
        )
        return spikes, [torch.from_numpy(v) for v in v_record]

    def deliver(self, proj: Projection, spikes: Tensor, ring: Tensor, first_slot: int) -> None:
        args = (spikes.numpy(), proj.row_ptr.numpy(), proj.post_index.numpy())
        slot = first_slot % ring.shape[0]
        w = proj.weight_mv
        if proj.layout == "per_row":
            numba_cpu.deliver_per_row(*args, w.numpy(), ring.numpy(), slot)
        elif w.dim() == 0:
            numba_cpu.deliver_scalar(*args, np.float32(w.item()), ring.numpy(), slot)
        else:  # (E,) shared by the replicas, or (B, E)
            numba_cpu.deliver_per_edge(*args, w.view(-1, proj.n_edges).numpy(), ring.numpy(), slot)

    def invert_table(self, u: Tensor, cdf: Tensor, guide: Tensor, values: Tensor) -> Tensor:
        out = torch.empty(u.shape, dtype=values.dtype)
        numba_cpu.invert_table(u.reshape(-1).numpy(), cdf.numpy(), guide.numpy(), values.numpy(), out.view(-1).numpy())
        return out

    def spike_statistics(self, spikes: Tensor, first_step: int, window_start: int, st: dict[str, Tensor]) -> None:
        numba_cpu.spike_statistics(
            spikes.numpy(),
            first_step,
            window_start,
            *(st[k].numpy() for k in ("count", "last", "isi_sum", "isi_sq", "isi_n")),
        )

    def relax_separable(self, proj: Projection, f_pre: Tensor, f_post: Tensor, decay: float) -> bool:
        rule = proj.rule
        numba_cpu.relax_separable(
            proj.weight_mv.numpy(),
            f_pre.to(torch.float32).contiguous().numpy(),
            f_post.to(torch.float32).contiguous().numpy(),
            proj.pre_index_long.numpy(),
            proj.post_index_long.numpy(),
            np.float32(decay),
            np.float32(rule.w_min_mv),
            np.float32(min(rule.w_max_mv, 3e38)),
            np.float32(proj.sign),
        )
        return True
