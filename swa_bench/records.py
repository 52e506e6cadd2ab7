"""A run's directory: resolved config, per-epoch metrics, checkpoints, summary.

    <out>/<dataset>/<model>/<method>/seed<k>[-scale<x>][-subset<n>]/
                                                  (<method>: sgd, swa, swa-<variant> or ema)
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
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import shutil
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import yaml

from swa_bench.columns import Column
from swa_bench.config import LATER_KEYS, RUNTIME_KEYS
from swa_bench.errors import UserError
from swa_bench.outcomes import EXIT_IN_USE
from swa_bench.record_files import (
    CorruptCheckpointError,
    RecordsWriteError,
    atomic_write_bytes,  # noqa: F401
    atomic_write_text,
    checksum_line,
    known_digests,
    on_host,
    read_checkpoint,
    read_json_object,
    rename_in_order,
    sidecar_digest,
    sidecar_of,
    temporaries,
    torch_bytes,
    writing,
)


class RunMismatchError(UserError, RuntimeError):
    """The run directory belongs to a different resolved config."""


class RunLockedError(UserError, RuntimeError):
    """Another process is training in this run directory."""

    exit_status = EXIT_IN_USE


class DamagedRecordsError(UserError, RuntimeError):
    """A record file damaged in a way that resuming would lose data over; phrased as one line."""


def run_dir_for(
    out: str | Path,
    dataset: str,
    model: str,
    method: str,
    seed: int,
    variant: str | None = None,
    budget_scale: float = 1.0,
    train_subset: int | None = None,
) -> Path:
    """A run's directory: OUT/<dataset>/<model>/<method>/seed<k>[-scale<x>][-subset<n>].

    The seed folder says what makes the run another experiment than the paper's full one (a budget
    scale, a training subset), so quick and full runs of a row live side by side. SWA variants of
    one row get method folders of their own; SGD and EMA runs have none (no swa key changes them),
    so every variant compares against the same SGD and EMA runs."""
    folder = f"{method}-{variant}" if variant and method == "swa" else method
    name = (
        f"seed{seed}"
        + (f"-scale{budget_scale:g}" if budget_scale != 1 else "")
        + (f"-subset{train_subset}" if train_subset is not None else "")
    )
    return Path(out) / dataset / model / folder / name


def run_dir_of(out: str | Path, cfg, method: str | None = None) -> Path:
    """The directory of `cfg`'s run (or of its run with another `method`, e.g. its SGD baseline)."""
    return run_dir_for(
        out,
        cfg.data.dataset,
        cfg.model.name,
        method or cfg.run.method,
        cfg.run.seed,
        cfg.swa.variant,
        cfg.run.budget_scale,
        cfg.data.train_subset,
    )


def independent_of(method: str):
    """The config keys a run of `method` does not depend on, as a predicate: each method's section
    belongs to it alone (swa.start_from excepted: it names the row's kind of start), so the runs of
    one row may differ there. (An SGD run keeps the state its FGE run starts from, but its numbers
    do not depend on fge keys; an FGE run checks that state's epoch itself.)"""
    own = {"sgd": (), "swa": ("swa.",), "ema": ("ema.",), "fge": ("fge.",)}[method]

    def independent(key: str) -> bool:
        return key.startswith(("swa.", "ema.", "fge.")) and not key.startswith(own) and key != "swa.start_from"

    return independent


def data_format_mismatch(stored: dict, resolved: dict) -> str | None:
    """Why a run's records do not go with data of another kind (None if they do; runs recorded before
    the format was kept are not checked). data.path is a runtime key, so the path alone says nothing."""
    theirs, mine = stored.get("data_format"), resolved.get("data_format")
    if theirs is None or mine is None or theirs == mine:
        return None
    return f"this run was made from {theirs} files, and the data now given are {mine} files"


def kept_state_name(epoch: int) -> str:
    """The checkpoint name of a run's whole state kept after `epoch` epochs, apart from the rolling
    last.pt/previous.pt (an SGD run keeps the one its FGE run continues from)."""
    return f"state_epoch{epoch}"


def run_identity(config: dict) -> dict:
    """What makes a run this run and no other: its method, seed, and a digest of every config key
    its numbers depend on (runtime keys and other methods' sections left out). Kept in every
    checkpoint, so that a checkpoint copied from another run is recognised as foreign."""
    method = config.get("run", {}).get("method", "sgd")
    ignore = independent_of(method) if method in ("sgd", "swa", "ema", "fge") else (lambda key: False)
    keys = {
        k: v
        for k, v in flatten(config).items()
        if k not in RUNTIME_KEYS and not ignore(k) and not (k in LATER_KEYS and v is None)
    }
    digest = hashlib.sha256(json.dumps(keys, sort_keys=True, default=str).encode()).hexdigest()
    return {"method": method, "seed": config.get("run", {}).get("seed"), "config": digest}


