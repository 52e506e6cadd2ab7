"""A run's directory: resolved config, per-epoch metrics, checkpoints, summary.

    <out>/<dataset>/<model>/<method>/seed<k>/
        config.yaml      the resolved config (+ protocol and overrides); owns the directory
        metrics.jsonl    one JSON row per finished epoch
        checkpoints/     last.pt (rolling) and one weights file per report point
        summary.json     written once, when the run has finished

Every file that replaces another is written atomically (temp file, fsync, rename), so a kill at any
moment leaves either the old or the new version, never a torn one.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
import yaml

from swa_bench.config import RUNTIME_KEYS


class RunMismatchError(RuntimeError):
    """The run directory belongs to a different resolved config."""


def run_dir_for(out: str | Path, dataset: str, model: str, method: str, seed: int) -> Path:
    return Path(out) / dataset / model / method / f"seed{seed}"


# --------------------------------------------------------------------------------------------------
# Atomic file writes


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_torch_save(obj: Any, path: Path) -> None:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


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
        for key, theirs, mine in config_differences(stored.get("config", {}), resolved.get("config", {})):
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
        with open(self.metrics_path, "a") as f:
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

    def save_checkpoint(self, state: dict, name: str = "last") -> None:
        atomic_torch_save(state, self.checkpoint_path(name))

    def load_checkpoint(self, name: str = "last", map_location="cpu") -> dict | None:
        path = self.checkpoint_path(name)
        if not path.exists():
            return None
        return torch.load(path, map_location=map_location, weights_only=True)

    # -- summary -----------------------------------------------------------------------------------

    def is_finished(self) -> bool:
        return self.summary_path.exists()

    def write_summary(self, summary: dict) -> None:
        atomic_write_text(self.summary_path, json.dumps(summary, indent=2) + "\n")

    def read_summary(self) -> dict:
        return json.loads(self.summary_path.read_text())
