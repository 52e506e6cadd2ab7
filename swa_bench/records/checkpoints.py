"""A run's checkpoints/: the rolling resume checkpoints (last.pt, previous.pt) and the weights files
(one per table cell, FGE's collected models, the state an SGD run keeps for its FGE run), each a plain
torch file with its sha256 in a sidecar."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import yaml

from swa_bench.columns import Column
from swa_bench.record_files import (
    CorruptCheckpointError,
    RecordsWriteError,
    atomic_write_bytes,
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


def kept_state_name(epoch: int) -> str:
    """The checkpoint name of a run's whole state kept after `epoch` epochs, apart from the rolling
    last.pt/previous.pt (an SGD run keeps the one its FGE run continues from)."""
    return f"state_epoch{epoch}"


def member_name(index: int) -> str:
    """The weights file of FGE's `index`-th collected model (from 1)."""
    return f"fge_member{index}"


def member_index(name: str) -> int | None:
    """i of an FGE run's fge_member<i> weights file name (None for any other name)."""
    number = name.removeprefix("fge_member")
    return int(number) if number != name and number.isdigit() and not number.startswith("0") else None


class Checkpoints:
    """Reads and writes RUN/checkpoints/ (the folder's `checkpoint_dir`)."""

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
