"""numba ``spike_statistics`` (SpikeStatsMonitor.on_block on the numba backend) against the torch reference
backend's (one step at a time, (B, N) temporaries): identical counts, last-spike steps, ISI sums, sums of squares and
numbers, and identical rates and CVs, for windows that start inside a block, before the first block and after
the last one."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from torchsnn.kernels import select_backend
from torchsnn.monitors import SpikeStatsMonitor
from torchsnn.network import BlockOutput


def _network_stub(sizes: dict[str, int], batch: int, enabled: bool) -> SimpleNamespace:
    """What ``SpikeStatsMonitor.setup`` reads of a network (numba backend if ``enabled``, else torch)."""
    backend = select_backend("cpu", "numba" if enabled else "torch")
    return SimpleNamespace(
        device=torch.device("cpu"),
        batch=batch,
        populations={name: SimpleNamespace(size=n) for name, n in sizes.items()},
        select_backend=lambda: backend,
        sinks={},
    )


def _blocks(rng: np.random.Generator, sizes: dict[str, int], batch: int, lengths: list[int], p: dict[str, float]):
    start, out = 0, []
    for m in lengths:
        spikes = {name: torch.from_numpy(rng.random((m, batch, n)) < p[name]) for name, n in sizes.items()}
        out.append(BlockOutput(start, m, spikes))
        start += m
    return out, start


@pytest.mark.parametrize("window_start", [0, 7, 23, 45, 200], ids=lambda w: f"window{w}")
def test_spike_statistics_identical(window_start):
    rng = np.random.default_rng(window_start)
    sizes, batch = {"E": 300, "I": 77}, 2
    blocks, total = _blocks(rng, sizes, batch, [15, 15, 4, 15, 1, 15, 15, 15, 15, 15, 15], {"E": 0.15, "I": 0.4})
    monitors = []
    for enabled in (True, False):
        mon = SpikeStatsMonitor(window_start, 0.1, min_isi=2)
        mon.setup(_network_stub(sizes, batch, enabled), 0, total)
        for out in blocks:
            mon.on_block(out)
        monitors.append(mon)
    compiled, reference = monitors
    for name in sizes:
        for key in ("count", "last", "isi_sum", "isi_sq", "isi_n"):
            a, b = compiled.state[name][key], reference.state[name][key]
            assert a.dtype == b.dtype, key
            assert torch.equal(a, b), f"{name}.{key}"
    res_c, res_r = compiled.result(), reference.result()
    for name in sizes:
        assert torch.equal(res_c[name]["counts"], res_r[name]["counts"])
        assert torch.equal(res_c[name]["rates_hz"], res_r[name]["rates_hz"])
        assert torch.equal(res_c[name]["cv_isi"].isnan(), res_r[name]["cv_isi"].isnan())
        assert torch.equal(res_c[name]["cv_isi"].nan_to_num(-1.0), res_r[name]["cv_isi"].nan_to_num(-1.0))
    if window_start < total:
        assert int(compiled.state["E"]["isi_n"].sum()) > 0  # ISIs were counted
    else:
        assert int(compiled.state["E"]["count"].sum()) == 0  # nothing inside an empty window


@pytest.mark.parametrize("enabled", [True, False], ids=["compiled", "torch"])
def test_spike_statistics_match_a_direct_count(enabled):
    """Both paths against spike trains analysed one neuron at a time."""
    rng = np.random.default_rng(99)
    sizes, batch, window = {"E": 40}, 1, 11
    blocks, total = _blocks(rng, sizes, batch, [15] * 6, {"E": 0.2})
    train = torch.cat([b.spikes["E"] for b in blocks])[:, 0]  # (T, N)
    mon = SpikeStatsMonitor(window, 0.1, min_isi=1)
    mon.setup(_network_stub(sizes, batch, enabled), 0, total)
    for out in blocks:
        mon.on_block(out)
    st = mon.state["E"]
    for n in range(sizes["E"]):
        steps = torch.nonzero(train[:, n]).flatten().tolist()
        inside = [s for s in steps if s >= window]
        isis = np.diff(inside)
        assert st["count"][0, n].item() == len(inside)
        assert st["isi_n"][0, n].item() == len(isis)
        assert st["isi_sum"][0, n].item() == float(isis.sum())
        assert st["isi_sq"][0, n].item() == float((isis.astype(float) ** 2).sum())
        assert st["last"][0, n].item() == (steps[-1] if steps else -1)
