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


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed from: not a checkpoint, unsafe content, another format or code version,
    a config that does not match, a different network, or overrides given with ``resume=`` (exit code 2)."""


class RunFolderError(RuntimeError):
    """The run folder cannot be used: another run writes to it, or it already holds a run (exit code 2)."""


# exit codes of ``python -m torchsnn.run`` (documented in the README)
EXIT_OK = 0
EXIT_INVALID = 2  # invalid configuration, checkpoint or run folder: nothing was run
EXIT_NO_PREDICTION = 3  # the mean-field solve failed or its fixed point is unstable
EXIT_HEALTH = 4  # a health check stopped the simulation
EXIT_IO = 5  # results could not be written (disk full, read-only folder); what could be written is kept
# 128 + signal number: interrupted (130 for Ctrl-C, 143 for SIGTERM)
