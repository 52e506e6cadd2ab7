"""Stage (c): the longest real run that fits the minutes left: the VGG-16 CIFAR-10 SGD + SWA pair, full
budget or the largest budget scale that fits; its table, seconds per epoch, the share of time outside
the training steps, and the compile epochs apart."""

from __future__ import annotations

from pathlib import Path

from swa_bench.outcomes import EXIT_FINISHED

from .arithmetic import choose_scale, time_shares
from .data import full_tree
from .paths import VGG16
from .processes import TIMED_OUT, run, swa_bench
from .readers import method_of, runs_under, summary_of


def pair(check, figures: dict, errors: list[str]) -> None:
    data = full_tree(check)
    costs = epoch_costs(check)
    margin = 30 if check.sizes.device == "cuda" else 10  # table, copies, the summary
    budget = check.left() - margin
    choice = choose_scale(costs, budget, check.sizes.pair_max_scale)
    figures["plan"] = {"costs": costs, "seconds_left": budget, **choice}
    check.report.write_json("c-plan.json", figures["plan"])
    check.say(
        f"  costs ({costs['basis']}): steps {costs['step_s']:.3f} s per epoch, evaluation {costs['eval_s']:.3f} s, "
        f"start-up {costs['startup_s']:.1f} s per run, compilation {costs['compile_s']:.1f} s per compile epoch"
    )
    check.say(f"  {choice['why']}")
    if choice["scale"] is None:
        figures["skipped"] = True
        errors.append(choice["why"])
        return
    out = check.scratch / "c"
    runs = {}
    for method in ("sgd", "swa"):

        def copy_now():
            return [check.report.copy(r.metrics_path, f"c-{method_of(r)}-metrics.jsonl") for r in runs_under(out)]

        ran = run(
            swa_bench(
                "train",
                "--config",
                str(VGG16),
                "--method",
                method,
                "--device",
                check.sizes.device,
                "--data-path",
                data,
                "--out",
                str(out),
                "--budget-scale",
                f"{choice['scale']:g}",
                "--quiet",
                *check.fast_sets(),
            ),
            check.scratch / "logs" / f"c-{method}.log",
            check.timeout(check.left()),
            check.env(),
            every=copy_now,
        )
        copy_now()
        check.report.copy(ran.log, f"c-{method}.log")
        runs[method] = ran
        if ran.rc != EXIT_FINISHED:
            errors.append(f"{method}: exit {ran.rc}" + (" (out of time)" if ran.rc == TIMED_OUT else ""))
            check.say(f"  {method}: exit {ran.rc}\n{ran.tail()}")
    pair_figures(check, out, runs, figures)


def epoch_costs(check) -> dict:
    """Seconds of an epoch's steps, of one evaluation, of a run's start-up (process start to its first
    epoch: imports, data, model) and of a compile epoch beyond its steps and evaluation. From the
    grid's single VGG-16 SGD run (same options and data; its first epoch's compilation stands for the
    SWA run's averaged model too); else from the VGG-16 bench, guessing the rest; else all guessed."""
    one = check.grid_runs.get(1)
    if one:
        (r,) = one.values()
        shares = time_shares(r["rows"], "sgd")  # it has steady epochs of steps alone: the grid keeps those
        return {
            "basis": "measured: the grid's single VGG-16 run",
            "step_s": shares["step_s"],
            "eval_s": max(0.0, shares["eval_s"]),
            "startup_s": r["startup_s"] or 0.0,
            "compile_s": max(0.0, shares["compile_epochs"][0]["beyond_steady_s"]),
        }
    bench = check.figures.get("bench_vgg16")
    train, test = (50_000, 10_000) if check.sizes.full_data else (10 * n for n in check.sizes.smoke_per_class)
    train = check.sizes.subset or train
    if bench:
        return {
            "basis": "the VGG-16 bench's rates (the grid failed); start-up and compilation guessed",
            "step_s": train / bench["train_img_s"],
            "eval_s": test / bench["eval_img_s"],
            "startup_s": 60.0,
            "compile_s": 60.0,
        }
    return {
        "basis": "nothing measured: guessed at 5x the 0.4 s target per 50,000 images",
        "step_s": 2.0 * train / 50_000,
        "eval_s": 0.4 * test / 10_000,
        "startup_s": 60.0,
        "compile_s": 120.0,
    }


def pair_figures(check, out: Path, runs: dict, figures: dict) -> None:
    """The table; per run: seconds per epoch of steps, the share of the steady epochs' time spent
    outside the steps, the compile epochs apart; and the share over both runs."""
    for fmt, name in (("markdown", "c-table.md"), ("csv", "c-table.csv")):
        ran = run(
            swa_bench("table", str(out), "--format", fmt),
            check.scratch / "logs" / name,
            check.timeout(60),
            check.env(),
        )
        check.report.copy(ran.log, name)
        if fmt == "markdown":
            check.say(ran.text().rstrip())
    steady_s = outside_s = 0.0
    for records in runs_under(out):
        method, rows = method_of(records), records.read_metrics()
        if not rows:
            continue
        summary, ran = summary_of(records) or {}, runs.get(method)
        shares = time_shares(rows, method)
        figures[method] = result = {
            "epochs": len(rows),
            "finished": bool(summary),
            "results": summary.get("results"),
            "process_s": ran.seconds if ran else None,
            "startup_s": summary.get("startup_seconds"),
            "epoch_seconds_sum": sum(r["seconds"] for r in rows),
            **shares,
        }
        if shares["outside_steps_pct"] is not None:
            steady_s += shares["steady_s"]
            outside_s += shares["steady_s"] * shares["outside_steps_pct"] / 100
        check.say(f"  {method}: {len(rows)} epochs" + _run_line(shares, result))
    if steady_s:
        figures["outside_steps_pct"] = 100 * outside_s / steady_s
        check.say(
            f"  the pair: {figures['outside_steps_pct']:.2f} % of its steady epochs' time outside the training steps"
        )
    check.report.write_json("c-result.json", figures)


def _run_line(shares: dict, result: dict) -> str:
    """One run's figures, as printed after its method and epochs."""
    compiled = ", ".join(
        f"epoch {c['epoch']} {c['seconds']:.2f} s"
        + ("" if c["beyond_steady_s"] is None else f" (+{c['beyond_steady_s']:.2f} s)")
        for c in shares["compile_epochs"]
    )
    return (
        (f", steps {shares['step_s']:.3f} s per epoch" if shares["step_s"] else "")
        + f", mean epoch {shares['mean_epoch_s']:.3f} s; outside the steps, steady epochs: "
        + (
            f"{shares['outside_steps_pct']:.2f} %"
            if shares["outside_steps_pct"] is not None
            else "not measurable (every epoch evaluates at this budget scale)"
        )
        + f"; compile epochs, apart: {compiled}; process {result['process_s'] or 0:.0f} s, of which "
        f"{result['epoch_seconds_sum']:.0f} s in epochs ({result['startup_s'] or 0:.1f} s to the first)"
    )
