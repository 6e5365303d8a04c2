"""Compiled kernels for the hot loops. The CPU kernels use numba; every kernel has a plain-torch reference
(``torchsnn.delivery``, ``NeuronPopulation.run_block``) that it must match exactly (tests/kernels)."""

from torchsnn.kernels.numba_cpu import NUMBA_AVAILABLE, cpu_kernels_enabled, set_cpu_kernels

__all__ = ["NUMBA_AVAILABLE", "cpu_kernels_enabled", "set_cpu_kernels"]
