"""From config to objects: validation and the one builder."""

from torchsnn.config.builder import BuiltRun, build_network, build_scaffold, resolve_device
from torchsnn.config.validate import validate_run_config

__all__ = ["BuiltRun", "build_network", "build_scaffold", "resolve_device", "validate_run_config"]
