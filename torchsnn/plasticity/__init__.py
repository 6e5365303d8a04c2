"""Plasticity rules: one definition serves the simulator (drift) and the mean-field solver (steady state)."""

from torchsnn.plasticity.base import PlasticityRule, RelaxationRule, stable_root
from torchsnn.plasticity.rules import CovarianceRule, HomeostaticPreRule, SaturatingPreRule, SeparablePrePostRule

__all__ = [
    "CovarianceRule",
    "HomeostaticPreRule",
    "PlasticityRule",
    "RelaxationRule",
    "SaturatingPreRule",
    "SeparablePrePostRule",
    "stable_root",
]
