"""How record files are written and read: atomically (a temporary file, fsync, rename), with the
permissions the umask gives, and checkpoints checked against the sha256 in the sidecar beside them.
RunRecords (swa_bench/records/) decides which files a run has; this module, how any one of them is written."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from swa_bench.errors import UserError


class RecordsWriteError(UserError, RuntimeError):
    """A record could not be written (no space, no permission...); what was there before is intact."""


class CorruptCheckpointError(UserError, RuntimeError):
    """A checkpoint file whose contents do not match its checksum, or that is cut short."""


# Fault injection for the tests: seconds to pause inside every atomic write, after the data is in the
# temporary file and before it replaces the old one, so that a kill can land mid-write.
_WRITE_PAUSE = float(os.environ.get("SWA_BENCH_WRITE_PAUSE", "0") or 0)


# --------------------------------------------------------------------------------------------------
# Atomic file writes


def _read_umask() -> int:
    # The only portable way to read the umask sets it for an instant, which would race with files
    # created meanwhile by other threads: done once, at import (in the main thread).
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_IMPORT_UMASK = _read_umask()


def _file_mode() -> int:
    """The mode open() gives a new file (0o666 less the umask). Temporary files are created 0600, so
    the records get this one explicitly: colleagues on a shared filesystem read them as any other file.
    The umask comes from /proc (Linux), which reads it without setting it, so from any thread and
    after a change; elsewhere the one read at import."""
    try:
        with open("/proc/self/status") as f:
            umask = next(int(line.split()[1], 8) for line in f if line.startswith("Umask:"))
    except (OSError, StopIteration, IndexError, ValueError):
        umask = _IMPORT_UMASK
    return 0o666 & ~umask


@contextmanager
def writing(path: Path):
    """Turn OS errors of writing `path` into one RecordsWriteError line."""
    try:
        yield
    except OSError as e:
        reason = os.strerror(e.errno) if e.errno else str(e)
        hint = "; the previous version is intact" if path.exists() else ""
        raise RecordsWriteError(f"{path}: cannot write ({reason}){hint}") from None


@contextmanager
def temporaries():
    """Yields `temp(path, data)`: `data` in a new temporary file beside `path`, fsynced, ready to be
    renamed over it. If the block fails, the temporary files it did not rename are removed."""
    made = []

    def temp(path: Path, data: bytes) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        made.append(Path(name))
        with os.fdopen(fd, "wb") as f:
            os.chmod(name, _file_mode())  # by path: os.fchmod is POSIX-only
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        return Path(name)

    try:
        yield temp
    except BaseException:
        for name in made:
            name.unlink(missing_ok=True)
        raise


def rename_in_order(renames: list[tuple[Path, Path]]) -> None:
    """Each (source, target) in turn, skipping sources that are not there; then makes them durable.
    Called once every new version is safely in its temporary file: nothing was replaced before."""
    if _WRITE_PAUSE:
        time.sleep(_WRITE_PAUSE)
    for source, target in renames:
        if source.exists():
            os.replace(source, target)
    for directory in {target.parent for _, target in renames}:
        _fsync_dir(directory)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, then rename it over `path`: a kill at any
    moment leaves the old version or the new one."""
    with writing(path), temporaries() as temp:
        rename_in_order([(temp(path, data), path)])


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def torch_bytes(obj: Any) -> bytes:
    import torch  # here, not at the top: read-only commands (table, status) never load torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def on_host(obj: Any) -> Any:
    """`obj` with every tensor in it (nested in dicts, lists, tuples) copied to the CPU: a record file
    made on a GPU then loads with a plain torch.load on a machine without one."""
    if hasattr(obj, "is_cuda") and hasattr(obj, "cpu"):  # a tensor, without importing torch here
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: on_host(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(on_host(v) for v in obj)
    return obj


def sidecar_of(path: Path) -> Path:
    """The file holding `path`'s sha256, as `sha256sum` writes it (`sha256sum -c` checks it)."""
    return path.with_name(path.name + ".sha256")


def checksum_line(digest: str, path: Path) -> bytes:
    return f"{digest}  {path.name}\n".encode()


def sidecar_digest(path: Path) -> str | None:
    """The digest in `path`'s sidecar; None if there is none (yet, or a rotation just replaced it)."""
    try:
        return next(iter(sidecar_of(path).read_text(errors="replace").split()), "")  # empty: matches nothing
    except FileNotFoundError:
        return None


# The rolling checkpoints. A rotation renames last.pt to previous.pt before previous.pt.sha256 is
# rewritten, so for a moment a checkpoint's digest is in the other name's sidecar: either file is
# intact when it matches either sidecar. Both only ever hold digests of checkpoints written in full.
_ROLLING = ("last.pt", "previous.pt")

# Checkpoints written before the sidecars: this magic line, the sha256 of the payload, then the
# payload. Still read, so that runs made then resume.
_MAGIC = b"swa-bench checkpoint v1\n"


def known_digests(path: Path) -> set[str]:
    """The digests `path` may match: its sidecar's (both rolling sidecars for a rolling checkpoint)."""
    names = _ROLLING if path.name in _ROLLING else (path.name,)
    return {digest for name in names if (digest := sidecar_digest(path.with_name(name))) is not None}


def read_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """A checkpoint file's state (rolling or per-column), checked against its sidecar when it has one;
    raises CorruptCheckpointError naming the file otherwise."""
    path = Path(path)
    try:
        data = path.read_bytes()  # before the sidecars: a rotation meanwhile keeps this one's digest in one
    except OSError as e:  # a directory in its place, no permission...
        raise CorruptCheckpointError(f"{path}: cannot be read ({os.strerror(e.errno) if e.errno else e})") from None
    if data.startswith(_MAGIC):
        digest, payload = data[len(_MAGIC) : len(_MAGIC) + 32], data[len(_MAGIC) + 32 :]
        intact = len(digest) == 32 and hashlib.sha256(payload).digest() == digest
    else:
        payload, known = data, known_digests(path)
        intact = not known or hashlib.sha256(payload).hexdigest() in known
    if not intact:
        raise CorruptCheckpointError(f"{path}: contents do not match their checksum (truncated or damaged)")
    import torch

    try:
        state = torch.load(io.BytesIO(payload), map_location=map_location, weights_only=True)
    except Exception as e:
        raise CorruptCheckpointError(f"{path}: not a readable checkpoint ({e.__class__.__name__})") from None
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
        raise CorruptCheckpointError(f"{path}: not a swa-bench checkpoint (no model state in it)")
    return state


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


def read_json_object(path: Path) -> dict | None:
    """A record file that holds one JSON object; None if it is missing, ValueError (in words) if it
    is anything else: unreadable, not JSON, or another kind of value."""
    try:
        text = path.read_bytes().decode("utf-8")
        value = json.loads(text)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise ValueError(f"unreadable ({os.strerror(e.errno) if e.errno else e})") from None
    except ValueError:  # also UnicodeDecodeError: a binary file
        raise ValueError("not JSON") from None
    if not isinstance(value, dict):
        kind = {type(None): "null", list: "list", str: "string", bool: "boolean"}.get(type(value), "number")
        raise ValueError(f"a JSON {kind}, not an object")
    return value
