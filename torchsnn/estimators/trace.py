"""Spike-trace rate estimator (theory §3)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from torchsnn.validation import check_non_negative, check_positive


class RateEstimator(nn.Module):
    r"""Each neuron carries a trace x that jumps by 1 at each spike and decays at the degradation rate r_p:

        dx/dt = -r_p x + sum_k delta(t - t^k),        nu_hat = r_p x     [Hz]

    Clock-driven: ``x <- x exp(-r_p dt) + spikes`` each step. For a stationary Poisson train at rate nu,
    E[nu_hat] = nu and Var[x] = alpha / 2 with alpha = nu / r_p, so nu_hat has relative error ~ 1 / sqrt(2 alpha).

    Args:
        size: number of neurons.
        r_p_hz: degradation rate: one value, or one per replica (replicas then probe several alphas in one run).
        dt_ms: time step.
        init_rate_hz: initial estimate (the trace starts at init_rate_hz / r_p).
    """

    def __init__(self, size: int, r_p_hz: float | Sequence[float], dt_ms: float, init_rate_hz: float = 0.0) -> None:
        super().__init__()
        self.size = int(size)
        values = list(r_p_hz) if isinstance(r_p_hz, Sequence) else [r_p_hz]
        for i, v in enumerate(values):
            check_positive("r_p_hz" if len(values) == 1 else f"r_p_hz[{i}]", v)
        self.dt_ms = check_positive("dt_ms", dt_ms)
        self.init_rate_hz = check_non_negative("init_rate_hz", init_rate_hz)
        # (R, 1) with R = 1 or one row per replica; float64 so that decay**M stays exact enough over long runs
        self.register_buffer("r_p_hz", torch.tensor(values, dtype=torch.float64).view(-1, 1))
        self.register_buffer("trace", torch.zeros(1, self.size, dtype=torch.float64))  # decays ~ 1 - 1e-6 per step

    @property
    def per_replica(self) -> bool:
        return self.r_p_hz.shape[0] > 1

    def _decay(self) -> Tensor:
        return torch.exp(-self.r_p_hz * self.dt_ms * 1e-3)

    def reset_state(self, batch: int, init_rate_hz: Tensor | float | None = None) -> None:
        if self.per_replica and self.r_p_hz.shape[0] != batch:
            raise ValueError(
                f"r_p_hz has {self.r_p_hz.shape[0]} values (one per replica) but there are {batch} replicas"
            )
        rate = self.init_rate_hz if init_rate_hz is None else init_rate_hz
        x0 = torch.as_tensor(rate, dtype=torch.float64, device=self.trace.device) / self.r_p_hz
        self.trace = x0.expand(batch, self.size).clone()

    def step(self, spikes: Tensor) -> None:
        """Decay the trace over one step and add this step's spikes (B, N)."""
        self.trace.mul_(self._decay()).add_(spikes.to(self.trace.dtype))

    def update_block(self, spikes: Tensor) -> None:
        """The same for a block of steps (M, B, N): x <- d^M x + sum_s d^(M-1-s) spikes[s]."""
        m = spikes.shape[0]
        powers = torch.arange(m - 1, -1, -1, dtype=torch.float64, device=spikes.device)
        weights = self._decay() ** powers  # (R, M)
        pattern = "bm,mbn->bn" if self.per_replica else "rm,mbn->bn"
        self.trace.mul_(self._decay() ** m).add_(torch.einsum(pattern, weights, spikes.to(self.trace.dtype)))

    def rate_hz(self) -> Tensor:
        """Current estimate nu_hat = r_p x (B, N), float32 (the traces themselves are float64)."""
        return (self.trace * self.r_p_hz).float()
