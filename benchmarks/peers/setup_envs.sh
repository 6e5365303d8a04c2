#!/usr/bin/env bash
# Create the peer simulators' virtual environments used by `python -m benchmarks.run --peers ...`.
#
#   benchmarks/.venvs/brian2   numpy<2.3 (Brian2 2.9 does not support numpy 2.3+), brian2, cython
#   benchmarks/.venvs/nest     nest-simulator (PyPI wheel, cp311 manylinux), numpy
#
# Each peer runs in its own environment, in a subprocess, so the peers' numpy pins never touch the environment
# torchsnn runs in. Usage: bash benchmarks/peers/setup_envs.sh [brian2] [nest]   (default: both)
# PYTHON selects the interpreter the environments are built from (default: python3).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venvs="$here/.venvs"
py="${PYTHON:-python3}"
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(brian2 nest)
mkdir -p "$venvs"

for t in "${targets[@]}"; do
  case "$t" in
    brian2)
      "$py" -m venv "$venvs/brian2"
      "$venvs/brian2/bin/python" -m pip install --quiet --upgrade pip setuptools wheel
      "$venvs/brian2/bin/python" -m pip install --quiet "numpy<2.3" "brian2>=2.9" cython
      "$venvs/brian2/bin/python" -c "import brian2, numpy; print('brian2', brian2.__version__, 'numpy', numpy.__version__)"
      ;;
    nest)
      "$py" -m venv "$venvs/nest"
      "$venvs/nest/bin/python" -m pip install --quiet --upgrade pip
      "$venvs/nest/bin/python" -m pip install --quiet nest-simulator numpy
      "$venvs/nest/bin/python" -c "import nest; print('nest', nest.__version__)"
      ;;
    *)
      echo "unknown peer: $t (brian2 | nest)" >&2
      exit 2
      ;;
  esac
done
