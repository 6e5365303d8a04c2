"""Studies made of several runs (``mode=study``): the talk's figures as experiments."""

from torchsnn.studies.alpha_sweep import AlphaSweep
from torchsnn.studies.base import Study
from torchsnn.studies.in_neighbours import InNeighbours
from torchsnn.studies.poisson_surrogate import PoissonSurrogate
from torchsnn.studies.rate_vs_structure import RateVsStructure
from torchsnn.studies.rule_zoo import RuleZoo

__all__ = ["AlphaSweep", "InNeighbours", "PoissonSurrogate", "RateVsStructure", "RuleZoo", "Study"]
