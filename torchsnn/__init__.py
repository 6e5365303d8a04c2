"""torchsnn: firing-rate distributions of plastic spiking networks, predicted and simulated.

Units are carried in names everywhere (code and YAML): time in milliseconds (``_ms``), voltage in millivolts
(``_mv``), rates in hertz (``_hz``). Names without a unit suffix are dimensionless. The mean-field formulas of
``theory.md`` use seconds for time constants where they multiply rates (``tau_m_s = tau_m_ms / 1000``).
"""

__version__ = "0.1.0"

from torchsnn.config import schema as _schema  # noqa: F401  (registers the config schemas with Hydra)
