"""Build objects from config nodes that name their class with ``_target_`` (variants are classes, not strings).

Unlike ``hydra.utils.instantiate`` this keeps our error type: a :class:`ConfigError` raised by a constructor is
re-raised with the node's config path, and unknown or missing parameters are reported with the parameters the
class accepts.

**No config value can run code.** A ``_target_`` must name a subclass of one of the package's extension bases
(:data:`EXTENSION_BASES`: neuron populations, drives, connectivity rules, degree laws, plasticity rules, monitors,
studies; :func:`register_extension_base` adds one, e.g. transfer functions). The name is checked *before* anything
is imported that is not already loaded: modules inside ``torchsnn`` may be imported (the package's own, no side
effects), a user's own module must already be imported (by the script that calls :func:`torchsnn.pipeline.run`)
or be listed in the environment variable ``TORCHSNN_EXTENSIONS`` (comma-separated module names, set by the user,
never by a config file). Anything else (``subprocess.Popen``, ``os.system``, ``builtins.eval``, a function, a
class of another hierarchy) is a :class:`ConfigError` naming the field.
"""

from __future__ import annotations

import importlib
import inspect
import math
import os
import sys
from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from torchsnn.errors import ConfigError

# "module:Class" of every class a _target_ may subclass (resolved lazily: no import cycles)
EXTENSION_BASES: list[str] = [
    "torchsnn.populations.base:NeuronPopulation",
    "torchsnn.populations.drive:ExternalDrive",
    "torchsnn.scaffold.rules:ConnectivityRule",
    "torchsnn.scaffold.degree_laws:DegreeLaw",
    "torchsnn.plasticity.base:PlasticityRule",
    "torchsnn.monitors.base:Monitor",
    "torchsnn.studies.base:Study",
]
PACKAGE = "torchsnn"
MAX_RATE_HZ = 1e6
EXTENSIONS_ENV = "TORCHSNN_EXTENSIONS"


def register_extension_base(cls: type) -> None:
    """Allow ``_target_`` to name subclasses of ``cls`` too (e.g. a transfer-function base class)."""
    spec = f"{cls.__module__}:{cls.__qualname__}"
    if spec not in EXTENSION_BASES:
        EXTENSION_BASES.append(spec)


def extension_bases() -> tuple[type, ...]:
    out = []
    for spec in EXTENSION_BASES:
        module, _, name = spec.partition(":")
        out.append(getattr(importlib.import_module(module), name))
    return tuple(out)


def _allowed_modules() -> list[str]:
    listed = os.environ.get(EXTENSIONS_ENV, "")
    return [PACKAGE, *(m.strip() for m in listed.split(",") if m.strip())]


def _may_import(module: str) -> bool:
    return any(module == top or module.startswith(top + ".") for top in _allowed_modules())


def _find_module(parts: list[str]) -> tuple[Any, int]:
    """The longest dotted prefix of ``parts`` that is a module already loaded or one we may import."""
    for i in range(len(parts) - 1, 0, -1):
        name = ".".join(parts[:i])
        if name in sys.modules:
            return sys.modules[name], i
        if _may_import(name):
            try:
                return importlib.import_module(name), i
            except ModuleNotFoundError as exc:
                if exc.name is not None and not name.startswith(exc.name):  # a real import error inside it
                    raise
    return None, 0


