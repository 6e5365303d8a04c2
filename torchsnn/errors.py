"""Errors that say what to do.

Every invalid input raises :class:`ConfigError`, which names the field (as a dotted config path where known),
the offending value and what is allowed. Builders catch it and prefix the path of the enclosing config node with
:meth:`ConfigError.at`, so a user sees e.g. ``network.projections.EE.delay_ms = 0.05: must be >= dt_ms (0.1)``.
"""

from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """An invalid parameter: ``field`` (dotted path), ``value`` and the ``allowed`` range or rule."""

    def __init__(self, field: str, value: Any, allowed: str) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(f"{field} = {value!r}: {allowed}")

    def at(self, prefix: str) -> ConfigError:
        """The same error with ``prefix`` prepended to the field path."""
        field = f"{prefix}.{self.field}" if self.field else prefix
        return ConfigError(field, self.value, self.allowed)


class SolverError(RuntimeError):
    """A mean-field solve that did not converge (or converged to an unstable fixed point).

    Carries the diagnostics so that no caller can mistake the state for a valid prediction.
    """

    def __init__(self, message: str, diagnostics: dict[str, Any]) -> None:
        self.diagnostics = diagnostics
        detail = ", ".join(f"{k}={v}" for k, v in diagnostics.items())
        super().__init__(f"{message} ({detail})")


class SimulationAbortedError(RuntimeError):
    """A simulation stopped by a health check (runaway activity, non-finite state, weights out of bounds)."""

    def __init__(self, diagnosis: str, step: int, time_ms: float) -> None:
        self.diagnosis = diagnosis
        self.step = step
        self.time_ms = time_ms
        super().__init__(f"simulation stopped at t = {time_ms:.1f} ms (step {step}): {diagnosis}")
