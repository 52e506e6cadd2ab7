"""The stages' runs, read through swa-bench's own records (swa_bench.records.RunRecords): the runs
under a folder, their metrics rows, summaries, methods and seeds.

swa_bench.records is imported where it is first used, not when the check starts: it needs pyyaml, and
a python that lacks it is to be told so (modules.check_modules), its stages then failing one by one,
each reported, rather than the check stopping with a traceback before it has said anything."""

from __future__ import annotations

from pathlib import Path


def runs_under(folder: Path) -> list:
    """The runs under `folder` that have written metrics rows, as RunRecords, in a stable order."""
    from swa_bench.records import RunRecords

    return RunRecords.find(folder, marker="metrics.jsonl")


def summary_of(records) -> dict | None:
    """The run's summary, or None while it has not ended."""
    return records.read_summary() if records.is_finished() else None


def settings_of(records) -> dict:
    """The run section of the run's config.yaml ({} if it cannot be read)."""
    from swa_bench.errors import UserError

    try:
        return records.stored_config()["config"].get("run") or {}
    except UserError:
        return {}


def method_of(records) -> str:
    """The run's method (sgd, swa, ema...; a variant's folder swa-<variant> holds method swa): its
    config.yaml's run.method, else its summary's."""
    method = settings_of(records).get("method") or (summary_of(records) or {}).get("method")
    if not method:
        raise RuntimeError(f"{records.dir}: neither config.yaml nor summary.json names the run's method")
    return method


def seed_of(records) -> str:
    """The run's seed as its folder begins: seed<k> (from its config.yaml's run.seed)."""
    return f"seed{settings_of(records)['seed']}"