def resolve_target(target: Any, field: str, bases: tuple[type, ...] | None = None) -> type:
    """The class named by ``target`` if it is allowed (see the module docstring), else ConfigError at ``field``."""
    allowed = bases or extension_bases()
    names = ", ".join(b.__name__ for b in allowed)
    example = "e.g. torchsnn.scaffold.GammaDegree"
    if not isinstance(target, str) or not target or not all(p.isidentifier() for p in target.split(".")):
        raise ConfigError(field, target, f"must name a class by its dotted path, {example}")
    parts = target.split(".")
    try:
        module, i = _find_module(parts)
    except Exception as exc:  # an error while importing a torchsnn or listed module
        raise ConfigError(field, target, f"cannot be imported ({type(exc).__name__}: {exc})") from None
    if module is None:
        raise ConfigError(
            field,
            target,
            f"cannot be imported: only classes of torchsnn, of modules already imported or of modules listed in "
            f"${EXTENSIONS_ENV} may be named (subclasses of {names})",
        )
    obj: Any = module
    for name in parts[i:]:
        obj = getattr(obj, name, None)
        if obj is None:
            raise ConfigError(field, target, f"cannot be imported (no {name} in {module.__name__})")
        if not inspect.isclass(obj):
            break
    if not (inspect.isclass(obj) and issubclass(obj, allowed)):
        raise ConfigError(field, target, f"is not allowed: _target_ must name a subclass of {names}")
    return obj


def to_plain(node: Any) -> Any:
    """DictConfig/ListConfig -> plain dicts/lists (resolved); anything else unchanged."""
    if isinstance(node, (DictConfig, ListConfig)):
        return OmegaConf.to_container(node, resolve=True)
    return node


def instantiate(
    node: Mapping[str, Any] | DictConfig, path: str, bases: tuple[type, ...] | None = None, **extra: Any
) -> Any:
    """Instantiate ``node['_target_']`` with the node's other keys (nested ``_target_`` nodes first) and ``extra``.

    ``bases`` narrows the classes allowed at this node (default: every extension base)."""
    spec = dict(to_plain(node))
    cls = resolve_target(spec.pop("_target_", None), f"{path}._target_", bases)
    kwargs = {}
    for key, value in spec.items():
        if isinstance(value, Mapping) and "_target_" in value:
            value = instantiate(value, f"{path}.{key}")
        else:
            check_finite_value(f"{path}.{key}", value)
        kwargs[key] = value
    kwargs.update(extra)
    _check_signature(cls, kwargs, path)
    try:
        obj = cls(**kwargs)
    except ConfigError as err:
        raise err.at(path) from None
    for key, value in spec.items():  # after the constructor's own (more specific) checks
        check_unit_sign(f"{path}.{key}", value)
    return obj


def _numbers(field: str, value: Any) -> list[tuple[str, float]]:
    if isinstance(value, (list, tuple)):
        return [item for j, v in enumerate(value) for item in _numbers(f"{field}[{j}]", v)]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [(field, value)]
    return []


def check_finite_value(field: str, value: Any) -> None:
    """No nan/inf reaches a constructor (+inf only for an upper bound ``*max*``)."""
    for name, x in _numbers(field, value):
        if not math.isfinite(x) and not (x == math.inf and "max" in name.rpartition(".")[2]):
            raise ConfigError(name, x, "must be a finite number")


def check_unit_sign(field: str, value: Any) -> None:
    """Unit suffixes give the range: rates (``_hz``) and times (``_ms``) are >= 0, rates at most
    ``MAX_RATE_HZ``."""
    for name, x in _numbers(field, value):
        if name.endswith(("_hz", "_ms")) and x < 0:
            raise ConfigError(name, x, "must be >= 0 (a rate or a time)")
        if name.endswith("_hz") and x > MAX_RATE_HZ:
            raise ConfigError(name, x, f"must be <= {MAX_RATE_HZ:g} Hz (no neuron or source fires faster)")


def _check_signature(cls: type, kwargs: dict[str, Any], path: str) -> None:
    sig = inspect.signature(cls)
    params = sig.parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    for key in kwargs:
        if key not in accepted:
            raise ConfigError(
                f"{path}.{key}", kwargs[key], f"unknown parameter of {cls.__name__}; accepted: {', '.join(accepted)}"
            )
    for name, p in params.items():
        if (
            p.default is inspect.Parameter.empty
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            and name not in kwargs
        ):
            raise ConfigError(f"{path}.{name}", None, f"is required by {cls.__name__}")
