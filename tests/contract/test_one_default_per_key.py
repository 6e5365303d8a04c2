"""One default per config key: the schema dataclasses (torchsnn/config/schema.py) are where defaults are written.

Every ``<mapping>.get("key", <literal>)`` left in the package (found with ``ast``) whose key is a config key must
use the schema's default as its literal, so a second, different default cannot be written again without this test
failing. The YAML files that restate a schema field must restate its schema default too.
"""

from __future__ import annotations

import ast
import dataclasses
from typing import Any

import pytest
import yaml
from testkit import CONF_DIR, REPO

from torchsnn.config.schema import SCHEMAS

PACKAGE = REPO / "torchsnn"
MISSING = object()


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return MISSING


def schema_defaults() -> dict[str, list[tuple[str, Any]]]:
    """key -> [(where, default)]: every schema field, and the scalar top-level keys of conf/config.yaml and of the
    default neuron (conf/neuron/lif.yaml), which have no dataclass."""
    out: dict[str, list[tuple[str, Any]]] = {}
    for group, schema in SCHEMAS.items():
        for f in dataclasses.fields(schema):
            value = _field_default(f)
            if value is not MISSING and value != "???":
                out.setdefault(f.name, []).append((f"{group} schema", value))
    for path in (CONF_DIR / "config.yaml", CONF_DIR / "neuron" / "lif.yaml"):
        for key, value in yaml.safe_load(path.read_text()).items():
            if not isinstance(value, (dict, list)) and key not in ("defaults", "_target_"):
                out.setdefault(key, []).append((path.relative_to(REPO).as_posix(), value))
    return out


def get_calls() -> list[tuple[str, str, ast.expr]]:
    """(``file:line``, key, default expression) for every ``x.get("key", default)`` in the package."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "get"
                and len(node.args) == 2
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                found.append((f"{path.relative_to(REPO).as_posix()}:{node.lineno}", node.args[0].value, node.args[1]))
    return found


def get_calls_with_literal_default() -> list[tuple[str, str, Any]]:
    """(``file:line``, key, literal) for every ``x.get("key", literal)`` in the package."""
    found = []
    for where, key, default in get_calls():
        try:
            found.append((where, key, ast.literal_eval(default)))
        except ValueError:
            continue  # a name or an expression (e.g. SIM.transient_ms): not a second literal
    return found


def _same(a: Any, b: Any) -> bool:
    """Equal values of the same kind (1 and 1.0 agree; True and 1 do not)."""
    if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, (int, float)):
        return type(a) is type(b) and a == b
    return isinstance(b, (int, float)) and a == b


def test_the_finder_sees_the_config_reads() -> None:
    """Guards the test itself: the ast walk finds .get calls on config keys (so the check below is not vacuous)."""
    keys = {key for _, key, _ in get_calls_with_literal_default()}
    assert keys & set(schema_defaults()), "no .get(config key, literal) found: the finder is broken"


def test_every_literal_default_is_the_schema_default() -> None:
    defaults = schema_defaults()
    wrong = []
    for where, key, literal in get_calls_with_literal_default():
        if key in defaults and not any(_same(literal, value) for _, value in defaults[key]):
            wrong.append(f"{where}: .get({key!r}, {literal!r}) but {defaults[key]}")
    assert not wrong, "defaults written twice and disagreeing:\n" + "\n".join(wrong)


def test_a_default_taken_from_the_schema_is_the_same_key() -> None:
    """``sim.get("raster_ms", SIM.raster_neurons)`` would read the schema, but the wrong field."""
    fields = {f.name for schema in SCHEMAS.values() for f in dataclasses.fields(schema)}
    wrong = [
        f"{where}: .get({key!r}, {ast.unparse(default)})"
        for where, key, default in get_calls()
        if isinstance(default, ast.Attribute) and default.attr in fields and default.attr != key
    ]
    assert not wrong, "\n".join(wrong)


def test_schema_defaults_agree_where_a_key_is_in_several_schemas() -> None:
    """A scalar key (``initial_rate_hz``, ``device``, ...) means one thing wherever it appears."""
    for key, entries in schema_defaults().items():
        values = [v for _, v in entries if not isinstance(v, (dict, list))]
        assert all(_same(v, values[0]) for v in values[1:]), f"{key}: {entries}"


@pytest.mark.parametrize("group", [g for g in sorted(SCHEMAS) if (CONF_DIR / g / "default.yaml").exists()])
def test_yaml_files_restate_the_schema_defaults(group: str) -> None:
    """conf/<group>/default.yaml may repeat a field for its comment, but with the schema's value."""
    path = CONF_DIR / group / "default.yaml"
    fields = {f.name: _field_default(f) for f in dataclasses.fields(SCHEMAS[group])}
    data = yaml.safe_load(path.read_text())
    wrong = [
        f"{key}: {value!r} in {path.name}, {fields[key]!r} in the schema"
        for key, value in data.items()
        if key in fields and not isinstance(value, (dict, list)) and not _same(value, fields[key])
    ]
    assert not wrong, "\n".join(wrong)


def test_the_schema_defaults_compose() -> None:
    """The default config composes to the schema defaults for every simulation and logging key."""
    from testkit import compose_plain

    plain = compose_plain()
    for group in ("simulation", "logging", "meanfield"):
        for f in dataclasses.fields(SCHEMAS[group]):
            assert f.name in plain[group], f"{group}.{f.name} missing after composition"
