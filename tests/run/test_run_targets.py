"""The ``_target_`` allow-list: package classes and users' own subclasses of the extension bases are built;
anything else is refused with the field, and a module outside torchsnn is never imported to find out."""

from __future__ import annotations

import sys

import pytest
import torch

from torchsnn.config.instantiate import EXTENSIONS_ENV, instantiate, resolve_target
from torchsnn.errors import ConfigError
from torchsnn.plasticity import PlasticityRule
from torchsnn.scaffold import GammaDegree


class UsersRule(PlasticityRule):
    """A user's own rule, defined in an already imported module (this test module)."""

    pre_only = True

    def drift(self, w_mv: torch.Tensor, nu_pre_hz: torch.Tensor, nu_post_hz: torch.Tensor) -> torch.Tensor:
        return -w_mv


def test_package_classes_and_users_subclasses_are_allowed():
    assert resolve_target("torchsnn.scaffold.GammaDegree", "f") is GammaDegree
    assert resolve_target("torchsnn.scaffold.heavy_tailed.GammaDegree", "f") is GammaDegree
    rule = instantiate({"_target_": f"{__name__}.UsersRule"}, "plasticity.rule", (PlasticityRule,))
    assert isinstance(rule, UsersRule)


@pytest.mark.parametrize(
    "target",
    [
        "subprocess.Popen",
        "os.system",
        "builtins.eval",
        "torchsnn.pipeline.run",
        "torchsnn.config.instantiate.importlib.import_module",
        "torch.nn.Linear",
    ],
)
def test_anything_else_is_refused_with_the_field(target):
    with pytest.raises(ConfigError) as info:
        instantiate({"_target_": target, "args": ["touch", "/tmp/torchsnn_never"]}, "network.populations.E.drive")
    assert info.value.field == "network.populations.E.drive._target_"


def test_a_module_outside_the_package_is_not_imported_to_check_it(monkeypatch):
    monkeypatch.delenv(EXTENSIONS_ENV, raising=False)
    for name in ("antigravity", "this"):  # both act when imported
        assert name not in sys.modules
        with pytest.raises(ConfigError, match="cannot be imported: only classes of torchsnn"):
            resolve_target(f"{name}.Anything", "scaffold.law")
        assert name not in sys.modules


def test_a_module_listed_by_the_user_is_imported(monkeypatch, tmp_path):
    (tmp_path / "my_lab_rules.py").write_text(
        "import torch\nfrom torchsnn.plasticity import PlasticityRule\n"
        "class LabRule(PlasticityRule):\n    pre_only = True\n"
        "    def drift(self, w_mv, nu_pre_hz, nu_post_hz):\n        return -w_mv\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError):
        resolve_target("my_lab_rules.LabRule", "plasticity.rule._target_")
    assert "my_lab_rules" not in sys.modules
    monkeypatch.setenv(EXTENSIONS_ENV, "my_lab_rules")
    assert resolve_target("my_lab_rules.LabRule", "plasticity.rule._target_").__name__ == "LabRule"
    monkeypatch.delitem(sys.modules, "my_lab_rules")
