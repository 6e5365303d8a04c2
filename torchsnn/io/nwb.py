"""A run's spikes and weights as an NWB file (Neurodata Without Borders, via ``pynwb``; optional extra ``[nwb]``).

Written by ``logging.nwb=true`` as ``<run dir>/run.nwb``, readable by pynwb and the tools built on it:

* ``units``: one unit per recorded neuron (the raster: ``simulation.raster_neurons`` neurons per population, the
  first ``simulation.raster_ms`` of the measurement window, replica 0), with its spike times in seconds and the
  columns ``population`` and ``neuron_id`` (index within the population). Record every spike of every neuron with
  ``simulation.raster_neurons=<population size> simulation.raster_ms=<duration - transient>``.
* ``processing/network/rates``: every neuron (replica 0): ``population``, ``neuron_id``, ``spike_count`` and
  ``rate_hz`` over the window [transient, duration).
* ``processing/network/weights_<projection>``: the final weights, one row per edge: ``pre``, ``post`` (indices
  within the populations) and ``weight_mv`` (signed, replica 0).
* ``notes``: the run's configuration (YAML); ``session_description`` names the window.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import yaml

__all__ = ["write_nwb"]


def write_nwb(path: Path, result: Any, network: Any, config: dict[str, Any]) -> Path:
    """Write ``result`` (a SimulationResult) and the final weights of ``network`` to ``path`` (see module doc)."""
    try:
        from hdmf.common import DynamicTable, VectorData
        from pynwb import NWBHDF5IO, NWBFile
    except ImportError as err:  # the optional extra is not installed
        raise ImportError('logging.nwb=true needs pynwb: pip install -e ".[nwb]"') from err
    nwb = NWBFile(
        session_description=(
            f"torchsnn run: window [{result.transient_ms}, {result.duration_ms}) ms of model time, dt "
            f"{result.dt_ms} ms, seed {config.get('seed')}"
        ),
        identifier=str(uuid.uuid4()),
        session_start_time=datetime.now(timezone.utc),
        notes=yaml.safe_dump(config, sort_keys=False),
        source_script="torchsnn",
        source_script_file_name="torchsnn.run",
    )
    nwb.add_unit_column("population", "population of the neuron")
    nwb.add_unit_column("neuron_id", "index of the neuron within its population")
    for name, raster in result.raster.items():
        steps, neurons = raster["step"].numpy(), raster["neuron"].numpy()
        if not neurons.size:
            continue
        order = np.lexsort((steps, neurons))  # by neuron, then time: one pass instead of a scan per neuron
        ids, starts = np.unique(neurons[order], return_index=True)
        for i, times in zip(ids, np.split(steps[order] * (result.dt_ms * 1e-3), starts[1:]), strict=True):
            nwb.add_unit(spike_times=times, population=name, neuron_id=int(i))
    module = nwb.create_processing_module("network", "per-neuron rates and final weights of the simulated network")
    pops, ids, counts, rates = [], [], [], []
    for name, st in result.spike_stats.items():
        n = st["counts"].shape[-1]
        pops += [name] * n
        ids.append(np.arange(n))
        counts.append(st["counts"][0].numpy().astype(np.int64))
        rates.append(st["rates_hz"][0].numpy().astype(np.float64))
    columns = [
        VectorData(name="population", description="population", data=pops),
        VectorData(name="neuron_id", description="index within the population", data=np.concatenate(ids)),
        VectorData(name="spike_count", description="spikes in the window", data=np.concatenate(counts)),
        VectorData(name="rate_hz", description="spike_count / window length (Hz)", data=np.concatenate(rates)),
    ]
    module.add(DynamicTable(name="rates", description="every neuron, replica 0", columns=columns))
    for name, proj in network.projections.items():
        w = proj.edge_weights_mv().detach().cpu()
        w = (w[0] if w.dim() == 2 else w).numpy().astype(np.float64)
        cols = [
            VectorData(
                name="pre", description="pre neuron (index in its population)", data=proj.pre_index().cpu().numpy()
            ),
            VectorData(name="post", description="post neuron", data=proj.post_index.cpu().numpy().astype(np.int64)),
            VectorData(name="weight_mv", description="signed final weight (mV), replica 0", data=w),
        ]
        description = f"{proj.post} <- {proj.pre}, delay {proj.delay_ms} ms, {'plastic' if proj.plastic else 'static'}"
        module.add(DynamicTable(name=f"weights_{name}", description=description, columns=cols))
    path = Path(path)
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return path
