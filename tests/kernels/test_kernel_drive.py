"""Poisson drive: the compiled table inversion (``numba_cpu.invert_table``) against ``torch.searchsorted``, and
``PoissonDrive.sample_block`` on both paths from the same generator state: identical samples."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from kernel_helpers import cpu_kernels

from torchsnn.kernels import numba_cpu
from torchsnn.populations import PoissonDrive
from torchsnn.populations.drive import GUIDE_SIZE, compound_poisson_table

DRIVES = {
    "brunel": {"k_ext": 1000, "nu_ext_hz": 20.0, "j_ext_mv": 0.1},  # lambda = 2 per step
    "balanced": {  # hetero_static: both signs, values collapse onto a 0.1 mV grid
        "k_ext": 1000,
        "nu_ext_hz": 38.0,
        "j_ext_mv": 0.1,
        "k_ext_inh": 1000,
        "nu_ext_inh_hz": 26.6,
        "j_ext_inh_mv": 0.1,
    },
    "weak": {"k_ext": 3, "nu_ext_hz": 5.0, "j_ext_mv": 1.7},  # lambda = 1.5e-3: almost every draw is 0
    "strong": {
        "k_ext": 20000,
        "nu_ext_hz": 50.0,
        "j_ext_mv": 0.013,
        "k_ext_inh": 700,
        "nu_ext_inh_hz": 9.0,
        "j_ext_inh_mv": 0.31,
    },
}


def _bound(params: dict) -> PoissonDrive:
    drive = PoissonDrive(**params)
    drive.bind(20.0, 0.1)
    return drive


def _searchsorted(u: torch.Tensor, drive: PoissonDrive) -> torch.Tensor:
    index = torch.searchsorted(drive.jump_cdf, u, right=True).clamp_(max=drive.jump_cdf.numel() - 1)
    return drive.jump_values_mv[index]


def _invert(u: torch.Tensor, drive: PoissonDrive) -> torch.Tensor:
    out = torch.empty(u.numel())
    numba_cpu.invert_table(
        u.contiguous().view(-1).numpy(),
        drive.jump_cdf.numpy(),
        drive.jump_guide.numpy(),
        drive.jump_values_mv.numpy(),
        out.numpy(),
    )
    return out.view(u.shape)


@pytest.mark.parametrize("name", list(DRIVES))
def test_invert_table_equals_searchsorted_on_hard_points(name):
    """Uniforms placed exactly on CDF values, one ulp on either side, on the guide table's cell edges, 0, and the
    largest double below 1, plus random ones."""
    drive = _bound(DRIVES[name])
    cdf = drive.jump_cdf.numpy()
    inner = cdf[cdf < 1.0]
    grid = np.arange(GUIDE_SIZE) / GUIDE_SIZE
    points = np.concatenate(
        [
            inner,
            np.nextafter(inner, 0.0),
            np.nextafter(inner, 1.0),
            grid,
            np.nextafter(grid[1:], 0.0),
            [0.0, np.nextafter(1.0, 0.0), 0.5],
            np.random.default_rng(0).random(20000),
        ]
    )
    u = torch.from_numpy(points[(points >= 0.0) & (points < 1.0)])
    assert torch.equal(_invert(u, drive), _searchsorted(u, drive))


def test_guide_table_is_the_count_of_cdf_values_below_each_cell_edge():
    drive = _bound(DRIVES["balanced"])
    cdf = drive.jump_cdf.numpy()
    grid = np.arange(GUIDE_SIZE) / GUIDE_SIZE
    expected = np.array([(cdf <= g).sum() for g in grid])
    assert np.array_equal(drive.jump_guide.numpy(), expected)


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("name", list(DRIVES))
def test_sample_block_identical_on_both_paths(name, batch):
    drive = _bound(DRIVES[name])
    samples, states = [], []
    for enabled in (True, False):
        gen = torch.Generator().manual_seed(2024)
        with cpu_kernels(enabled):
            blocks = [drive.sample_block(15, batch, 333, gen) for _ in range(4)]
        samples.append(torch.stack(blocks))
        states.append(gen.get_state())
    assert samples[0].dtype == samples[1].dtype == torch.float32
    assert samples[0].shape == (4, 15, batch, 333)
    assert torch.equal(samples[0], samples[1])
    assert torch.equal(states[0], states[1])  # both consumed the same random numbers


def test_table_values_are_what_sample_block_returns():
    drive = _bound(DRIVES["strong"])
    gen = torch.Generator().manual_seed(1)
    x = drive.sample_block(10, 2, 1000, gen)
    values, _ = compound_poisson_table(drive.sources())
    assert set(np.unique(x.numpy())).issubset(set(values.tolist()))
