"""A run's summary (summary.json): what the trainer writes when the run ends (what it is: dataset, model,
method, seed, budget, settings; the results of each table column; its data, time and environment),
and the checks every reader relies on: that a file is a summary at all, and that it agrees with the
run it lies in. records.RunRecords writes and reads it (atomically, checked)."""

from __future__ import annotations

import math

from swa_bench.columns import Column


def build_summary(
    cfg,
    proto,
    records,
    data,
    device,
    start_point=None,
    world=None,
    reported: dict | None = None,
    overrides: dict | None = None,
) -> dict:
    """The run's summary. Its results are `reported` (the run's own state); metrics rows fill in only
    columns it lacks (checkpoints of earlier versions kept none)."""
    from swa_bench.distributed import World
    from swa_bench.methods import get_method
    from swa_bench.provenance import environment

    world = world or World()
    rows = records.read_metrics()
    results, results_nll = {}, {}
    for row in rows:
        for col in row.get("report", []):
            prefix = Column(col).metrics_prefix
            results[col], results_nll[col] = row[prefix + "acc"], row[prefix + "loss"]
    for col, value in (reported or {}).items():
        results[col], results_nll[col] = value["acc"], value["nll"]
    last = rows[-1]
    return {
        "status": "finished",
        "dataset": cfg.data.dataset,
        "model": cfg.model.name,
        "method": proto.method,
        "seed": cfg.run.seed,
        "budget": cfg.schedule.budget,
        "budget_scale": cfg.run.budget_scale,
        "epochs": proto.epochs,
        "first_epoch": proto.first_epoch,
        "start_point": start_point,
        **get_method(proto.method).summary_fields(cfg),  # note, variant
        "train_subset": cfg.data.train_subset,
        "train_images": len(data.train),
        "test_images": len(data.test),
        "data": data.source,
        "overrides": dict(overrides or {}),
        "results": results,
        "results_nll": results_nll,  # test loss (mean cross-entropy) of each reported model
        "final_test_acc": last.get("test_acc"),
        "final_train_acc": last.get("train_acc"),  # on the augmented images, during the last epoch
        "wall_seconds": sum(r["seconds"] for r in rows),
        "processes": world.size,
        "skipped_images": sum(r.get("skipped_images", 0) for r in rows),
        **environment(device),
    }


def diverged_summary(summary: dict, epoch: int, columns: list[str]) -> dict:
    """A run ended by a non-finite training loss: no results, the epoch it diverged in."""
    return {
        **summary,
        "status": "diverged",
        "diverged_epoch": epoch,
        "results": {},
        "results_nll": {},
        "columns": columns,
    }


def summary_problem(summary: dict) -> str | None:
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


def disagreement(summary: dict, stored: dict | None, rows, config_name: str, metrics_name: str) -> str | None:
    """What makes `summary` not this run's (None if nothing): a result out of range, a method, seed,
    dataset or model other than config.yaml's, a column the run's protocol does not report, a
    number other than the one its metrics log recorded at that column's report point. A summary
    is written from the run's own state; any of these means it was edited or comes from elsewhere.
    `stored`: the run's config.yaml (None if unreadable); `rows`: a callable giving its metrics rows."""
    for column, value in summary["results"].items():
        if not 0 <= value <= 100:
            return f"{column} = {value!r} is not an accuracy in %"
    for column, value in (summary.get("results_nll") or {}).items():
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not (math.isfinite(value) and value >= 0):
            return f"results_nll {column} = {value!r} is not a test loss"
    if stored is None:
        return f"no readable {config_name} beside it"
    config, protocol = stored["config"], stored.get("protocol") or {}
    for key, mine in (
        ("method", config.get("run", {}).get("method")),
        ("seed", config.get("run", {}).get("seed")),
        ("dataset", config.get("data", {}).get("dataset")),
        ("model", config.get("model", {}).get("name")),
    ):
        if summary.get(key) != mine:
            return f"its {key} is {summary.get(key)!r}, {config_name}'s {mine!r}"
    points = protocol.get("report_points")
    if isinstance(points, dict):
        foreign = sorted(set(summary["results"]) - set(points))
        if foreign:
            return f"{foreign[0]} is not a column this run reports ({', '.join(points) or 'none'})"
    recorded = {}
    for row in rows():
        for column in row.get("report") or []:
            recorded[column] = row.get(Column(column).metrics_prefix + "acc") if not Column(column).problem() else None
    for column, value in summary["results"].items():
        if column not in recorded:
            return f"{metrics_name} records no report of {column}"
        logged = recorded[column]
        if not isinstance(logged, (int, float)) or not math.isclose(value, logged, rel_tol=1e-9, abs_tol=1e-9):
            return f"{column} = {value!r}, but {metrics_name} recorded {logged!r}"
    return None
