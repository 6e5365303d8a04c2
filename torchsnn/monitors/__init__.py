"""Monitors accumulate on the device during a run and hand results to the CPU at the end."""

from torchsnn.monitors.base import Monitor
from torchsnn.monitors.spikes import PopulationRateMonitor, RasterMonitor, SpikeStatsMonitor
from torchsnn.monitors.voltage import SynchronyMonitor

__all__ = ["Monitor", "PopulationRateMonitor", "RasterMonitor", "SpikeStatsMonitor", "SynchronyMonitor"]
