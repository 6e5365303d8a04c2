"""Harness side of the peer runs: export the network, call ``<venv>/bin/python <peer script>``, read its JSON."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from torchsnn.network import Network

HERE = Path(__file__).resolve().parent
VENVS = HERE.parent / ".venvs"
SCRIPTS = {"brian2": HERE / "brian2_brunel.py", "nest": HERE / "nest_brunel.py"}
DEFAULT_THREADS = {"brian2": 1, "nest": 2}


MODULES = {"brian2": "brian2", "nest": "nest"}


def peer_python(peer: str) -> Path | None:
    """The peer's interpreter: ``$TORCHSNN_BENCH_<PEER>_PYTHON``, else ``benchmarks/.venvs/<peer>/bin/python``,
    else this interpreter when the peer is installed here (the ``bench`` extra), else None."""
    override = os.environ.get(f"TORCHSNN_BENCH_{peer.upper()}_PYTHON")
    if override:
        return Path(override) if Path(override).exists() else None
    path = VENVS / peer / "bin" / "python"
    if path.exists():
        return path
    if importlib.util.find_spec(MODULES[peer]) is not None:
        return Path(sys.executable)
    return None


def population_spec(network: Network, cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """Neuron and drive parameters of every population, as the peers need them."""
    offsets, start, out = {}, 0, []
    for name, pop in network.populations.items():
        offsets[name] = start
        drive = network.drives[name] if name in network.drives else None  # noqa: SIM401 (ModuleDict)
        out.append(
            {
                "name": name,
                "offset": start,
                "size": pop.size,
                "neuron": {
                    "tau_m_ms": pop.tau_m_ms,
                    "theta_mv": pop.theta_mv,
                    "v_reset_mv": pop.v_reset_mv,
                    "tau_ref_ms": pop.tau_ref_ms,
                    "v_init_low_mv": pop.v_init_low_mv,
                    "v_init_high_mv": pop.v_init_high_mv,
                },
                "drive": {}
                if drive is None
                else {
                    "k_ext": drive.k_ext,
                    "nu_ext_hz": drive.nu_ext_hz,
                    "j_ext_mv": drive.j_ext_mv,
                    "k_ext_inh": drive.k_ext_inh,
                    "nu_ext_inh_hz": drive.nu_ext_inh_hz,
                    "j_ext_inh_mv": drive.j_ext_inh_mv,
                },
            }
        )
        start += pop.size
    return out


def export_network(
    network: Network,
    cfg: dict[str, Any],
    stem: Path,
    *,
    warmup_ms: float,
    duration_ms: float,
    seed: int,
    repeats: int = 1,
) -> Path:
    """Write ``stem.npz`` (edges) and ``stem.json`` (everything else); returns the npz path."""
    edges = network.export_edges()
    stem.parent.mkdir(parents=True, exist_ok=True)
    npz = stem.with_suffix(".npz")
    np.savez(
        npz,
        pre=edges["pre"].numpy().astype(np.int32),
        post=edges["post"].numpy().astype(np.int32),
        weight_mv=edges["weight_mv"].numpy().astype(np.float32),
        delay_ms=edges["delay_ms"].numpy().astype(np.float32),
    )
    spec = {
        "populations": population_spec(network, cfg),
        "offsets": edges["offsets"],
        "dt_ms": network.dt_ms,
        "warmup_ms": warmup_ms,
        "duration_ms": duration_ms,
        "repeats": repeats,
        "seed": seed,
        "threads": dict(DEFAULT_THREADS),
    }
    stem.with_suffix(".json").write_text(json.dumps(spec, indent=2))
    return npz


def run_peer(peer: str, npz: Path, out: Path, threads: int | None = None, timeout_s: float = 3600) -> dict[str, Any]:
    """Run one peer; returns its result dict, or ``{"peer": ..., "error": ...}`` when it could not run."""
    python = peer_python(peer)
    if python is None:
        return {
            "peer": peer,
            "error": f"no interpreter at {VENVS / peer / 'bin/python'}: run bash benchmarks/peers/setup_envs.sh {peer}",
        }
    cmd = [str(python), str(SCRIPTS[peer]), "--edges", str(npz), "--out", str(out)]
    if threads:
        cmd += ["--threads", str(threads)]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env)
    if proc.returncode != 0 or not out.exists():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-15:]
        return {"peer": peer, "error": f"exit {proc.returncode}: " + "\n".join(tail)}
    result = json.loads(out.read_text())
    result["python"] = str(python)
    return result
