"""Hydra's own instantiations are checked before Hydra uses them: no config file or override runs code.

Hydra builds objects from the composed config *before* the task function (and so :mod:`torchsnn.config.preflight`)
runs: ``hydra.callbacks.*`` (any ``_target_``), the launcher and the sweeper (``hydra.launcher`` /
``hydra.sweeper``, with nested ``_target_`` nodes instantiated recursively), and the logging configuration
(``hydra.job_logging`` / ``hydra.hydra_logging`` go to :func:`logging.config.dictConfig`, whose ``class`` and ``()``
keys name any callable and whose ``ext://`` values import any module). ``hydra.job.env_set`` sets environment
variables (``TORCHSNN_EXTENSIONS`` among them) before the task. A shared experiment file (``# @package _global_``)
can set all of these.

:func:`install` wraps Hydra's config loader so that every config Hydra composes (a run, the primary config of a
multirun and each job's config, also in joblib or submitit worker processes, which import this package to unpickle
the task function) passes :func:`check_hydra_config` before Hydra configures logging, builds a callback, a launcher
or a sweeper. The rules:

- ``hydra.callbacks`` must be empty;
- ``hydra.launcher._target_`` / ``hydra.sweeper._target_`` are Hydra's own basic classes or the joblib / submitit
  launchers (:data:`ALLOWED_PLUGINS`), and no other ``_target_`` appears anywhere under ``hydra``;
- in the logging configs, ``class`` / ``()`` name only :data:`LOGGING_CLASSES`, ``ext://`` only ``sys.stdout`` /
  ``sys.stderr``, and a ``filename`` is a file directly in the run folder (``${hydra.runtime.output_dir}/...``);
- ``hydra.job.env_set`` sets only :data:`ENV_ALLOWED` (thread counts, visible GPUs);
- ``hydra.launcher.setup`` (shell lines of the SLURM script) only when given on the command line itself;
- ``hydra.output_subdir`` and ``hydra.job.name`` stay inside the run folder.

Anything else is a :class:`~torchsnn.errors.ConfigError` naming the field (exit 2 from ``python -m torchsnn.run``).
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

from omegaconf import DictConfig, ListConfig

from torchsnn.errors import ConfigError

ALLOWED_PLUGINS: dict[str, frozenset[str]] = {
    "launcher": frozenset(
        {
            "hydra._internal.core_plugins.basic_launcher.BasicLauncher",
            "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher",
            "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher",
            "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher",
        }
    ),
    "sweeper": frozenset({"hydra._internal.core_plugins.basic_sweeper.BasicSweeper"}),
}
LOGGING_CLASSES = frozenset(
    {"logging.StreamHandler", "logging.FileHandler", "logging.NullHandler", "logging.Formatter"}
    | {"colorlog.ColoredFormatter"}  # hydra-colorlog's formatter
)
EXT_ALLOWED = frozenset({"ext://sys.stdout", "ext://sys.stderr"})
ENV_ALLOWED = frozenset(
    {"OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS", "CUDA_VISIBLE_DEVICES"}
)
OUTPUT_DIR_REFS = ("${hydra.runtime.output_dir}/", "${hydra:runtime.output_dir}/")
JOB_NAME_REFS = ("${hydra.job.name}", "${hydra:job.name}")
_UNRESOLVED = object()


class HydraConfigError(ConfigError):
    """A ConfigError that survives pickling (raised in a joblib / submitit worker, re-raised in the parent)."""

    def __reduce__(self) -> tuple:
        return (type(self), (self.field, self.value, self.allowed))


def _entries(node: Any) -> list[tuple[str, Any, Any]]:
    """(key, resolved value or _UNRESOLVED, raw value) of a DictConfig / ListConfig node."""
    keys = list(node.keys()) if isinstance(node, DictConfig) else list(range(len(node)))
    out = []
    for key in keys:
        child = node._get_node(key)
        raw = child._value() if child is not None else None
        try:
            value = node[key]
        except Exception:  # an interpolation that only resolves later (hydra.runtime.*), a missing value
            value = _UNRESOLVED
        out.append((str(key), value, raw))
    return out


def _walk(node: Any, path: str, visit) -> None:
    for key, value, raw in _entries(node):
        field = f"{path}.{key}" if isinstance(node, DictConfig) else f"{path}[{key}]"
        visit(field, key, value, raw)
        if isinstance(value, (DictConfig, ListConfig)):
            _walk(value, field, visit)


def _refuse(field: str, value: Any, allowed: str) -> None:
    raise HydraConfigError(field, value, allowed)


def _no_target(field: str, key: str, value: Any, raw: Any) -> None:
    if key == "_target_":
        _refuse(field, raw if value is _UNRESOLVED else value, "no _target_ is allowed here (Hydra would build it)")


def _check_plugin(hydra: DictConfig, kind: str) -> None:
    node = hydra.get(kind) if kind in hydra else None
    if node is None:
        return
    field = f"hydra.{kind}._target_"
    allowed = sorted(ALLOWED_PLUGINS[kind])
    try:
        target = node.get("_target_")
    except Exception:
        target = _UNRESOLVED
    if target not in ALLOWED_PLUGINS[kind]:
        _refuse(
            field,
            node._get_node("_target_")._value() if target is _UNRESOLVED else target,
            f"must be one of {', '.join(allowed)}",
        )
    for key, value, raw in _entries(node):
        if key != "_target_":
            _no_target(f"hydra.{kind}.{key}", key, value, raw)
            if isinstance(value, (DictConfig, ListConfig)):
                _walk(value, f"hydra.{kind}.{key}", _no_target)


def _check_logging(field: str, key: str, value: Any, raw: Any) -> None:
    shown = raw if value is _UNRESOLVED else value
    if key in ("class", "()"):
        if value not in LOGGING_CLASSES:
            _refuse(field, shown, f"must be one of {', '.join(sorted(LOGGING_CLASSES))} (logging runs what it names)")
    elif key == "_target_":
        _no_target(field, key, value, raw)
    for text in (value, raw):
        if isinstance(text, str) and "ext://" in text and text not in EXT_ALLOWED:
            _refuse(field, shown, f"ext:// may only name {', '.join(sorted(EXT_ALLOWED))} (it imports what it names)")
    if key == "filename":
        rest = next((raw[len(p) :] for p in OUTPUT_DIR_REFS if isinstance(raw, str) and raw.startswith(p)), None)
        for ref in JOB_NAME_REFS:
            rest = rest.replace(ref, "job") if rest is not None else None
        if rest is None or not rest or "/" in rest or ".." in rest or "${" in rest or "\\" in rest:
            _refuse(field, raw, "a log file must lie directly in the run folder: ${hydra.runtime.output_dir}/<name>")


def _plain_name(hydra: DictConfig, key: str, field: str, optional: bool) -> None:
    try:
        value = hydra.job.name if key == "job.name" else hydra.get(key)
    except Exception:
        return  # not resolvable yet: Hydra sets it itself
    if value is None and optional:
        return
    if not isinstance(value, str) or not value or "/" in value or "\\" in value or ".." in value:
        _refuse(field, value, "must be a plain name inside the run folder (no '/', no '..')")


def _override_keys(overrides: list[str] | None) -> set[str]:
    return {o.lstrip("+~").partition("=")[0] for o in overrides or []}


def check_hydra_config(cfg: DictConfig, overrides: list[str] | None = None) -> None:
    """Raise :class:`HydraConfigError` for the first entry of ``cfg.hydra`` that would let Hydra run code (see
    the module docstring); ``overrides``: the command line's, which alone may set ``hydra.launcher.setup``."""
    hydra = cfg.get("hydra") if isinstance(cfg, DictConfig) and "hydra" in cfg else None
    if hydra is None:
        return
    callbacks = hydra.get("callbacks") if "callbacks" in hydra else None
    for name in callbacks or {}:
        _refuse(
            f"hydra.callbacks.{name}",
            dict(callbacks[name] or {}).get("_target_"),
            "Hydra callbacks are not allowed in a torchsnn config (they run code before any check)",
        )
    for kind in ALLOWED_PLUGINS:
        _check_plugin(hydra, kind)
    for name in ("job_logging", "hydra_logging"):
        if name in hydra and isinstance(hydra.get(name), DictConfig):
            _walk(hydra[name], f"hydra.{name}", _check_logging)
    env = hydra.job.get("env_set") if "job" in hydra and "env_set" in hydra.job else None
    for var in env or {}:
        if var not in ENV_ALLOWED:
            _refuse(
                f"hydra.job.env_set.{var}", env[var], f"only {', '.join(sorted(ENV_ALLOWED))} may be set by a config"
            )
    launcher = hydra.get("launcher") if "launcher" in hydra else None
    if (
        isinstance(launcher, DictConfig)
        and launcher.get("setup")
        and "hydra.launcher.setup" not in _override_keys(overrides)
    ):
        _refuse(
            "hydra.launcher.setup",
            list(launcher.setup),
            "shell lines for the job script may only be given on the command line",
        )
    _plain_name(hydra, "output_subdir", "hydra.output_subdir", optional=True)
    _plain_name(hydra, "job.name", "hydra.job.name", optional=False)
    for key, value, raw in _entries(hydra):
        if key not in ("callbacks", "launcher", "sweeper", "job_logging", "hydra_logging"):
            _no_target(f"hydra.{key}", key, value, raw)
            if isinstance(value, (DictConfig, ListConfig)):
                _walk(value, f"hydra.{key}", _no_target)


def install() -> None:
    """Check every config Hydra's loader composes (idempotent). Fails closed: a Hydra without the loader we wrap
    raises ImportError instead of running unchecked."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    original = ConfigLoaderImpl.load_configuration
    if getattr(original, "_torchsnn_guard", False):
        return
    signature = inspect.signature(original)

    @functools.wraps(original)
    def load_configuration(*args: Any, **kwargs: Any) -> DictConfig:
        cfg = original(*args, **kwargs)
        check_hydra_config(cfg, signature.bind(*args, **kwargs).arguments.get("overrides"))
        return cfg

    load_configuration._torchsnn_guard = True  # type: ignore[attr-defined]
    ConfigLoaderImpl.load_configuration = load_configuration  # type: ignore[method-assign]
