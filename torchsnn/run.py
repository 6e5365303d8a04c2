"""Hydra entry point: ``python -m torchsnn.run +experiment=NAME [key=value ...]``.

``mode=compare`` (default) simulates the network, solves the mean-field theory of the same network and compares
them; ``mode=simulate`` and ``mode=theory`` do one half. The run folder (``hydra.run.dir``) receives the composed
config (``.hydra/`` and ``config.yaml``), ``summary.json``, ``neurons.csv``, figures and ``tensorboard/``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from torchsnn.errors import ConfigError, SolverError

log = logging.getLogger("torchsnn")


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    from torchsnn.checkpoint import latest_checkpoint, load_checkpoint
    from torchsnn.pipeline import MODES, RunStoppedError, run

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        plain = OmegaConf.to_container(cfg, resolve=True)
        resume = None
        if plain.get("resume"):
            path = latest_checkpoint(Path(plain["resume"]))
            resume = load_checkpoint(path)
            plain = resume["config"]  # the interrupted run's own config: the same network, seed and settings
            run_dir = path.parent.parent if path.parent.name == "checkpoints" else path.parent
            log.info("resuming %s from t = %.1f ms (%s)", run_dir, resume["time_ms"], path.name)
        if plain.get("mode", "compare") not in MODES:
            raise ConfigError("mode", plain.get("mode"), f"must be one of {', '.join(MODES)}")
        if resume is None:
            (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
        overrides = dict(o.lstrip("+").split("=", 1) for o in HydraConfig.get().overrides.task if "=" in o)
        run(plain, run_dir, resume, raw=None if resume else cfg, hparams=overrides)
    except ConfigError as err:
        log.error("invalid configuration: %s", err)
        sys.exit(2)
    except SolverError as err:
        log.error("no prediction written: %s", err)
        sys.exit(3)
    except FileNotFoundError as err:
        log.error("cannot resume: %s", err)
        sys.exit(2)
    except RunStoppedError as err:
        log.error("%s", err)
        sys.exit(err.exit_code)


if __name__ == "__main__":
    main()
