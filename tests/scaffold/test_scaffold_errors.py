"""Bad inputs fail with ConfigError naming the field, the value and what is allowed, before any work."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from torchsnn.errors import ConfigError
from torchsnn.scaffold import (
    BinomialDegree,
    ConfigurationModel,
    FixedDegree,
    FixedInDegree,
    GammaDegree,
    LognormalDegree,
    NegativeBinomialDegree,
    PairwiseBernoulli,
    PoissonDegree,
    calibrate_copula,
)

CASES: list[tuple[str, Callable[[], object], str, str, str]] = [
    # (id, call, field, value as printed, a word of the rule)
    ("negative mean", lambda: PoissonDegree(-3), "mean", "-3", ">= 0"),
    ("non-integer fixed", lambda: FixedDegree(2.5), "mean", "2.5", "integer"),
    ("zero gamma mean", lambda: GammaDegree(0, 0.5), "mean", "0", "> 0"),
    ("negative cv", lambda: GammaDegree(10, -0.1), "cv", "-0.1", ">= 0"),
    ("negative cv lognormal", lambda: LognormalDegree(10, -1), "cv", "-1", ">= 0"),
    ("nb under-dispersed", lambda: NegativeBinomialDegree(10, 0.2), "cv", "0.2", "1 / mean"),
    ("binomial mean above trials", lambda: BinomialDegree(20, 10), "mean", "20", "n_trials"),
    ("|r| > 1", lambda: ConfigurationModel(GammaDegree(10, 0.5), r=1.5), "r", "1.5", "must lie in [-1"),
    ("p above 1", lambda: PairwiseBernoulli(1.2), "p", "1.2", "[0.0, 1.0]"),
    ("p below 0", lambda: PairwiseBernoulli(-0.1), "p", "-0.1", "[0.0, 1.0]"),
    ("negative indegree", lambda: FixedInDegree(-2), "indegree", "-2", ">= 0"),
    ("indegree > n_pre", lambda: FixedInDegree(101).validate(100, 50, False), "indegree", "101", "<= 100"),
    (
        "indegree > n - 1 (square)",
        lambda: FixedInDegree(100).connect(100, 100, True, np.random.default_rng(0)),
        "indegree",
        "100",
        "<= 99",
    ),
    ("negative size", lambda: PairwiseBernoulli(0.1).validate(-10, 5, False), "n_pre", "-10", ">= 1"),
    (
        "r in a non-square block",
        lambda: ConfigurationModel(GammaDegree(10, 0.5), r=0.2).validate(100, 100, False),
        "r",
        "0.2",
        "non-square",
    ),
    (
        "unreachable r",
        lambda: ConfigurationModel(GammaDegree(100, 1.0), r=-0.9).validate(5000, 5000, True),
        "r",
        "-0.9",
        "reachable",
    ),
    (
        "degrees above the candidates",
        lambda: ConfigurationModel(GammaDegree(50, 1.0)).validate(200, 200, True),
        "in_degree",
        "GammaDegree(mean=50.0, cv=1.0)",
        "candidates",
    ),
    (
        "out-degree mean disagrees",
        lambda: ConfigurationModel(PoissonDegree(20), PoissonDegree(30)).validate(100, 100, False),
        "out_degree.mean",
        "30",
        "n_post * in_degree.mean / n_pre",
    ),
    (
        "derived fixed out-degree not integer",
        lambda: ConfigurationModel(FixedDegree(10)).validate(300, 200, False),
        "out_degree.mean",
        "6.66",
        "integer",
    ),
    (
        "in-degree mean missing",
        lambda: ConfigurationModel(GammaDegree(None, 0.5)).validate(100, 100, True),
        "in_degree.mean",
        "None",
        "derived",
    ),
    (
        "copula field name",
        lambda: calibrate_copula(PoissonDegree(2), PoissonDegree(2), 2.0, field="x.r"),
        "x.r",
        "2.0",
        "[-1.0, 1.0]",
    ),
]


@pytest.mark.parametrize(("call", "field", "value", "rule"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_config_errors(call: Callable[[], object], field: str, value: str, rule: str) -> None:
    with pytest.raises(ConfigError) as err:
        call()
    msg = str(err.value)
    assert err.value.field == field, msg
    assert msg.startswith(f"{field} = ") and value in msg and rule in msg, msg
