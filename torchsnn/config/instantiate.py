"""Build objects from config nodes that name their class with ``_target_`` (variants are classes, not strings).

Unlike ``hydra.utils.instantiate`` this keeps our error type: a :class:`ConfigError` raised by a constructor is
re-raised with the node's config path, and unknown or missing parameters are reported with the parameters the
class accepts.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from hydra.utils import get_class
from omegaconf import DictConfig, ListConfig, OmegaConf

from torchsnn.errors import ConfigError


def to_plain(node: Any) -> Any:
    """DictConfig/ListConfig -> plain dicts/lists (resolved); anything else unchanged."""
    if isinstance(node, (DictConfig, ListConfig)):
        return OmegaConf.to_container(node, resolve=True)
    return node


def instantiate(node: Mapping[str, Any] | DictConfig, path: str, **extra: Any) -> Any:
    """Instantiate ``node['_target_']`` with the node's other keys (nested ``_target_`` nodes first) and ``extra``."""
    spec = dict(to_plain(node))
    target = spec.pop("_target_", None)
    if not isinstance(target, str):
        raise ConfigError(f"{path}._target_", target, "must name a class, e.g. torchsnn.scaffold.GammaDegree")
    try:
        cls = get_class(target)
    except Exception as exc:  # hydra raises ImportError / ValueError variants
        raise ConfigError(f"{path}._target_", target, f"cannot be imported ({exc})") from None
    kwargs = {}
    for key, value in spec.items():
        if isinstance(value, Mapping) and "_target_" in value:
            value = instantiate(value, f"{path}.{key}")
        kwargs[key] = value
    kwargs.update(extra)
    _check_signature(cls, kwargs, path)
    try:
        return cls(**kwargs)
    except ConfigError as err:
        raise err.at(path) from None


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
