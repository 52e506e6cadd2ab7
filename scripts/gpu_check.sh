#!/usr/bin/env bash
# The one prepared run for a lent GPU (an H200 through the device tool, or any CUDA machine), and its
# rehearsal on a CPU. The stages and their figures are described in scripts/gpu_check/__init__.py (the
# package this runs, a module per job) and in docs/PERFORMANCE.md ("The GPU check").
#   usage: scripts/gpu_check.sh [--minutes 9] [OUT]      on the GPU; results to $OUT, else OUT, else runs/gpu
#          scripts/gpu_check.sh --rehearse [OUT]         the same stages on this CPU, tiny sizes (~2 minutes)
# Data: data/cifar10-jpg/, else data/cifar10-jpg.tar.gz (copy ../shared/data/cifar10-jpg.tar.gz into the
# git-ignored data/ folder and carry it), else ../shared/data/cifar10-jpg.tar.gz. Runs from the source
# tree without installing: python3 needs torch, torchvision, click, pyyaml, pandas and tabulate.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
# This checkout's virtualenv when there is one (the GPU machine has none: its python3 has torch).
python=${PYTHON:-python3}
[ -z "${PYTHON:-}" ] && [ -x .venv/bin/python ] && python=.venv/bin/python
exec "$python" -u -m scripts.gpu_check "$@"
