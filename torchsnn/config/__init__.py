"""From config to objects: validation and the one builder.

The names below are imported on first use (PEP 562), so that ``import torchsnn`` (which registers the config
schemas, ``torchsnn.config.schema``) does not load the simulator, numba or scipy.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["BuiltRun", "build_network", "build_scaffold", "resolve_device", "validate_run_config"]
_HOME = {
    "BuiltRun": "builder",
    "build_network": "builder",
    "build_scaffold": "builder",
    "resolve_device": "builder",
    "validate_run_config": "validate",
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(f"torchsnn.config.{_HOME[name]}"), name)
    raise AttributeError(f"module 'torchsnn.config' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
