"""How a bad input is reported on the command line: one line, the key the user typed, the value, what is allowed.

Two helpers for ``torchsnn.run``:

- :func:`interpolation_sources` maps a config path whose value is a plain interpolation (``r: ${scaffold.r}``) to
  the key it comes from, so that ``scaffold.r=2`` is reported as ``scaffold.r`` (where the user can change it), not
  as ``network.projections.EE.connectivity.r``.
- :func:`describe_hydra_error` turns Hydra's / OmegaConf's own composition errors (a value of the wrong type, an
  unknown key, a missing config file, an override that does not parse) into the same ``field = value: allowed``
  line as every :class:`~torchsnn.errors.ConfigError`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import Any

from omegaconf import DictConfig, OmegaConf

from torchsnn.config.schema import SCHEMAS, PopulationSchema, ProjectionSchema
from torchsnn.errors import ConfigError

_INTERPOLATION = re.compile(r"^\$\{([A-Za-z_][\w.]*)\}$")


def interpolation_sources(cfg: DictConfig) -> dict[str, str]:
    """Dotted path -> the dotted key it interpolates, for every value that is exactly ``${key}`` (followed
    through chains)."""
    out: dict[str, str] = {}

    def walk(node: Any, prefix: str) -> None:
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in items:
            path = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, (dict, list)):
                walk(value, path)
            elif isinstance(value, str) and (m := _INTERPOLATION.match(value.strip())):
                out[path] = m.group(1)

    walk(OmegaConf.to_container(cfg, resolve=False), "")
    for path, source in list(out.items()):
        seen = {path}
        while source in out and source not in seen:
            seen.add(source)
            source = out[source]
        out[path] = source
    return out


def user_facing(
    err: ConfigError, sources: dict[str, str], cfg: Any = None, overrides: Sequence[str] = ()
) -> ConfigError:
    """The error with its field replaced by the key the value came from (the original path kept in the text):
    an interpolation's source, or the global ``neuron`` / ``drive`` group a population inherits from. A field that
    holds several interpolated values (a degree law ``{_target_: ${scaffold.law}, cv: ${scaffold.cv}}``) is
    reported as the one of those keys the command line set (``overrides``), else with the keys named."""
    field = err.field
    for path, source in sources.items():
        if field == path or field.startswith(path + "."):
            new = source + field[len(path) :]
            return ConfigError(new, err.value, f"{err.allowed} (used as {field})")
    inside = list(dict.fromkeys(source for path, source in sources.items() if path.startswith(field + ".")))
    if inside:
        typed = {item.lstrip("+~").partition("=")[0] for item in overrides}
        chosen = [source for source in inside if source in typed]
        if chosen:
            value: Any = cfg
            for part in chosen[0].split("."):
                value = value.get(part) if isinstance(value, dict) else None
            value = _override_value(chosen[0], overrides) if value is None else value
            return ConfigError(chosen[0], value, f"{err.allowed} (used in {field} = {err.value!r})")
        return ConfigError(field, err.value, f"{err.allowed} (this value is set by {', '.join(inside)})")
    m = re.match(r"^network\.populations\.([^.]+)\.(neuron|drive)\.(.+)$", field)
    if m and isinstance(cfg, dict):
        name, group, key = m.groups()
        own = ((cfg.get("network") or {}).get("populations") or {}).get(name) or {}
        own_group = own.get(group) if isinstance(own, dict) else None
        own_keys = own_group if isinstance(own_group, dict) else {}
        if isinstance(cfg.get(group), dict) and "_target_" not in own_keys and key.split(".")[0] not in own_keys:
            return ConfigError(f"{group}.{key}", err.value, f"{err.allowed} (used as {field})")
    return err


def accepted_keys(full_key: str) -> list[str]:
    """The keys the schema accepts next to ``full_key`` (empty when unknown)."""
    parts = full_key.split(".")
    schema: Any = SCHEMAS.get(parts[0])
    if parts[0] == "network" and len(parts) >= 4:
        schema = {"populations": PopulationSchema, "projections": ProjectionSchema}.get(parts[1])
    elif len(parts) > 2:
        schema = None
    if schema is None:
        return []
    return [f.name for f in dataclasses.fields(schema)]


def _override_value(key: str, overrides: Sequence[str]) -> str | None:
    for item in overrides:
        name, sep, value = item.lstrip("+~").partition("=")
        if sep and name == key:
            return value
    return None


def describe_hydra_error(exc: BaseException, overrides: Sequence[str]) -> ConfigError:
    """A Hydra/OmegaConf composition error as a ConfigError (field, value, what is allowed)."""
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

    cause = exc if isinstance(exc, OmegaConfBaseException) else exc.__cause__
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(cause, OmegaConfBaseException) and getattr(cause, "full_key", None):
        key = str(cause.full_key)
        value = _override_value(key, overrides)
        msg = str(getattr(cause, "msg", None) or cause).strip().splitlines()[0]
        if isinstance(cause, (ConfigAttributeError, ConfigKeyError)):
            accepted = accepted_keys(key)
            allowed = "unknown key" + (f"; accepted here: {', '.join(accepted)}" if accepted else f" ({msg})")
            return ConfigError(key, value, allowed)
        return ConfigError(key, value, msg)
    if getattr(exc, "missing_cfg_file", None):  # hydra.errors.MissingConfigException: group=<no such file>
        group, _, name = str(exc.missing_cfg_file).rpartition("/")
        options = [o for o in (getattr(exc, "options", None) or []) if not o.startswith("base_")]
        allowed = f"no such config in conf/{group}/" + (f"; available: {', '.join(options)}" if options else "")
        return ConfigError(group or "config", name, allowed)
    if getattr(exc, "override", None):  # hydra.errors.OverrideParseException
        key, _, value = str(exc.override).lstrip("+~").partition("=")
        return ConfigError(key, value, f"the override does not parse ({text})")
    for item in overrides:  # the first override the message names
        key, _, value = item.lstrip("+~").partition("=")
        if key and re.search(rf"\b{re.escape(key)}\b", text):
            return ConfigError(key, value, text)
    return ConfigError("overrides", " ".join(overrides), text)
