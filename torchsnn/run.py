"""Hydra entry point: ``python -m torchsnn.run +experiment=NAME [key=value ...]``.

``mode=compare`` (default) simulates the network, solves the mean-field theory of the same network and compares
them; ``mode=simulate`` and ``mode=theory`` do one half. The run folder (``hydra.run.dir``) receives the composed
config (``.hydra/`` and ``config.yaml``), ``summary.json``, ``status.json``, ``neurons.csv``, figures and
``tensorboard/``.

Exit codes: 0 done; 2 invalid input (configuration, checkpoint or run folder: nothing was run); 3 no valid
prediction (solver failed or unstable); 4 stopped by a health check; 5 results could not all be written;
128 + signal when interrupted (130 Ctrl-C, 143 SIGTERM).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from torchsnn.config.hydra_guard import install as _install_hydra_guard
from torchsnn.errors import CheckpointError, ConfigError, RunFolderError, SolverError

_install_hydra_guard()  # every config Hydra composes is checked before Hydra builds callbacks, launchers, logging
log = logging.getLogger("torchsnn")
_STARTED = False  # set once the task function runs: OSErrors after that are not about the run folder
# overrides that may accompany resume=<run>: they change no result (everything else is refused)
RESUME_ALLOWED = ("logging.progress", "simulation.device", "simulation.threads")
EXTENSIBLE = "simulation.duration_ms"  # may be given with resume= when longer than the run's own (recorded)


# an absolute path: the same search path whether this module runs as __main__ or is imported (workers)
CONF_DIR = str(Path(__file__).resolve().parent.parent / "conf")


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def main(cfg: DictConfig) -> None:
    hydra_cfg = HydraConfig.get()
    code = execute(cfg, Path(hydra_cfg.runtime.output_dir), list(hydra_cfg.overrides.task))
    if code and str(hydra_cfg.mode) == "RunMode.MULTIRUN":  # one failed job must not stop the rest of the sweep
        log.error("job %s ended with exit code %d; the sweep goes on", hydra_cfg.job.num, code)
    elif code:
        sys.exit(code)


def execute(cfg: DictConfig, run_dir: Path, overrides: list[str]) -> int:
    """Run the composed ``cfg`` (``overrides``: the command line's) in ``run_dir``; the exit code. Every expected
    failure is one logged line (no traceback)."""
    from omegaconf.errors import OmegaConfBaseException

    from torchsnn.config.report import describe_hydra_error, interpolation_sources, user_facing
    from torchsnn.pipeline import MODES, RunStoppedError, run

    global _STARTED
    _STARTED = True
    sources: dict[str, str] = {}
    plain: dict = {}
    try:
        sources = interpolation_sources(cfg)
        plain = OmegaConf.to_container(cfg, resolve=True)
        resume = None
        if plain.get("resume"):
            plain, resume, run_dir = resumed_config(plain, overrides)
        if plain.get("mode", "compare") not in MODES:
            raise ConfigError("mode", plain.get("mode"), f"must be one of {', '.join(MODES)}")
        hparams = dict(o.lstrip("+").split("=", 1) for o in overrides if "=" in o)
        run(plain, run_dir, resume, raw=None if resume else cfg, hparams=hparams)
    except ConfigError as err:
        log.error("invalid configuration: %s", user_facing(err, sources, plain, overrides))
        return 2
    except OmegaConfBaseException as err:  # an interpolation that does not resolve, a missing value
        log.error("invalid configuration: %s", describe_hydra_error(err, overrides))
        return 2
    except CheckpointError as err:
        log.error("cannot resume: %s", err)
        return 2
    except RunFolderError as err:
        log.error("run folder refused: %s", err)
        return 2
    except SolverError as err:
        log.error("no prediction written: %s", err)
        return 3
    except RunStoppedError as err:
        log.error("%s", err)
        return err.exit_code
    return 0


def resumed_config(plain: dict, overrides: list[str]) -> tuple[dict, dict, Path]:
    """The interrupted run's own config (with the allowed overrides applied), its checkpoint and its folder.

    ``simulation.duration_ms`` may be given too when it is longer than the run's own: the run is extended (from its
    latest checkpoint, bit-identical to a run of the longer duration from the start on the CPU) and the change is
    recorded as ``resumed_with: {simulation.duration_ms: [old, new]}``; a shorter one is refused."""
    from torchsnn.checkpoint import extend_checkpoint, latest_checkpoint, load_checkpoint

    path = latest_checkpoint(Path(plain["resume"]))
    resume = load_checkpoint(path)
    stored = resume["config"]  # the same network, seed and settings
    applied: dict = {}
    changed: dict = {}
    for item in overrides:
        key = item.lstrip("+~").partition("=")[0]
        if key == "resume" or key.startswith("hydra."):
            continue
        section, _, leaf = key.partition(".")
        if key == EXTENSIBLE:
            old, new = float(stored[section][leaf]), float(plain[section][leaf])
            if new < old:
                raise CheckpointError(
                    f"{item!r} given with resume=: a resumed run can only be extended, not shortened (its "
                    f"{EXTENSIBLE} is {old:g})"
                )
            if new > old:
                stored[section][leaf] = plain[section][leaf]
                changed[key] = [old, new]
            continue
        if key not in RESUME_ALLOWED:
            raise CheckpointError(
                f"{item!r} given with resume=: a resumed run uses the config stored in its checkpoint; only "
                f"{', '.join(RESUME_ALLOWED)} may be set, and a longer {EXTENSIBLE} (start a new run to change "
                "anything else)"
            )
        stored.setdefault(section, {})[leaf] = plain[section][leaf]
        applied[key] = plain[section][leaf]
    run_dir = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    stored["resume"] = {"checkpoint": str(path), "applied_overrides": applied}
    if changed:
        extend_checkpoint(resume, float(stored["simulation"]["duration_ms"]))
        stored["resume"]["resumed_with"] = changed
        log.info("resume: extended %s", ", ".join(f"{k} {a:g} -> {b:g}" for k, (a, b) in changed.items()))
    if applied:
        log.info("resume: applied %s", applied)
    log.info("resuming %s from t = %.1f ms (%s)", run_dir, resume["time_ms"], path.name)
    return stored, resume, run_dir


def entry() -> None:
    """``python -m torchsnn.run``: Hydra's own errors (a value of the wrong type, an unknown key, an override that
    does not parse, a missing config) become the same one-line message and exit code 2 as every invalid input."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra re-raises instead of printing and exiting 1
    from torchsnn.runguard import fix_mmap_threshold, limit_malloc_arenas

    limit_malloc_arenas()  # before any thread starts: RSS close to what the run holds (and to its estimate)
    fix_mmap_threshold()
    try:
        main()
    except ConfigError as exc:  # a hydra.* entry refused by the guard while Hydra composed the config
        print(f"invalid configuration: {exc}", file=sys.stderr)
        sys.exit(2)
    except (HydraException, OmegaConfBaseException) as exc:
        from torchsnn.config.report import describe_hydra_error

        overrides = [a for a in sys.argv[1:] if "=" in a and not a.startswith("-")]
        print(f"invalid configuration: {describe_hydra_error(exc, overrides)}", file=sys.stderr)
        sys.exit(2)
    except OSError as exc:  # Hydra could not create or write the run folder (read-only parent, a file in the way)
        if _STARTED:
            raise
        print(f"run folder refused: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:  # Ctrl-C before the run had started (while composing or importing)
        print("interrupted before the run started", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    # run the imported module's entry, not this __main__ copy: joblib / submitit workers then unpickle
    # torchsnn.run.main by reference, and importing torchsnn.run installs the Hydra guard in them too
    from torchsnn.run import entry as _entry

    _entry()
