"""Output: everything printed also goes to OUT/gpu_check.log; results are small flat files in OUT,
each written whole (a part file renamed), so a command cut short leaves no torn one."""

from __future__ import annotations

import json
import threading
from pathlib import Path

LOG_LIMIT = 200_000  # bytes of a subprocess log copied to OUT (its tail)


class Report:
    def __init__(self, out: Path):
        self.out = out
        self.lock = threading.Lock()
        self.log = open(out / "gpu_check.log", "a")

    def say(self, text: str = "") -> None:
        with self.lock:
            print(text, flush=True)
            self.log.write(text + "\n")
            self.log.flush()

    def write_json(self, name: str, value) -> None:
        atomic_write(self.out / name, json.dumps(value, indent=1, default=str) + "\n")

    def copy(self, source: Path, name: str) -> None:
        """A small copy of `source` as OUT/name (its tail if it is large); nothing if it is missing."""
        if source.is_file():
            data = source.read_bytes()
            atomic_write(self.out / name, data[-LOG_LIMIT:].decode(errors="replace"))


def atomic_write(path: Path, text: str) -> None:
    part = path.with_name(path.name + ".part")
    part.write_text(text)
    part.replace(path)
