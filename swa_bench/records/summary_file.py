"""A run's summary.json, read and written: `swa_bench.summary` says what it holds and checks it."""

from __future__ import annotations

import json

from swa_bench.errors import UserError
from swa_bench.record_files import atomic_write_text, read_json_object
from swa_bench.records.folder import DamagedRecordsError
from swa_bench.summary import disagreement, summary_problem


class SummaryFile:
    """RUN/summary.json (the folder's `summary_path`)."""

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
        problem = None if summary is None else summary_problem(summary)
        if problem:
            raise ValueError(f"not a swa-bench summary ({problem})")
        problem = None if summary is None else self._disagreement(summary)
        if problem:
            raise ValueError(f"does not agree with its run ({problem})")
        return summary

    def _disagreement(self, summary: dict) -> str | None:
        try:
            stored = self.stored_config()
        except UserError:
            stored = None
        return disagreement(summary, stored, self.read_metrics, self.config_path.name, self.metrics_path.name)
