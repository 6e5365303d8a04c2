"""Run the harness's network in NEST (``iaf_psc_delta``) and time the model run.

Invoked by the harness as ``<venv>/bin/python benchmarks/peers/nest_brunel.py --edges <npz> --out <json>`` in the
NEST virtual environment. Model, as torchsnn's LIFPopulation: ``iaf_psc_delta`` with E_L = 0, V_th = theta,
V_reset = V_r, t_ref, tau_m; a delta synapse's weight is the jump of V_m in mV (independent of C_m, which only
scales currents and is set to 1 pF); input arriving while refractory is discarded (``refractory_input`` False,
NEST's default), as in torchsnn. Recurrent synapses: the exported arrays, connected ``one_to_one`` with
per-synapse weight and delay. Drive: one ``poisson_generator`` at k_ext * nu_ext connected ``all_to_all`` with
weight j_ext (NEST's generator sends an independent train to each target), with the recurrent delay so that the
minimum delay, and NEST's communication interval, stays that of the network.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import peer_common as pc


def main() -> None:
    args = pc.parse_args(__doc__.splitlines()[0])
    spec, arrays = pc.load_network(args.edges)
    threads = args.threads or spec["threads"].get("nest", 2)
    pc.limit_threads(threads)
    clock = pc.Stopwatch()
    import nest
    import numpy as np

    nest.set_verbosity("M_WARNING")
    nest.ResetKernel()
    nest.SetKernelStatus(
        {"resolution": spec["dt_ms"], "local_num_threads": threads, "rng_seed": int(spec["seed"]) % 2**31 + 1}
    )
    import_s = clock.lap()
    rss0 = pc.rss_mb()

    neuron, drive = pc.uniform_parameters(spec)
    n_total = sum(p["size"] for p in spec["populations"])
    neurons = nest.Create(
        "iaf_psc_delta",
        n_total,
        params={
            "E_L": 0.0,
            "V_th": neuron["theta_mv"],
            "V_reset": neuron["v_reset_mv"],
            "t_ref": neuron["tau_ref_ms"],
            "tau_m": neuron["tau_m_ms"],
            "C_m": 1.0,
            "I_e": 0.0,
            "refractory_input": False,
        },
    )
    neurons.V_m = nest.random.uniform(neuron["v_init_low_mv"], neuron["v_init_high_mv"])
    ids = np.asarray(neurons.tolist(), dtype=np.int64)
    delay = arrays["delay_ms"].astype(np.float64)
    d_drive = float(delay.min()) if delay.size else spec["dt_ms"]
    kinds = (("k_ext", "nu_ext_hz", "j_ext_mv", 1.0), ("k_ext_inh", "nu_ext_inh_hz", "j_ext_inh_mv", -1.0))
    for key_k, key_nu, key_j, sign in kinds:
        k, nu, j = drive.get(key_k, 0), drive.get(key_nu, 0.0), drive.get(key_j, 0.0)
        if k > 0 and nu > 0:
            gen = nest.Create("poisson_generator", params={"rate": float(k * nu)})
            nest.Connect(gen, neurons, "all_to_all", syn_spec={"weight": sign * float(j), "delay": d_drive})
    nest.Connect(
        ids[arrays["pre"]],
        ids[arrays["post"]],
        "one_to_one",
        syn_spec={
            "synapse_model": "static_synapse",
            "weight": arrays["weight_mv"].astype(np.float64),
            "delay": delay,
        },
    )
    recorder = nest.Create("spike_recorder", params={"start": float(spec["warmup_ms"])})
    nest.Connect(neurons, recorder)
    build_s = clock.lap()
    nest.Simulate(float(spec["warmup_ms"]))  # includes NEST's preparation of the connection infrastructure
    warmup_s = clock.lap()
    repeats, duration = int(spec.get("repeats", 1)), float(spec["duration_ms"])
    walls = []
    for _ in range(repeats):
        nest.Simulate(duration)
        walls.append(clock.lap())
    events = recorder.get("events")
    senders = np.asarray(events["senders"], dtype=np.int64) - int(ids[0])
    segment = np.floor((np.asarray(events["times"]) - float(spec["warmup_ms"]) - 1e-9) / duration).astype(np.int64)
    counts = [np.bincount(senders[segment == k], minlength=n_total)[:n_total] for k in range(repeats)]
    result = pc.summarise(spec, arrays, counts, walls)
    result.update(
        {
            "peer": "nest",
            "version": nest.__version__,
            "numpy": np.__version__,
            "model": "iaf_psc_delta",
            "threads": threads,
            "n_connections_total": int(nest.GetKernelStatus("num_connections")),  # drive and recorder included
            "import_s": import_s,
            "build_s": build_s,
            "warmup_s": warmup_s,
            "rss_after_import_mb": rss0,
            "peak_rss_mb": pc.peak_rss_mb(),
        }
    )
    pc.write(args.out, result)


if __name__ == "__main__":
    main()
