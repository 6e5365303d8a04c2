"""Shared helpers for the mean-field tests (imported as ``mf_helpers``: a unique module name, see sim_helpers.py).

The references here are written from the formulas of theory.md §1, §2 and §5, independently of
torchsnn.meanfield: the Siegert rate by scipy adaptive quadrature of erfcx(-u), drive moments from the Poisson
formulas, and Hydra composition of the run configs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
import torch
from testkit import CONF_DIR, LIF, REPO, compose_plain, run_cli, siegert_hz  # noqa: F401 (re-exported)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One intra-op thread (small tensors; on a shared 2-core machine spinning OpenMP workers slow tests down).
    Import this name into a test module to make it autouse there."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ----------------------------------------------------------------------------------------------- references
def siegert_ref_hz(mu_mv: float, sigma_mv: float, **lif: float) -> float:
    """phi(mu, sigma) in Hz by scipy quadrature (testkit.siegert_hz)."""
    return siegert_hz(mu_mv, sigma_mv, **lif)


def poisson_drive_moments(drive: dict[str, Any], tau_m_ms: float) -> tuple[float, float]:
    """(mu_ext, sigma_ext) of Poisson drive (theory §1): tau K J nu and sqrt(tau K J^2 nu), both kinds of source."""
    tau = tau_m_ms * 1e-3
    k_i, nu_i, j_i = drive.get("k_ext_inh", 0), drive.get("nu_ext_inh_hz", 0.0), drive.get("j_ext_inh_mv", 0.0)
    mu = tau * (drive["k_ext"] * drive["j_ext_mv"] * drive["nu_ext_hz"] - k_i * j_i * nu_i)
    var = tau * (drive["k_ext"] * drive["j_ext_mv"] ** 2 * drive["nu_ext_hz"] + k_i * j_i**2 * nu_i)
    return mu, math.sqrt(var)


# ----------------------------------------------------------------------------------------------- configs
PAPER_THEORY = "neuron.transfer=siegert"  # the references here are the diffusion approximation's (theory §5)


def hetero_overrides(r: float, *extra: str) -> list[str]:
    return ["+experiment=hetero_static", f"scaffold.r={r}", PAPER_THEORY, *extra]


def mean_rate_hz(model, x: torch.Tensor, name: str) -> float:
    """Population mean rate E[nu] over rho_K x N(0, I) by the model's own quadrature nodes."""
    return model.mean_rates_hz(x)[name]


def batch_se(values: Sequence[np.ndarray]) -> np.ndarray:
    """Standard error of the mean of per-batch estimates (independent equal batches): std / sqrt(B)."""
    arr = np.asarray(values)
    return arr.std(axis=0, ddof=1) / math.sqrt(arr.shape[0])


def block_stats(model, x: torch.Tensor, post: str, pre: str) -> tuple[np.ndarray, np.ndarray]:
    """Block post <- pre at x as (means (2,), covariance (2, 2)) of the features (w nu, w^2 nu) of a static block:
    (m_mu, m_sigma) and [[s_mu^2, c], [c, s_sigma^2]] (theory §5.2)."""
    i = model.block_index[(post, pre)]
    if hasattr(model, "block_means_cov"):  # flat layout: means then the upper triangle of the covariance
        m, c = model.block_means_cov(x, i)
        return m.detach().numpy(), c.detach().numpy()
    row = x[i].detach().numpy()  # (n_blocks, 5) layout (m_mu, m_sigma, s_mu2, s_sigma2, c)
    return row[:2], np.array([[row[2], row[4]], [row[4], row[3]]])
