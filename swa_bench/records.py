"""A run's directory: resolved config, per-epoch metrics, checkpoints, summary.

    <out>/<dataset>/<model>/<method>/seed<k>/     (<method>: sgd, swa, or swa-<variant>)
        config.yaml      the resolved config (+ protocol and overrides); owns the directory
        metrics.jsonl    one JSON row per finished epoch
        checkpoints/     last.pt and previous.pt (rolling, checksummed), and one weights file per
                         report point (sgd.pt, swa_1.5.pt...: plain torch files, with a .sha256 beside)
        summary.json     written when the run has finished (or diverged)
        .lock            held by the process training the run

Every file that replaces another is written atomically (temp file, fsync, rename), so a kill at any
moment leaves either the old or the new version, never a torn one. The rolling checkpoints carry the
sha256 of their contents: one damaged later (a bad disk, a truncated copy) is detected, reported, and
the one before it is used.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import tempfile
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from swa_bench.config import RUNTIME_KEYS
from swa_bench.errors import UserError


class RunMismatchError(UserError, RuntimeError):
    """The run directory belongs to a different resolved config."""


class RecordsWriteError(UserError, RuntimeError):
    """A record could not be written (no space, no permission...); what was there before is intact."""


class RunLockedError(UserError, RuntimeError):
    """Another process is training in this run directory."""


class CorruptCheckpointError(UserError, RuntimeError):
    """A checkpoint file whose contents do not match its checksum, or that is cut short."""


# Fault injection for the tests: seconds to pause inside every atomic write, after the data is in the
# temporary file and before it replaces the old one, so that a kill can land mid-write.
_WRITE_PAUSE = float(os.environ.get("SWA_BENCH_WRITE_PAUSE", "0") or 0)


def run_dir_for(out: str | Path, dataset: str, model: str, method: str, seed: int, variant: str | None = None) -> Path:
    """A run's directory. SWA variants of one row get folders of their own; SGD runs have none
    (no swa key changes an SGD run), so every variant compares against the same SGD runs."""
    folder = f"{method}-{variant}" if variant and method != "sgd" else method
    return Path(out) / dataset / model / folder / f"seed{seed}"


def run_dir_of(out: str | Path, cfg, method: str | None = None) -> Path:
    """The directory of `cfg`'s run (or of its run with another `method`, e.g. its SGD baseline)."""
    method = method or cfg.run.method
    return run_dir_for(out, cfg.data.dataset, cfg.model.name, method, cfg.run.seed, cfg.swa.variant)


def sgd_independent(key: str) -> bool:
    """Config keys an SGD run does not depend on: the SWA section, except where it starts from."""
    return key.startswith("swa.") and key != "swa.start_from"


# --------------------------------------------------------------------------------------------------
# Atomic file writes


@contextmanager
def _writing(path: Path):
    """Turn OS errors of writing `path` into one RecordsWriteError line."""
    try:
        yield
    except OSError as e:
        reason = os.strerror(e.errno) if e.errno else str(e)
        hint = "; the previous version is intact" if path.exists() else ""
        raise RecordsWriteError(f"{path}: cannot write ({reason}){hint}") from None


def atomic_write_bytes(path: Path, data: bytes, keep_old_as: Path | None = None) -> None:
    """Write `data` to a temporary file beside `path`, then rename it over `path` (first moving the
    old `path` to `keep_old_as`, if given). Until the data is safely written nothing is replaced."""
    with _writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            if _WRITE_PAUSE:
                time.sleep(_WRITE_PAUSE)
            if keep_old_as is not None and path.exists():
                os.replace(path, keep_old_as)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def _torch_bytes(obj: Any) -> bytes:
    import torch  # here, not at the top: read-only commands (table, status) never load torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def atomic_torch_save(obj: Any, path: Path) -> None:
    atomic_write_bytes(path, _torch_bytes(obj))


# A rolling checkpoint file: this magic line, the sha256 of the payload, then the payload (what
# torch.save writes). Read it with `read_checkpoint`.
_MAGIC = b"swa-bench checkpoint v1\n"


def read_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """A checkpoint file's state (rolling or per-column), checked against its checksum when it has one;
    raises CorruptCheckpointError naming the file otherwise."""
    path = Path(path)
    data = path.read_bytes()
    if data.startswith(_MAGIC):
        digest, payload = data[len(_MAGIC):len(_MAGIC) + 32], data[len(_MAGIC) + 32:]
        if len(digest) < 32 or hashlib.sha256(payload).digest() != digest:
            raise CorruptCheckpointError(f"{path}: contents do not match their checksum (truncated or damaged)")
    else:
        payload = data
        sidecar = path.with_name(path.name + ".sha256")
        if sidecar.exists() and hashlib.sha256(payload).hexdigest() != sidecar.read_text().split()[0]:
            raise CorruptCheckpointError(f"{path}: contents do not match {sidecar.name} (truncated or damaged)")
    import torch

    try:
        return torch.load(io.BytesIO(payload), map_location=map_location, weights_only=True)
    except Exception as e:
        raise CorruptCheckpointError(f"{path}: not a readable checkpoint ({e.__class__.__name__})") from None


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not possible on every platform, harmless to skip there.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, f"{key}."))
        else:
            out[key] = v
    return out


def config_differences(theirs: dict, mine: dict, ignore=lambda key: False) -> list[tuple[str, object, object]]:
    """(dotted key, their value, my value) for every key two configs disagree on, skipping runtime-only
    keys (device, loader, paths...) and any key `ignore` accepts."""
    a, b = flatten(theirs), flatten(mine)
    return [
        (key, a.get(key), b.get(key))
        for key in sorted(set(a) | set(b))
        if key not in RUNTIME_KEYS and not ignore(key) and a.get(key) != b.get(key)
    ]


