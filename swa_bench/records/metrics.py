"""A run's metrics log (metrics.jsonl): one JSON row per finished epoch, appended and fsynced; a row
cut short by a kill is left out, a damaged one never dropped unnoticed."""

from __future__ import annotations

import json
import os
import warnings

from swa_bench.record_files import RecordsWriteError, atomic_write_text, writing
from swa_bench.records.folder import DamagedRecordsError


class MetricsLog:
    """Reads and writes RUN/metrics.jsonl (the folder's `metrics_path`)."""

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

    def keep_metrics_through(self, epoch: int) -> None:
        """Drop rows after `epoch` (epochs re-run on resume) and any torn last line; a damaged row
        elsewhere stops the run rather than be dropped."""
        rows = [r for r in self.read_metrics(strict=True) if r["epoch"] <= epoch]
        atomic_write_text(self.metrics_path, "".join(json.dumps(r) + "\n" for r in rows))


def _metrics_row(line: str) -> dict | None:
    """A metrics line as a row (a JSON object with an integer epoch), or None if it is not one."""
    try:
        row = json.loads(line)
    except ValueError:
        return None
    if not isinstance(row, dict) or not isinstance(row.get("epoch"), int) or isinstance(row.get("epoch"), bool):
        return None
    return row
