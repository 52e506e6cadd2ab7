"""A run's folder: the paths of its files, its identity file (config.yaml: claimed, read back), the lock
of the process training it, a grid's failure records, and finding runs under a folder."""

from __future__ import annotations

import errno
import json
import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

import yaml

from swa_bench.errors import UserError
from swa_bench.identity import LAYOUT, config_differences, data_format_mismatch, independent_of
from swa_bench.outcomes import EXIT_IN_USE
from swa_bench.record_files import atomic_write_text, read_json_object, writing


class RunMismatchError(UserError, RuntimeError):
    """The run directory belongs to a different resolved config."""


class RunLockedError(UserError, RuntimeError):
    """Another process is training in this run directory."""

    exit_status = EXIT_IN_USE


class DamagedRecordsError(UserError, RuntimeError):
    """A record file damaged in a way that resuming would lose data over; phrased as one line."""


class RunFolder:
    def __init__(self, run_dir: str | Path):
        self.dir = Path(run_dir)
        self.config_path = self.dir / "config.yaml"
        self.metrics_path = self.dir / "metrics.jsonl"
        self.summary_path = self.dir / "summary.json"
        self.checkpoint_dir = self.dir / "checkpoints"
        self.failure_path = self.dir / "failure.json"  # written by a grid when the run's process failed

    def claim(self, resolved: dict) -> bool:
        """Record `resolved` as this directory's config, or check that the existing run has the same
        one (runtime-only keys such as the device may differ). Returns True if the run existed.
        config.yaml is the run's identity: a run with records but no readable config.yaml is refused,
        never given a new identity over records made under an unknown one."""
        if not self.config_path.exists() and not self.config_path.is_symlink():
            if self.has_records():
                raise RunMismatchError(
                    f"{self.config_path}: missing, but {self.dir} holds a run's records; without its config the run "
                    "cannot be resumed (its settings are unknown): restore config.yaml, or delete the "
                    "directory to start over"
                )
            atomic_write_text(self.config_path, yaml.safe_dump(resolved, sort_keys=False))
            return False
        stored = self.stored_config()
        mismatch = data_format_mismatch(stored, resolved)
        if mismatch:
            raise RunMismatchError(f"{self.dir}: {mismatch}; use another --out, or delete the directory to start over")
        # An SGD run serves every SWA setting of its row, so SWA keys may differ between its users.
        ignore = independent_of(resolved.get("config", {}).get("run", {}).get("method", "sgd"))
        for key, theirs, mine in config_differences(stored.get("config", {}), resolved.get("config", {}), ignore):
            raise RunMismatchError(
                f"{self.dir}: this run was made with {key}={theirs!r}, not {mine!r}; "
                f"use another --out, or delete the directory to start over"
            )
        return True

    @classmethod
    def find(cls, runs_dir: str | Path, marker: str = "config.yaml") -> list:
        """The run directories under `runs_dir` that hold `marker` (config.yaml: every claimed run;
        summary.json: the ended ones; failure.json: those a grid saw fail), sorted. Folders reached
        through symbolic links count (runs kept on another disk), each real folder once."""
        found, seen = [], set()
        for folder, subfolders, files in os.walk(runs_dir, followlinks=True):
            real = os.path.realpath(folder)
            if real in seen:  # a link back up the tree, or a second link to the same folder
                subfolders[:] = []
                continue
            seen.add(real)
            subfolders.sort()
            if marker in files:
                found.append(Path(folder))
        return [cls(folder) for folder in sorted(found)]

    @classmethod
    def of_weights_file(cls, path: str | Path):
        """The run a weights file (RUN/checkpoints/NAME.pt) belongs to."""
        return cls(Path(path).resolve().parent.parent)

    def stored_protocol(self) -> dict:
        """The protocol config.yaml records ({} if it is missing or damaged: progress unknown)."""
        try:
            stored = yaml.safe_load(self.config_path.read_text())
        except (OSError, ValueError, yaml.YAMLError):
            return {}
        protocol = stored.get("protocol") if isinstance(stored, dict) else None
        return protocol if isinstance(protocol, dict) else {}

    # -- failure records (grids) -------------------------------------------------------------------

    def read_failure(self) -> dict | None:
        """The failure record a grid left here, or None; a damaged one still counts as a failure. A
        run that has since ended (a summary) has no current failure: the record belonged to an
        attempt that another one superseded."""
        if self.summary_path.exists():
            return None
        try:
            failure = read_json_object(self.failure_path)
        except ValueError as e:
            return {"error": f"unreadable failure record ({e})"}
        return None if failure is None else {**failure, "error": str(failure.get("error", ""))}

    def write_failure(self, failure: dict) -> None:
        atomic_write_text(self.failure_path, json.dumps(failure, indent=1) + "\n")

    def clear_failure(self) -> None:
        self.failure_path.unlink(missing_ok=True)

    def stored_config(self) -> dict:
        """config.yaml as written by `claim`: a mapping with a `config` mapping; anything else (missing,
        unreadable, empty, damaged) is a RunMismatchError naming the file."""
        problem = None
        try:
            stored = yaml.safe_load(self.config_path.read_text())
        except OSError as e:
            problem = f"cannot be read ({os.strerror(e.errno) if e.errno else e})"
        except (ValueError, yaml.YAMLError):
            problem = "is not valid YAML"
        else:
            if not isinstance(stored, dict) or not isinstance(stored.get("config"), dict):
                problem = "is not a run's config (no config section)"
        if problem:
            raise RunMismatchError(
                f"{self.config_path}: {problem}; the run's identity is lost, so it is not resumed "
                f"or used: restore the file, or delete {self.dir} to start over"
            )
        return stored

    def has_records(self) -> bool:
        """Whether anything of a started run is here: metrics rows, checkpoints or a summary."""
        return (
            self.summary_path.exists()
            or any(self.checkpoint_dir.glob("*.pt"))
            or (self.metrics_path.is_file() and self.metrics_path.stat().st_size > 0)
        )

    def clean_partial_writes(self) -> None:
        """Remove temporary files that a killed write left behind."""
        for tmp in self.dir.rglob(".*.tmp"):
            tmp.unlink(missing_ok=True)

    # -- the process training it -------------------------------------------------------------------

    @contextmanager
    def lock(self):
        """Hold the run directory for this process. The lock is the OS's (a POSIX record lock): it
        goes with the process, so a killed run never leaves it stuck, and unlike flock it is not
        inherited by forked children, so DataLoader workers that outlive a killed run for a moment
        do not hold it."""
        if os.name != "posix":  # no record locks there: no locking
            yield
            return
        with writing(self.dir):
            self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / ".lock"
        with writing(path):
            handle = open(path, "a+")
        try:
            # A few tries: `swa-bench status` probes the lock for an instant, which must not look
            # like another training process.
            for _ in range(20):
                if _try_lock(handle):
                    break
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

    def remove_if_unstarted(self) -> bool:
        """Remove the directory of a run whose start failed before it recorded anything (no metrics
        row, checkpoint or summary: only its claimed config and lock), and the folders above it
        that this leaves empty, so that the corrected command starts afresh. Returns whether it did."""
        if self.has_records():
            return False
        shutil.rmtree(self.dir, ignore_errors=True)
        for parent in list(self.dir.parents)[: len(LAYOUT) - 1]:  # <method>/<model>/<dataset>
            try:
                parent.rmdir()  # only if empty
            except OSError:
                break
        return True

    def in_use(self) -> bool:
        """Whether a training process holds this run now (probed for an instant)."""
        path = self.dir / ".lock"
        if not path.exists():
            return False
        if os.name != "posix":  # no record locks there: no locking
            return False
        import fcntl

        with open(path, "a") as handle:
            if not _try_lock(handle):
                return True
            fcntl.lockf(handle, fcntl.LOCK_UN)
            return False


def _try_lock(handle) -> bool:
    """Take an exclusive POSIX record lock on `handle` without waiting; False if another process holds it."""
    import fcntl

    try:
        fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as e:
        if e.errno not in (errno.EAGAIN, errno.EACCES):
            raise
        return False
