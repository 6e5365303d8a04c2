"""The fixed-point ring of the CUDA backends: ``FIXED_POINT_SCALE`` integer units per mV in an int64 ring.

Integer atomic additions are associative, so the delivered input, hence every spike, is the same from run to run
whatever order the GPU's atomics take (float atomics are not). Both CUDA backends (Triton and the torch
reference) use this ring, so they have the same semantics; the CPU backends keep a float32 ring.
"""

from __future__ import annotations

import torch

FIXED_POINT_BITS = 32
FIXED_POINT_SCALE = float(2**FIXED_POINT_BITS)  # ring units per mV: resolution 2.3e-10 mV, range +-2e9 mV


def to_fixed_point(weight_mv: torch.Tensor) -> torch.Tensor:
    """Signed float32 weights (mV) as int64 ring units, exactly as the kernels convert them (x 2^32, truncated)."""
    return (weight_mv.to(torch.float32) * FIXED_POINT_SCALE).to(torch.int64)


def from_fixed_point(units: torch.Tensor) -> torch.Tensor:
    """Ring units -> float32 mV, exactly as the LIF kernels read them."""
    return units.to(torch.float32) * (1.0 / FIXED_POINT_SCALE)