# --------------------------------------------------------------------------------------------------


class RunRecords:
    def __init__(self, run_dir: str | Path):
        self.dir = Path(run_dir)
        self.config_path = self.dir / "config.yaml"
        self.metrics_path = self.dir / "metrics.jsonl"
        self.summary_path = self.dir / "summary.json"
        self.checkpoint_dir = self.dir / "checkpoints"

    # -- ownership ---------------------------------------------------------------------------------

    def claim(self, resolved: dict) -> bool:
        """Record `resolved` as this directory's config, or check that the existing run has the same
        one (runtime-only keys such as the device may differ). Returns True if the run existed."""
        if not self.config_path.exists():
            atomic_write_text(self.config_path, yaml.safe_dump(resolved, sort_keys=False))
            return False
        stored = yaml.safe_load(self.config_path.read_text()) or {}
        # An SGD run serves every SWA setting of its row, so SWA keys may differ between its users.
        is_sgd = resolved.get("config", {}).get("run", {}).get("method") == "sgd"
        ignore = sgd_independent if is_sgd else (lambda key: False)
        for key, theirs, mine in config_differences(stored.get("config", {}), resolved.get("config", {}), ignore):
            raise RunMismatchError(
                f"{self.dir}: this run was made with {key}={theirs!r}, not {mine!r}; "
                f"use another --out, or delete the directory to start over"
            )
        return True

    def stored_config(self) -> dict:
        return yaml.safe_load(self.config_path.read_text())

    # -- metrics -----------------------------------------------------------------------------------

    def read_metrics(self) -> list[dict]:
        if not self.metrics_path.exists():
            return []
        rows = []
        for line in self.metrics_path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a line cut by a kill mid-append; everything after it is gone too
        return rows

    def append_metrics(self, row: dict) -> None:
        with _writing(self.metrics_path), open(self.metrics_path, "a") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def keep_metrics_through(self, epoch: int) -> None:
        """Drop rows after `epoch` (epochs re-run on resume) and any torn last line."""
        rows = [r for r in self.read_metrics() if r["epoch"] <= epoch]
        atomic_write_text(self.metrics_path, "".join(json.dumps(r) + "\n" for r in rows))

    # -- checkpoints -------------------------------------------------------------------------------

    def checkpoint_path(self, name: str) -> Path:
        return self.checkpoint_dir / f"{name}.pt"

    def save_checkpoint(self, state: dict) -> None:
        """The rolling resume checkpoint: once the new one is written out, the current last.pt becomes
        previous.pt and the new one last.pt. A kill between the two renames leaves previous.pt, which
        resumes; a failed write (no space) leaves both as they were."""
        payload = _torch_bytes(state)
        last, previous = self.checkpoint_path("last"), self.checkpoint_path("previous")
        atomic_write_bytes(last, _MAGIC + hashlib.sha256(payload).digest() + payload, keep_old_as=previous)

    def save_weights(self, state: dict, name: str) -> None:
        """A per-column weights file: plain torch.save (torch.load reads it), its sha256 beside it."""
        payload = _torch_bytes(state)
        path = self.checkpoint_path(name)
        atomic_write_bytes(path, payload)
        atomic_write_text(path.with_name(path.name + ".sha256"), f"{hashlib.sha256(payload).hexdigest()}  {path.name}\n")

    def load_checkpoint(self, name: str = "last", map_location="cpu") -> dict | None:
        """The newest intact resume checkpoint (name "last"), or the named weights file; None if
        there is none. A damaged last.pt is reported and previous.pt used instead."""
        candidates = [name, "previous"] if name == "last" else [name]
        damaged = []
        for candidate in candidates:
            path = self.checkpoint_path(candidate)
            if not path.exists():
                continue
            try:
                state = read_checkpoint(path, map_location)
            except CorruptCheckpointError as e:
                damaged.append(str(e))
                continue
            for problem in damaged:
                warnings.warn(f"{problem}; using {path.name} (epoch {state.get('epoch')})")
            return state
        if damaged:
            raise CorruptCheckpointError(f"{damaged[-1]}; no intact checkpoint is left: delete {self.dir} to start over")
        return None

    def clean_partial_writes(self) -> None:
        """Remove temporary files that a killed write left behind."""
        for tmp in self.dir.rglob(".*.tmp"):
            tmp.unlink(missing_ok=True)

    # -- ownership while training ------------------------------------------------------------------

    @contextmanager
    def lock(self):
        """Hold the run directory for this process. The lock is the OS's (flock): it goes with the
        process, so a killed run never leaves it stuck."""
        try:
            import fcntl
        except ImportError:  # not on POSIX: no locking
            yield
            return
        with _writing(self.dir):
            self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / ".lock"
        with _writing(path):
            handle = open(path, "a+")
        try:
            # A few tries: `swa-bench status` probes the lock for an instant, which must not look
            # like another training process.
            for _ in range(20):
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as e:
                    if e.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                    time.sleep(0.05)
            else:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                raise RunLockedError(
                    f"{self.dir}: in use by {holder}; wait for it to finish, or stop it (its checkpoints resume)"
                ) from None
            handle.seek(0)
            handle.truncate()
            handle.write(f"swa-bench train pid {os.getpid()} on {os.uname().nodename}\n")
            handle.flush()
            yield
        finally:
            handle.close()

    # -- summary -----------------------------------------------------------------------------------

    def is_finished(self) -> bool:
        return self.summary_path.exists()

    def write_summary(self, summary: dict) -> None:
        atomic_write_text(self.summary_path, json.dumps(summary, indent=2) + "\n")

    def read_summary(self) -> dict:
        return json.loads(self.summary_path.read_text())
