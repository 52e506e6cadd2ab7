"""A run's directory: resolved config, per-epoch metrics, checkpoints, summary.

    <out>/<dataset>/<model>/<method>/seed<k>[-scale<x>][-subset<n>]/
                                                  (<method>: the method's folder, swa-<variant> for an SWA variant)
        config.yaml      the resolved config (+ protocol and overrides); owns the directory
        metrics.jsonl    one JSON row per finished epoch
        checkpoints/     last.pt and previous.pt (rolling), and one weights file per report point
                         (sgd.pt, swa_1.5.pt...): all plain torch files (torch.load reads them), each
                         with its sha256 in a sidecar beside it (last.pt.sha256...); an SGD run of a
                         row with FGE also keeps state_epoch<k>.pt (its state at fge.start x B), an
                         FGE run fge_member<i>.pt (each collected model, up to fge.keep_models); each
                         carries the run's identity (run_identity), a member also its index and epoch
        summary.json     written when the run has finished (or diverged)
        .lock            held by the process training the run

Every file that replaces another is written atomically (temp file, fsync, rename), so a kill at any
moment leaves either the old or the new version, never a torn one; the rolling checkpoints rotate in
an order where a kill after any rename leaves the newest complete one loadable. Checkpoints are
checked against their sidecars: one damaged later (a bad disk, a truncated copy) is detected,
reported, and the one before it is used. Files get the mode open() would give (0o666 less the
umask), so that colleagues on a shared filesystem can read the runs.

RunRecords is the folder with everything in it, one concern per module: folder.py (paths, config.yaml,
the lock, failure records, finding runs), metrics.py (metrics.jsonl), checkpoints.py (checkpoints/),
summary_file.py (summary.json; what it holds and its checks: swa_bench/summary.py). A run's identity
and its folder's place under --out are swa_bench/identity.py's.
"""

from __future__ import annotations

from swa_bench.identity import run_dir_of, run_identity  # noqa: F401  (readers of the records ask these here too)
from swa_bench.record_files import (  # noqa: F401
    CorruptCheckpointError,
    RecordsWriteError,
    atomic_write_text,
    read_checkpoint,
    sidecar_of,
)
from swa_bench.records.checkpoints import Checkpoints, kept_state_name, member_index, member_name  # noqa: F401
from swa_bench.records.folder import DamagedRecordsError, RunFolder, RunLockedError, RunMismatchError  # noqa: F401
from swa_bench.records.metrics import MetricsLog
from swa_bench.records.summary_file import SummaryFile


class RunRecords(RunFolder, MetricsLog, Checkpoints, SummaryFile):
    """A run's folder and everything in it."""
