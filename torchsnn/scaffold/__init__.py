"""Binary scaffolds: degree laws, correlated in/out degrees, connectivity rules and the sparse CSR scaffold.

See theory.md §2. Degrees are dimensionless. Wiring runs as torch code on the device of an explicit
``torch.Generator`` (edges.py); degree laws and the copula calibration use numpy/scipy on the host.
"""

from torchsnn.scaffold.configuration_model import ConfigurationModel
from torchsnn.scaffold.copula import (
    calibrate_copula,
    conditional_out_mean,
    copula_pearson,
    reachable_r,
    sample_correlated_degrees,
)
from torchsnn.scaffold.degree_laws import BinomialDegree, DegreeLaw, FixedDegree, PoissonDegree
from torchsnn.scaffold.heavy_tailed import GammaDegree, LognormalDegree, NegativeBinomialDegree
from torchsnn.scaffold.rules import BlockDegreeLaws, ConnectivityRule, FixedInDegree, PairwiseBernoulli, Wiring
from torchsnn.scaffold.scaffold import ScaffoldBlock, SparseScaffold

__all__ = [
    "BinomialDegree",
    "BlockDegreeLaws",
    "ConfigurationModel",
    "ConnectivityRule",
    "DegreeLaw",
    "FixedDegree",
    "FixedInDegree",
    "GammaDegree",
    "LognormalDegree",
    "NegativeBinomialDegree",
    "PairwiseBernoulli",
    "PoissonDegree",
    "ScaffoldBlock",
    "SparseScaffold",
    "Wiring",
    "calibrate_copula",
    "conditional_out_mean",
    "copula_pearson",
    "reachable_r",
    "sample_correlated_degrees",
]
