"""Everything that can be checked about a run config before any work: ranges (``validate_run_config``), then every
``_target_`` built once (allow-listed classes, their parameters, connectivity rules against the block sizes), so
that an invalid value fails in every mode (theory included) with its config path, before a scaffold is wired, a
theory solved or a folder written."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torchsnn.config.builder import build_plasticity_rule, build_populations, build_rules, validate_rules
from torchsnn.config.instantiate import resolve_target
from torchsnn.config.validate import validate_run_config


def preflight(cfg: Mapping[str, Any]) -> None:
    """Raise :class:`~torchsnn.errors.ConfigError` for the first invalid entry of ``cfg`` (a plain, resolved run
    config); builds only small objects (neuron and drive modules, rules, the plasticity rule), wires nothing."""
    validate_run_config(cfg)
    if cfg.get("mode") == "study":
        from torchsnn.studies.base import Study

        resolve_target((cfg.get("study") or {}).get("_target_"), "study._target_", (Study,))
    build_populations(cfg)
    validate_rules(cfg, build_rules(cfg))
    build_plasticity_rule(cfg)
