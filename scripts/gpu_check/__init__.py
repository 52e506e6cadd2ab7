"""The prepared check for a lent GPU: what works on CUDA, how fast, and the longest run that fits.
Entry point: scripts/gpu_check.sh, which runs this package (`python -m scripts.gpu_check`) from the
source tree (nothing installed).

    scripts/gpu_check.sh [--minutes 9] [OUT]     # on the GPU machine; OUT: $OUT, else the argument, else runs/gpu
    scripts/gpu_check.sh --rehearse [OUT]        # the same stages and code on this CPU, tiny sizes

Stages, in order of value. Each prints its figures and writes its flat result files to OUT as soon as
it ends, so a command cut short still returns what was done; a stage that fails is reported and the
next one runs (exit status 1 at the end if any failed or was skipped).
  (a) smoke: every path on a few hundred real images: SGD, SWA, EMA, a SIGTERM mid-epoch and the
      resume, bf16, compile, channels-last; pass/fail and seconds per item.
  (b) speed: `swa-bench bench` of VGG-16 and PreResNet-164 (the fast path against the reference-style
      loop at the same precision and in fp32); images/s of the whole device with 1 run and with 3 runs
      sharing it (`swa-bench grid --jobs-per-gpu 3`), and from them the GPU-hours of the CIFAR tables
      (scripts/gpu_hours.py).
  (c) the longest real run that fits the minutes left: the VGG-16 CIFAR-10 SGD + SWA pair, full budget
      or the largest budget scale that fits; its table, seconds per epoch, the share of time outside the
      training steps, and the compile epochs apart.

Runs go to a scratch folder outside the repository (removed at the end unless --keep-scratch); OUT gets
only small flat files (JSON, metrics rows, tables, logs), never checkpoints.

The modules, one job each:
  __main__     the command line, the record of what runs where, the stages in order, summary.json
  sizes        the only thing that differs between the GPU run and its rehearsal
  paths        the source tree, its data and configs
  report       everything printed also goes to OUT/gpu_check.log; small flat files in OUT
  processes    subprocesses: output to a log, a time limit, the process group ended on time-out
  modules      what this python lacks of swa-bench's needs; the tqdm stand-in (stand_ins/tqdm.py)
  check        what the stages share (deadline, child environment) and how one stage is run
  readers      the runs' records, through swa_bench.records
  arithmetic   where an epoch's time went, and the largest budget scale that fits (pure functions)
  data         the smoke tree and the full tree
  smoke        stage (a)
  speed        stage (b): the benches and the projected GPU-hours
  grid         stage (b): images/s of the device with 1 and 3 runs sharing it
  pair         stage (c)

This process stays torch-free in the rehearsal (it starts ~22 processes that import torch; a 2-core
CPU pays 2 s more for each import here): swa-bench is imported only as its records and exit codes,
which do not import torch, and the config and protocol for the pair's arithmetic.
"""
