"""Neuron populations and their external drive."""

from torchsnn.populations.base import NeuronPopulation
from torchsnn.populations.drive import ExternalDrive, GaussianDrive, NoDrive, PoissonDrive
from torchsnn.populations.lif import LIFPopulation

__all__ = ["ExternalDrive", "GaussianDrive", "LIFPopulation", "NeuronPopulation", "NoDrive", "PoissonDrive"]
