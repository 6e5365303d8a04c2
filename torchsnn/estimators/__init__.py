"""Rate estimators that plasticity rules read."""

from torchsnn.estimators.trace import RateEstimator

__all__ = ["RateEstimator"]
