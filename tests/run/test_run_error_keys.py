"""Errors name the key the user typed: a value that reaches a projection through an interpolation
(``cv: ${scaffold.cv}``) is reported under its source key, also where the failing field is the whole degree law
that holds several interpolated values."""

from __future__ import annotations

from testkit import compose_config

from torchsnn.config.report import interpolation_sources, user_facing
from torchsnn.errors import ConfigError

LAW = "network.projections.EE.connectivity.in_degree"


def test_a_law_error_is_reported_under_the_typed_key():
    cfg = compose_config(["scaffold.cv=5"])
    sources = interpolation_sources(cfg)
    assert sources[f"{LAW}.cv"] == "scaffold.cv" and sources[f"{LAW}._target_"] == "scaffold.law"
    err = ConfigError(LAW, "GammaDegree(mean=400.0, cv=5.0)", "gives degrees above the candidates")
    plain = {"scaffold": {"cv": 5.0, "law": "torchsnn.scaffold.GammaDegree"}}
    shown = user_facing(err, sources, plain, ["scaffold.cv=5", "seed=3"])
    assert shown.field == "scaffold.cv" and shown.value == 5.0
    assert LAW in shown.allowed  # the internal path is kept in the text


def test_without_a_typed_source_the_law_names_where_its_values_come_from():
    sources = interpolation_sources(compose_config([]))
    err = ConfigError(LAW, "GammaDegree(mean=400.0, cv=0.4)", "gives degrees above the candidates")
    shown = user_facing(err, sources, {}, ["network.populations.E.size=300"])
    assert shown.field == LAW
    assert "scaffold.law" in shown.allowed and "scaffold.cv" in shown.allowed


def test_a_leaf_interpolation_maps_to_its_source():
    sources = interpolation_sources(compose_config([]))
    err = ConfigError("network.projections.EE.connectivity.r", 2.0, "must lie in [-1, 1]")
    assert user_facing(err, sources).field == "scaffold.r"
