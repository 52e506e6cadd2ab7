"""The arithmetic of the stages, on metrics rows and costs alone (no files, no processes): where a run's
epoch time went, and the largest budget scale whose SGD + SWA pair fits the time left."""

from __future__ import annotations

import statistics

from .paths import VGG16


def split_epochs(rows: list[dict], method: str) -> dict:
    """A run's epochs by kind. Compile epochs: the first (its training step and evaluation compile) and
    the first that evaluates the averaged model (its BN pass and evaluation may compile new graphs); the
    rest are steady. step_s: the median of the steady epochs without an evaluation, i.e. the seconds of
    an epoch's training steps; None when every steady epoch evaluates (small budget scales)."""
    first_average = next((r["epoch"] for r in rows if f"{method}_test_acc" in r), None)
    compile_epochs = {rows[0]["epoch"], first_average} - {None} if rows else set()
    steady = [r for r in rows if r["epoch"] not in compile_epochs]
    plain = [r["seconds"] for r in steady if "test_acc" not in r]
    return {
        "compile": [r for r in rows if r["epoch"] in compile_epochs],
        "steady": steady,
        "step_s": statistics.median(plain) if plain else None,
    }


def evaluations_in(row: dict, method: str) -> int:
    """Evaluations of the test set in an epoch's row: the model's, and the averaged model's (with its BN pass)."""
    return ("test_acc" in row) + (f"{method}_test_acc" in row)


def time_shares(rows: list[dict], method: str) -> dict:
    """Where a run's epoch time went. step_s: seconds of an epoch's training steps (the median steady
    epoch without evaluation); the share of the steady epochs' time outside the steps (evaluations, BN
    passes, checkpoints, collection); and the compile epochs apart, with their seconds beyond a steady
    epoch that evaluates as much (None where no steady epoch is without evaluation)."""
    split = split_epochs(rows, method)
    step, steady = split["step_s"], split["steady"]
    steady_s = sum(r["seconds"] for r in steady)
    # One evaluation's seconds (with the average's BN pass, if any): from the steady epochs that evaluate.
    evals = [(r["seconds"] - step) / evaluations_in(r, method) for r in steady if step and evaluations_in(r, method)]
    eval_s = statistics.median(evals) if evals else (0.0 if step else None)
    return {
        "step_s": step,
        "eval_s": eval_s,
        "mean_epoch_s": statistics.mean(r["seconds"] for r in rows),
        "steady_epochs": len(steady),
        "steady_s": steady_s,
        "outside_steps_pct": 100 * (steady_s - step * len(steady)) / steady_s if step and steady_s else None,
        "compile_epochs": [
            {
                "epoch": r["epoch"],
                "seconds": r["seconds"],
                "evaluations": evaluations_in(r, method),
                "beyond_steady_s": r["seconds"] - step - evaluations_in(r, method) * eval_s if step else None,
            }
            for r in split["compile"]
        ],
    }


def choose_scale(costs: dict, budget: float, max_scale: float) -> dict:
    """The largest budget scale (full, else in hundredths) whose SGD + SWA pair is predicted to fit in
    `budget` seconds, with 10% to spare; the prediction counts each run's epochs and evaluations."""
    from swa_bench.config import load_config
    from swa_bench.protocol import resolve_protocol

    def predicted(scale: float) -> tuple[float, dict]:
        total, epochs = 0.0, {}
        for method in ("sgd", "swa"):
            proto = resolve_protocol(load_config(VGG16, {"run.method": method, "run.budget_scale": scale}))
            span = range(proto.first_epoch, proto.epochs)
            evaluations = sum(1 for e in span if proto.evaluates_after(e))
            # The first collection: an averaged model is evaluated from there on.
            first = proto.first_collection
            averaged = sum(1 for e in span if proto.evaluates_after(e) and first and e + 1 >= first)
            compiles = 1 + (method == "swa")  # the first epoch; the first evaluation of the average
            total += (
                costs["startup_s"]
                + compiles * costs["compile_s"]
                + len(span) * costs["step_s"]
                + (evaluations + averaged) * costs["eval_s"]
            )
            epochs[method] = len(span)
        return 1.1 * total, epochs

    full, full_epochs = predicted(1.0)
    candidates = [1.0] + [k / 100 for k in range(99, 0, -1)]
    for scale in (c for c in candidates if c <= max_scale):
        seconds, epochs = predicted(scale)
        if seconds <= budget:
            why = (
                f"full budget: SGD {epochs['sgd']} + SWA {epochs['swa']} epochs, predicted {seconds:.0f} s of "
                f"{budget:.0f} s left"
                if scale == 1.0
                else f"budget scale {scale:g}: SGD {epochs['sgd']} + SWA {epochs['swa']} epochs, "
                f"predicted {seconds:.0f} s "
                f"of {budget:.0f} s left (the full budget, {full_epochs['sgd']} + {full_epochs['swa']} epochs, "
                f"needs {full:.0f} s" + (")" if max_scale >= 1 else f"; at most {max_scale:g} here)")
            )
            return {"scale": scale, "epochs": epochs, "predicted_s": seconds, "full_budget_s": full, "why": why}
    return {
        "scale": None,
        "predicted_s": None,
        "full_budget_s": full,
        "why": f"skipped: even budget scale 0.01 does not fit in the {budget:.0f} s left",
    }
