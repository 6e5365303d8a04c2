"""Run the harness's network in Brian2 (runtime mode, Cython target, one thread) and time the model run.

Invoked by the harness as ``<venv>/bin/python benchmarks/peers/brian2_brunel.py --edges <npz> --out <json>``
in the Brian2 virtual environment (numpy < 2.3). Model, as torchsnn's LIFPopulation:

    dv/dt = -v / tau_m   (unless refractory)      threshold v >= theta, reset v = V_r, refractory t_ref
    recurrent synapses: v_post += w (per synapse, signed mV) after delay d, lost while the target is refractory
    drive: PoissonInput(N = k_ext, rate = nu_ext, weight = j_ext), lost while refractory

Brian2's default schedule (state update, threshold, synapses, reset) adds a step's input after that step's
threshold test, i.e. one step later than torchsnn and NEST (which add it before the test): a small, known
difference in the discretisation, checked by the harness through the rates.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import peer_common as pc


def main() -> None:
    args = pc.parse_args(__doc__.splitlines()[0])
    spec, arrays = pc.load_network(args.edges)
    threads = args.threads or spec["threads"].get("brian2", 1)
    pc.limit_threads(threads)
    clock = pc.Stopwatch()
    import brian2 as b2
    import numpy as np

    b2.prefs.codegen.target = "cython"
    b2.prefs.logging.console_log_level = "WARNING"
    b2.set_device("runtime")
    b2.defaultclock.dt = spec["dt_ms"] * b2.ms
    b2.seed(spec["seed"])
    import_s = clock.lap()
    rss0 = pc.rss_mb()

    neuron, drive = pc.uniform_parameters(spec)
    n_total = sum(p["size"] for p in spec["populations"])
    ns = {
        "tau_m": neuron["tau_m_ms"] * b2.ms,
        "theta": neuron["theta_mv"] * b2.mV,
        "v_r": neuron["v_reset_mv"] * b2.mV,
        "v_lo": neuron["v_init_low_mv"] * b2.mV,
        "v_hi": neuron["v_init_high_mv"] * b2.mV,
    }
    group = b2.NeuronGroup(
        n_total,
        "dv/dt = -v / tau_m : volt (unless refractory)",
        threshold="v >= theta",
        reset="v = v_r",
        refractory=neuron["tau_ref_ms"] * b2.ms,
        method="exact",
        namespace=ns,
    )
    group.v = "v_lo + (v_hi - v_lo) * rand()"
    delay = arrays["delay_ms"]
    uniform_delay = bool(delay.size == 0 or np.all(delay == delay[0]))
    # one delay for all synapses: Brian2's homogeneous-delay spike queue (its fastest path) with the same value
    syn = b2.Synapses(
        group,
        group,
        "w : volt",
        on_pre="v_post += w * int(not_refractory_post)",
        delay=(float(delay[0]) * b2.ms) if uniform_delay and delay.size else None,
    )
    syn.connect(i=arrays["pre"].astype(np.int32), j=arrays["post"].astype(np.int32))
    syn.w[:] = arrays["weight_mv"].astype(np.float64) * b2.mV
    if not uniform_delay:
        syn.delay[:] = delay.astype(np.float64) * b2.ms
    objects = [group, syn]
    if drive["k_ext"] > 0 and drive["nu_ext_hz"] > 0:
        objects.append(
            b2.PoissonInput(
                group,
                "v",
                N=int(drive["k_ext"]),
                rate=drive["nu_ext_hz"] * b2.Hz,
                weight=f"{drive['j_ext_mv']} * mV * int(not_refractory)",
            )
        )
    if drive.get("k_ext_inh", 0) > 0 and drive.get("nu_ext_inh_hz", 0) > 0:
        objects.append(
            b2.PoissonInput(
                group,
                "v",
                N=int(drive["k_ext_inh"]),
                rate=drive["nu_ext_inh_hz"] * b2.Hz,
                weight=f"-{drive['j_ext_inh_mv']} * mV * int(not_refractory)",
            )
        )
    monitor = b2.SpikeMonitor(group, record=False)
    objects.append(monitor)
    net = b2.Network(*objects)
    build_s = clock.lap()
    net.run(spec["warmup_ms"] * b2.ms)  # includes code generation and Cython compilation (cached on disk)
    warmup_s = clock.lap()
    counts, walls = [], []
    for _ in range(int(spec.get("repeats", 1))):
        before = np.array(monitor.count[:], dtype=np.int64)
        clock.lap()
        net.run(spec["duration_ms"] * b2.ms)
        walls.append(clock.lap())
        counts.append(np.array(monitor.count[:], dtype=np.int64) - before)
    result = pc.summarise(spec, arrays, counts, walls)
    result.update(
        {
            "peer": "brian2",
            "version": b2.__version__,
            "numpy": np.__version__,
            "target": b2.prefs.codegen.target,
            "threads": threads,
            "delay_mode": "homogeneous" if uniform_delay else "per-synapse",
            "n_synapses": len(syn),
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
