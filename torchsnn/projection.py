"""A projection: the synapses post <- pre on one scaffold block, with their weights, delay and plasticity."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor, nn

from torchsnn.kernels.backend import Backend, default_backend
from torchsnn.plasticity.base import RelaxationRule
from torchsnn.validation import check_non_negative, require

if TYPE_CHECKING:
    from torchsnn.plasticity import PlasticityRule
    from torchsnn.scaffold import ScaffoldBlock

WEIGHT_LAYOUTS = ("homogeneous", "per_edge", "per_row")


class Projection(nn.Module):
    """Synapses of block post <- pre.

    The weight of an edge is the jump (mV) its spike causes in the post neuron: ``sign(pre) * |w|`` (Dale's law:
    the sign belongs to the presynaptic population). ``weight_mv`` holds the signed weights in one of three layouts:

    * ``homogeneous`` — one number (static weights);
    * ``per_edge`` — (B, E), one weight per edge and replica (plastic rules in general);
    * ``per_row`` — (B, N_pre), one weight per presynaptic neuron: exact for pre-only rules when the initial
      weights are equal along each presynaptic row (every edge of a row then sees the same history), and O(N)
      instead of O(E) per plasticity update.

    Args:
        name: projection name (config key).
        block: the scaffold block (CSR by presynaptic neuron).
        weight_mv: magnitude |w| of the (initial) weight (mV).
        sign: +1 (excitatory pre population) or -1.
        delay_ms: transmission delay D, at least one time step.
        dt_ms: time step.
        rule: plasticity rule or None for static weights.
    """

    def __init__(
        self,
        name: str,
        block: ScaffoldBlock,
        weight_mv: float,
        sign: float,
        delay_ms: float,
        dt_ms: float,
        rule: PlasticityRule | None = None,
    ) -> None:
        super().__init__()
        self.name = name
        self.pre, self.post = block.pre, block.post
        self.n_pre, self.n_post = block.n_pre, block.n_post
        self.weight_magnitude_mv = check_non_negative("weight_mv", weight_mv)
        require(sign in (1.0, -1.0), "sign", sign, "must be +1 or -1")
        self.sign = float(sign)
        require(delay_ms >= dt_ms * (1 - 1e-9), "delay_ms", delay_ms, f"must be >= dt_ms ({dt_ms})")
        self.delay_ms = float(delay_ms)
        self.delay_steps = max(1, round(delay_ms / dt_ms))
        require(
            abs(self.delay_steps * dt_ms - delay_ms) <= 1e-6 * dt_ms,
            "delay_ms",
            delay_ms,
            f"must be a whole number of time steps (dt_ms = {dt_ms})",
        )
        self.rule = rule
        self.layout = "homogeneous"
        self.register_buffer("row_ptr", block.row_ptr.to(torch.int64))
        self.register_buffer("post_index", block.post_index.to(torch.int32))
        self.register_buffer("weight_mv", torch.tensor(self.sign * self.weight_magnitude_mv))
        if rule is not None:
            counts = self.row_ptr[1:] - self.row_ptr[:-1]
            rows = torch.arange(self.n_pre, device=counts.device)  # the scaffold may be wired on the device
            self.register_buffer("pre_index_long", torch.repeat_interleave(rows, counts))
            self.register_buffer("post_index_long", self.post_index.long())

    @property
    def n_edges(self) -> int:
        return int(self.post_index.numel())

    @property
    def plastic(self) -> bool:
        return self.rule is not None

    def pre_index(self) -> Tensor:
        """Presynaptic (row) index of every edge, (E,) int64."""
        if self.plastic:
            return self.pre_index_long
        counts = self.row_ptr[1:] - self.row_ptr[:-1]
        return torch.repeat_interleave(torch.arange(self.n_pre, device=self.row_ptr.device), counts)

    def out_degree(self) -> Tensor:
        return self.row_ptr[1:] - self.row_ptr[:-1]

    # ------------------------------------------------------------------ weights
    def reset_weights(self, batch: int, initial_mv: Tensor | None = None) -> None:
        """Plastic projections: (B, ·) magnitudes from ``initial_mv`` — (N_pre,) or (B, N_pre) per presynaptic
        neuron (``per_row`` layout for pre-only rules, else expanded to edges), (E,) or (B, E) per edge — or the
        constant |w|."""
        if not self.plastic:
            return
        device = self.row_ptr.device
        if initial_mv is None:
            initial_mv = torch.full((self.n_pre,), self.weight_magnitude_mv)
        w = torch.as_tensor(initial_mv, dtype=torch.float32, device=device)
        per_row_given = w.shape[-1] == self.n_pre and (self.n_pre != self.n_edges or w.dim() == 1)
        if per_row_given and self.rule.pre_only:
            self.layout = "per_row"
            w = w.expand(batch, self.n_pre)
        else:
            self.layout = "per_edge"
            w = w[..., self.pre_index_long] if per_row_given else w
            w = w.expand(batch, self.n_edges)
        self.weight_mv = self.rule.clip(w.clone()) * self.sign

    def edge_weights_mv(self) -> Tensor:
        """Signed weights per edge: (B, E) for plastic projections, (E,) for static ones."""
        if self.layout == "per_row":
            return self.weight_mv[:, self.pre_index_long]
        if self.layout == "per_edge":
            return self.weight_mv
        return self.weight_mv.expand(self.n_edges)

    @torch.no_grad()
    def apply_plasticity(
        self, nu_pre_hz: Tensor, nu_post_hz: Tensor, elapsed_ms: float, backend: Backend | None = None
    ) -> None:
        """Move the weights by the rule over ``elapsed_ms`` at the current rate estimates (B, N_pre), (B, N_post).
        The weights are updated in place (their storage stays, as CUDA graphs of delivery need)."""
        backend = backend if backend is not None else default_backend(self.weight_mv)
        if self._relax_separable_kernel(nu_pre_hz, nu_post_hz, elapsed_ms, backend):
            return
        magnitude = self.weight_mv * self.sign
        if self.layout == "per_row":
            new = self.rule.update(magnitude, nu_pre_hz, torch.zeros_like(nu_pre_hz), elapsed_ms)
        else:
            new = self.rule.update(
                magnitude, nu_pre_hz[:, self.pre_index_long], nu_post_hz[:, self.post_index_long], elapsed_ms
            )
        self.weight_mv.copy_(new * self.sign)

    def _relax_separable_kernel(
        self, nu_pre_hz: Tensor, nu_post_hz: Tensor, elapsed_ms: float, backend: Backend
    ) -> bool:
        """Fast path for separable relaxation rules on per-edge weights: the factors are computed per neuron
        (O(N)), the exact relaxation of the E edges runs in one compiled loop where the backend has one (same
        arithmetic as the rule's ``update`` up to float rounding)."""
        exact = isinstance(self.rule, RelaxationRule) and type(self.rule).update is RelaxationRule.update
        factors = self.rule.factors() if exact else None
        if factors is None or self.layout != "per_edge":
            return False
        decay = float(np.float32(np.exp(-elapsed_ms / self.rule.tau_w_ms)))
        return backend.relax_separable(self, factors[0](nu_pre_hz), factors[1](nu_post_hz), decay)

    # ------------------------------------------------------------------ delivery
    def deliver(self, spikes: Tensor, ring: Tensor, block_start_step: int, backend: Backend | None = None) -> None:
        """Add the block's spikes of the pre population (M, B, N_pre) into the post ring buffer: spikes of step s
        reach slot (block_start_step + s + D) mod R (``backend``: default the device's ``auto``; every backend
        gives the reference's input)."""
        backend = backend if backend is not None else default_backend(ring)
        backend.deliver(self, spikes, ring, block_start_step + self.delay_steps)

    def extra_repr(self) -> str:
        kind = f"plastic ({type(self.rule).__name__}, {self.layout})" if self.plastic else "static"
        return (
            f"{self.name}: {self.post} <- {self.pre}, E={self.n_edges}, |w|={self.weight_magnitude_mv} mV, "
            f"sign {self.sign:+.0f}, D={self.delay_ms} ms, {kind}"
        )
