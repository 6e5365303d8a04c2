"""From the command line: a run exports its network and writes NWB; the exported network runs again through
compare mode with scaffold=file (same spikes: same rates per neuron); pynwb reads the file back and its spike
trains agree with the independently counted spikes of every neuron."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from testkit import brunel_size_overrides, run_cli

pynwb = pytest.importorskip("pynwb")

SMALL = [
    "+experiment=brunel_ai",
    *brunel_size_overrides(400, 100, 40, 10),
    "simulation.duration_ms=400",
    "simulation.transient_ms=100",
    "simulation.raster_neurons=500",
    "simulation.raster_ms=300",  # the whole window: every spike of every neuron is in the raster
    "logging.progress=false",
    "logging.tensorboard=false",
]


def test_export_nwb_and_file_scaffold_in_compare_mode(tmp_path: Path):
    first = tmp_path / "first"
    done = run_cli(*SMALL, "logging.nwb=true", "logging.export_scaffold=true", f"hydra.run.dir={first}")
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((first / "summary.json").read_text())

    with pynwb.NWBHDF5IO(str(first / "run.nwb"), "r") as io:
        nwb = io.read()
        units = nwb.units.to_dataframe()
        rates = nwb.processing["network"]["rates"].to_dataframe()
        weights = nwb.processing["network"]["weights_EI"].to_dataframe()
        assert "seed" in nwb.notes
    assert len(rates) == 500
    for pop, size in (("E", 400), ("I", 100)):
        counted = rates[rates.population == pop].spike_count.to_numpy()
        assert counted.sum() > 0
        assert counted.mean() / 0.3 == pytest.approx(summary["simulation"][pop]["rate_mean_hz"], rel=1e-12)
        per_unit = {int(r.neuron_id): len(r.spike_times) for r in units[units.population == pop].itertuples()}
        from_units = np.array([per_unit.get(i, 0) for i in range(size)])
        np.testing.assert_array_equal(from_units, counted)  # raster monitor vs spike-statistics monitor
    assert len(weights) == 400 * 10 and np.allclose(weights.weight_mv, -0.5)  # E <- I: g J, inhibitory sign

    second = tmp_path / "second"
    done = run_cli(*SMALL, "scaffold=file", f"scaffold.path={first / 'scaffold_edges.npz'}", f"hydra.run.dir={second}")
    assert done.returncode == 0, done.stderr[-3000:]
    again = json.loads((second / "summary.json").read_text())
    assert again["theory_solver"]["degrees"] == "scaffold"
    assert again["comparison"]["E"]["ks"] == again["comparison"]["E"]["ks"]  # compare mode ran (finite)
    for pop in ("E", "I"):
        assert again["simulation"][pop] == summary["simulation"][pop]  # same network, same seed: same spikes
