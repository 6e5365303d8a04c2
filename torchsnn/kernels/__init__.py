"""Compute backends and their kernels. ``select_backend`` chooses one per run (numba CPU, torch reference, Triton
CUDA, torch CUDA reference, see ``torchsnn.kernels.backend``); the kernel modules (numba, Triton) are imported
only when their backend is chosen. Every kernel has a plain-torch reference (``torchsnn.delivery``,
``NeuronPopulation.reference_block``) that it must match exactly (tests/kernels)."""

from torchsnn.kernels.backend import (
    NUMBA_AVAILABLE,
    TRITON_AVAILABLE,
    Backend,
    cpu_kernels_enabled,
    default_backend,
    select_backend,
    set_cpu_kernels,
)

__all__ = [
    "NUMBA_AVAILABLE",
    "TRITON_AVAILABLE",
    "Backend",
    "cpu_kernels_enabled",
    "default_backend",
    "select_backend",
    "set_cpu_kernels",
]