def identity_problem(found, expected: dict, what: str = "state") -> str | None:
    """What makes a file's `found` identity not `expected` (a run_identity), in words; None if it is
    the same, or if the file carries none (written before files carried identities: an older file,
    not a foreign one; its callers check what they can of it otherwise)."""
    if found is None or found == expected:
        return None
    if not isinstance(found, dict):
        return f"its identity ({found!r}) is not a run's"
    same_run = found.get("method") == expected.get("method") and found.get("seed") == expected.get("seed")
    other = "another config" if same_run else f"method {found.get('method')}, seed {found.get('seed')}"
    return f"the {what} of another run ({other}), not of this {expected.get('method')} run"


def member_name(index: int) -> str:
    """The weights file of FGE's `index`-th collected model (from 1)."""
    return f"fge_member{index}"


def member_index(name: str) -> int | None:
    """i of an FGE run's fge_member<i> weights file name (None for any other name)."""
    number = name.removeprefix("fge_member")
    return int(number) if number != name and number.isdigit() and not number.startswith("0") else None


def _summary_problem(summary: dict) -> str | None:
    """What makes `summary` unusable for a table (None if nothing): a foreign or hand-edited file."""
    for key, kind in (
        ("dataset", str),
        ("model", str),
        ("method", str),
        ("seed", int),
        ("results", dict),
        ("budget", (int, float)),
        ("budget_scale", (int, float)),
        ("data", dict),
    ):
        if not isinstance(summary.get(key), kind) or isinstance(summary.get(key), bool):
            return f"{key} is missing or not a {kind.__name__ if isinstance(kind, type) else 'number'}"
    bad = [
        c
        for c, v in summary["results"].items()
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v)
    ]
    if bad:
        return f"result {bad[0]!r} is not a number"
    unknown = [(c, problem) for c in summary["results"] if (problem := Column(c).problem())]
    if unknown:
        return f"result {unknown[0][0]!r} is not a table column ({unknown[0][1]})"
    if not isinstance(summary["data"].get("format"), str):
        return "data.format is missing"
    return None


