"""Studies: experiments made of several runs or analyses (``mode=study``; the experiment config names the class
with ``study._target_``). Each writes its figures, a Markdown report and ``summary.json`` into the run folder."""

from __future__ import annotations

import copy
import logging
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

log = logging.getLogger("torchsnn")


class Study(ABC):
    """Subclasses implement :meth:`run`; ``variant`` builds the config of one sub-run."""

    @abstractmethod
    def run(self, cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
        """Do the study for the composed, unresolved ``cfg`` and write into ``run_dir``."""

    @staticmethod
    def variant(cfg: DictConfig, **changes: Any) -> dict[str, Any]:
        """The plain config of one sub-run: ``cfg`` with dotted-key ``changes`` (``scaffold__r=0.5`` sets
        ``scaffold.r``), applied before interpolations resolve (so ``${scaffold.r}`` in the network follows), in
        compare mode and without the study."""
        out = copy.deepcopy(cfg)
        with open_dict(out):
            out.mode = "compare"
            out.pop("study", None)
            for key, value in changes.items():
                OmegaConf.update(out, key.replace("__", "."), value, merge=False, force_add=True)
        return OmegaConf.to_container(out, resolve=True)

    @staticmethod
    def sub_run(cfg: dict[str, Any], folder: Path) -> dict[str, Any]:
        """Run one compare/simulate/theory job in ``folder`` (TensorBoard and the progress bar off)."""
        from torchsnn.pipeline import run

        cfg = copy.deepcopy(cfg)
        cfg["logging"] = {**cfg["logging"], "tensorboard": False, "progress": False}
        log.info("study: sub-run %s", folder.name)
        return run(cfg, folder)