def _metrics_row(line: str) -> dict | None:
    """A metrics line as a row (a JSON object with an integer epoch), or None if it is not one."""
    try:
        row = json.loads(line)
    except ValueError:
        return None
    if not isinstance(row, dict) or not isinstance(row.get("epoch"), int) or isinstance(row.get("epoch"), bool):
        return None
    return row


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
        self.failure_path = self.dir / "failure.json"  # written by a grid when the run's process failed
        self.row_listeners: list = []  # called with each metrics row once it is on disk (dashboards)

    # -- ownership ---------------------------------------------------------------------------------

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

    @staticmethod
    def find(runs_dir: str | Path, marker: str = "config.yaml") -> list["RunRecords"]:
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
        return [RunRecords(folder) for folder in sorted(found)]

    @staticmethod
    def of_weights_file(path: str | Path) -> "RunRecords":
        """The run a weights file (RUN/checkpoints/NAME.pt) belongs to."""
        return RunRecords(Path(path).resolve().parent.parent)

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

    # -- metrics -----------------------------------------------------------------------------------

    def read_metrics(self, strict: bool = False) -> list[dict]:
        """The metrics rows. A last line cut short by a kill mid-append is left out silently. A
        damaged line elsewhere is left out with a warning naming it, or with `strict` (before the
        file is rewritten) stops with one line naming it: rows are never dropped unnoticed."""
        if not self.metrics_path.exists():
            return []
        try:
            text = self.metrics_path.read_text(errors="replace")
        except OSError as e:
            raise RecordsWriteError(
                f"{self.metrics_path}: cannot read ({os.strerror(e.errno) if e.errno else e})"
            ) from None
        lines = text.split("\n")
        torn = lines.pop()  # "" when the file ends with a newline, as every complete row does
        rows = []
        for number, line in enumerate(lines, start=1):
            row = _metrics_row(line)
            if row is not None:
                rows.append(row)
                continue
            problem = f"{self.metrics_path}: line {number} is damaged (not a metrics row)"
            if strict:
                raise DamagedRecordsError(
                    f"{problem}; repair or delete that line (its epoch is then re-run only "
                    f"if it is after the last checkpoint), nothing was changed"
                )
            warnings.warn(f"{problem}; left out")
        del torn  # a row cut by a kill mid-append; its epoch is re-run
        return rows

    def append_metrics(self, row: dict) -> None:
        with writing(self.metrics_path), open(self.metrics_path, "a") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())
        for listener in self.row_listeners:
            listener(row)

    def keep_metrics_through(self, epoch: int) -> None:
        """Drop rows after `epoch` (epochs re-run on resume) and any torn last line; a damaged row
        elsewhere stops the run rather than be dropped."""
        rows = [r for r in self.read_metrics(strict=True) if r["epoch"] <= epoch]
        atomic_write_text(self.metrics_path, "".join(json.dumps(r) + "\n" for r in rows))

    # -- checkpoints -------------------------------------------------------------------------------

    def checkpoint_path(self, name: str) -> Path:
        return self.checkpoint_dir / f"{name}.pt"

    def save_checkpoint(self, state: dict) -> None:
        """The rolling resume checkpoint: last.pt becomes previous.pt and the new one last.pt, each a
        plain torch.save file with its sha256 in a sidecar (last.pt.sha256, previous.pt.sha256).
        All new files are written out first, so a failed write (no space) leaves everything as it
        was. Then the renames, in an order where a kill after any of them leaves the newest complete
        checkpoint loadable and verified (see _ROLLING): the old last.pt moves to previous.pt while
        last.pt.sha256 still holds its digest; previous.pt.sha256 gets that digest; the new
        last.pt.sha256 arrives while no last.pt exists (previous.pt is the one loaded); the new
        last.pt comes last."""
        payload = torch_bytes(state)
        last, previous = self.checkpoint_path("last"), self.checkpoint_path("previous")
        for path in (last, previous):
            if (path.exists() or path.is_symlink()) and not path.is_file():  # a directory: never deleted here
                raise RecordsWriteError(
                    f"{path}: not a file, so the checkpoints cannot rotate; move it away and "
                    f"run the same command again (nothing else was changed)"
                )
        with writing(last), temporaries() as temp:
            new_last, outgoing = temp(last, payload), self._outgoing_digest()
            renames = [(last, previous)]
            if outgoing is not None:
                renames.append((temp(sidecar_of(previous), checksum_line(outgoing, previous)), sidecar_of(previous)))
            digest = hashlib.sha256(payload).hexdigest()
            renames += [(temp(sidecar_of(last), checksum_line(digest, last)), sidecar_of(last)), (new_last, last)]
            rename_in_order(renames)

    def _outgoing_digest(self) -> str | None:
        """The digest previous.pt.sha256 gets in the next rotation: that of the checkpoint becoming
        previous.pt, as last.pt.sha256 gives it. If a killed rotation already moved last.pt, it is
        previous.pt's own, hashed here, when a sidecar vouches for it: last.pt.sha256 may hold either
        previous.pt's digest (killed before previous.pt.sha256 got it) or that of a last.pt that
        never arrived. None for a file no sidecar describes (the old format checks itself)."""
        last, previous = self.checkpoint_path("last"), self.checkpoint_path("previous")
        if last.exists():
            return sidecar_digest(last)
        if not previous.exists():
            return None
        digest = hashlib.sha256(previous.read_bytes()).hexdigest()
        return digest if digest in known_digests(previous) else None

    def save_weights(self, state: dict, name: str) -> None:
        """A per-column weights file: plain torch.save of host tensors (torch.load reads it anywhere,
        with no map_location), its sha256 beside it."""
        payload = torch_bytes(on_host(state))
        path = self.checkpoint_path(name)
        atomic_write_bytes(path, payload)
        atomic_write_bytes(sidecar_of(path), checksum_line(hashlib.sha256(payload).hexdigest(), path))

    def load_checkpoint(self, name: str = "last", map_location="cpu", accept=None) -> dict | None:
        """The newest intact resume checkpoint (name "last"), or the named weights file; None if
        there is none. A damaged last.pt is reported and previous.pt used instead; so is one that
        `accept(state)` finds a problem with (it returns the problem in words, or None)."""
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
            problem = accept(state) if accept is not None else None
            if problem:
                damaged.append(f"{path}: {problem}")
                continue
            for problem in damaged:
                warnings.warn(f"{problem}; using {path.name} (epoch {state.get('epoch')})")
            return state
        if damaged:
            raise CorruptCheckpointError(
                f"{damaged[-1]}; no intact checkpoint is left: delete {self.dir} to start over"
            )
        return None

    def clean_partial_writes(self) -> None:
        """Remove temporary files that a killed write left behind."""
        for tmp in self.dir.rglob(".*.tmp"):
            tmp.unlink(missing_ok=True)

    # -- ownership while training ------------------------------------------------------------------

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
        for parent in list(self.dir.parents)[:3]:  # <method>/<model>/<dataset> of run_dir_for's layout
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

    # -- summary -----------------------------------------------------------------------------------

    def is_finished(self) -> bool:
        """Whether the run has ended (a summary). A summary.json that is not a file is refused in one line."""
        if self.summary_path.exists() and not self.summary_path.is_file():
            raise DamagedRecordsError(f"{self.summary_path}: not a file; move it away to let the run finish again")
        return self.summary_path.exists()

    def write_summary(self, summary: dict) -> None:
        atomic_write_text(self.summary_path, json.dumps(summary, indent=2) + "\n")

    def read_summary(self) -> dict:
        return json.loads(self.summary_path.read_text())

    def checked_summary(self) -> dict | None:
        """summary.json if the run has one (None if not), checked to be a swa-bench summary: a
        ValueError in words for a file that is not (unreadable, foreign, hand-edited)."""
        try:
            summary = read_json_object(self.summary_path)
        except ValueError as e:
            raise ValueError(f"unreadable ({e})") from None
        problem = None if summary is None else _summary_problem(summary)
        if problem:
            raise ValueError(f"not a swa-bench summary ({problem})")
        problem = None if summary is None else self._disagreement(summary)
        if problem:
            raise ValueError(f"does not agree with its run ({problem})")
        return summary

    def _disagreement(self, summary: dict) -> str | None:
        """What makes `summary` not this run's (None if nothing): a result out of range, a method, seed,
        dataset or model other than config.yaml's, a column the run's protocol does not report, a
        number other than the one its metrics log recorded at that column's report point. A summary
        is written from the run's own state; any of these means it was edited or comes from elsewhere."""
        for column, value in summary["results"].items():
            if not 0 <= value <= 100:
                return f"{column} = {value!r} is not an accuracy in %"
        for column, value in (summary.get("results_nll") or {}).items():
            if (
                not isinstance(value, (int, float))
                or isinstance(value, bool)
                or not (math.isfinite(value) and value >= 0)
            ):
                return f"results_nll {column} = {value!r} is not a test loss"
        try:
            stored = self.stored_config()
        except UserError:
            return f"no readable {self.config_path.name} beside it"
        config, protocol = stored["config"], stored.get("protocol") or {}
        for key, mine in (
            ("method", config.get("run", {}).get("method")),
            ("seed", config.get("run", {}).get("seed")),
            ("dataset", config.get("data", {}).get("dataset")),
            ("model", config.get("model", {}).get("name")),
        ):
            if summary.get(key) != mine:
                return f"its {key} is {summary.get(key)!r}, {self.config_path.name}'s {mine!r}"
        points = protocol.get("report_points")
        if isinstance(points, dict):
            foreign = sorted(set(summary["results"]) - set(points))
            if foreign:
                return f"{foreign[0]} is not a column this run reports ({', '.join(points) or 'none'})"
        recorded = {}
        for row in self.read_metrics():
            for column in row.get("report") or []:
                recorded[column] = (
                    row.get(Column(column).metrics_prefix + "acc") if not Column(column).problem() else None
                )
        for column, value in summary["results"].items():
            if column not in recorded:
                return f"{self.metrics_path.name} records no report of {column}"
            logged = recorded[column]
            if not isinstance(logged, (int, float)) or not math.isclose(value, logged, rel_tol=1e-9, abs_tol=1e-9):
                return f"{column} = {value!r}, but {self.metrics_path.name} recorded {logged!r}"
        return None

    def missing_weights(self, columns) -> list[str]:
        """Table columns of this finished run whose weights file is missing, and for an FGE run the
        collected models its summary lists whose weights it keeps (fge_member<i>). A copy of the
        records without any checkpoints folder (results/) lacks them on purpose: nothing is missing there."""
        if not self.checkpoint_dir.is_dir():
            return []
        names = list(columns)
        if any(Column(c).ensemble for c in names):
            names += self.kept_member_names()
        return [c for c in names if not self.checkpoint_path(c).is_file()]

    def kept_member_names(self) -> list[str]:
        """The weights files (fge_member1, ...) of the collected models an ended FGE run's summary
        lists and its fge.keep_models keeps ([] if the summary or config is not readable)."""
        try:
            members = (read_json_object(self.summary_path) or {}).get("fge_members")
            stored = yaml.safe_load(self.config_path.read_text())
            keep = ((stored or {}).get("config") or {}).get("fge", {}).get("keep_models")
        except (OSError, ValueError, yaml.YAMLError, AttributeError):
            return []
        if not isinstance(members, list):
            return []
        kept = len(members) if not isinstance(keep, int) or isinstance(keep, bool) else min(len(members), keep)
        return [member_name(i) for i in range(1, kept + 1)]
