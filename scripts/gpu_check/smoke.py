"""Stage (a): every path on a few hundred real images: SGD, SWA, EMA, a SIGTERM mid-epoch and the
resume, bf16, compile, channels-last; pass/fail and seconds per item, all items at once."""

from __future__ import annotations

import re
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from swa_bench.outcomes import EXIT_FINISHED, EXIT_PREEMPTED

from .arithmetic import split_epochs
from .paths import MINI
from .processes import Ran, run, swa_bench
from .readers import runs_under, summary_of


def smoke(check, figures: dict, errors: list[str]) -> None:
    s = check.sizes
    items = {
        "sgd": ["--method", "sgd"],
        "swa": ["--method", "swa"],
        "ema": ["--method", "ema"],
        "resume": ["--method", "sgd"],  # stopped by SIGTERM mid-epoch, then the same command again
        "bf16": ["--method", "swa", "--set", "run.precision=bf16"],
        "compile": ["--method", "swa", "--set", f"run.compile={s.compile}"],
        "channels_last": ["--method", "swa", "--set", "run.channels_last=true"],
    }
    if s.compile == "none":
        check.say(
            "note: compile item runs with run.compile=none here (compilation costs ~40 s a model on "
            "this CPU with a cold cache); --compile default rehearses it"
        )
    lock = threading.Lock()

    def one(name: str) -> None:
        out = check.scratch / "a" / name
        args = swa_bench(
            "train",
            "--config",
            str(MINI),
            "--data-path",
            check.data["smoke"],
            "--device",
            s.device,
            "--out",
            str(out),
            "--set",
            f"data.train_subset={s.smoke_subset}",
            "--set",
            f"optim.batch_size={s.smoke_batch}",
            *items[name],
        )
        scale = s.resume_scale if name == "resume" else s.smoke_scale
        args += ["--budget-scale", str(scale)]
        try:
            result = resume_item(check, args, out) if name == "resume" else plain_item(check, name, args, out)
        except Exception as e:
            result = {"ok": False, "error": f"{e.__class__.__name__}: {e}", "seconds": 0.0}
        with lock:
            figures[name] = result
            if not result["ok"]:
                errors.append(f"{name}: {result['error']}")
            check.report.write_json("a-smoke.json", {"data": check.data["source"], "items": figures})
        detail = result.get("detail", "")
        check.say(
            f"  {name:14s} {'pass' if result['ok'] else 'FAIL'}  {result['seconds']:6.1f} s  "
            + (detail if result["ok"] else result["error"])
        )

    with ThreadPoolExecutor(max_workers=s.smoke_jobs) as pool:
        list(pool.map(one, items))


def plain_item(check, name: str, args: list[str], out: Path) -> dict:
    ran = run(args + ["--quiet"], check.scratch / "logs" / f"a-{name}.log", check.timeout(), check.env())
    check.report.copy(ran.log, f"a-{name}.log")
    return finished_run(check, name, ran, out)


def finished_run(check, name: str, ran: Ran, out: Path) -> dict:
    """An item's verdict from its exit status and summary; its metrics copied to OUT."""
    runs = runs_under(out)
    for records in runs:
        check.report.copy(records.metrics_path, f"a-{name}-metrics.jsonl")
    summary = summary_of(runs[-1]) if runs else None
    result = {"ok": False, "seconds": round(ran.seconds, 1), "exit": ran.rc}
    if ran.rc != EXIT_FINISHED or summary is None:
        result["error"] = f"exit {ran.rc}" + (", no summary" if summary is None else "") + "\n" + ran.tail()
        return result
    rows = runs[-1].read_metrics()
    epochs = split_epochs(rows, summary["method"])
    result.update(
        ok=True,
        results=summary["results"],
        epochs=len(rows),
        first_epoch_s=rows[0]["seconds"],
        step_s=epochs["step_s"],
    )
    accuracies = ", ".join(f"{k} {v:.1f}%" for k, v in summary["results"].items())
    result["detail"] = f"{len(rows)} epochs, first {rows[0]['seconds']:.1f} s; {accuracies}"
    return result


def resume_item(check, args: list[str], out: Path) -> dict:
    """SIGTERM right after the first epoch's line, so it lands within the second epoch; the run must
    exit with the preempted status, then the same command resume it mid-epoch and finish. (Not
    --quiet: the epoch lines are the cue.)"""
    sent = threading.Event()

    def on_line(line: str, process) -> None:
        if not sent.is_set() and re.match(r"epoch\s+1/", line):
            process.send_signal(signal.SIGTERM)
            sent.set()

    logs = check.scratch / "logs"
    stopped = run(args, logs / "a-resume-stopped.log", check.timeout(), check.env(), on_line=on_line)
    check.report.copy(stopped.log, "a-resume-stopped.log")
    resumed = run(args, logs / "a-resume.log", check.timeout(), check.env())
    check.report.copy(resumed.log, "a-resume.log")
    result = finished_run(check, "resume", resumed, out)
    result["seconds"] = round(stopped.seconds + resumed.seconds, 1)
    found = re.search(r"resuming after epoch (\d+) and (\d+) steps", resumed.text())
    problems = []
    if not sent.is_set():
        problems.append("no epoch line seen: no signal sent")
    if stopped.rc != EXIT_PREEMPTED:
        problems.append(f"the stopped run exited {stopped.rc}, not {EXIT_PREEMPTED} (preempted)\n{stopped.tail()}")
    if not found:
        problems.append("the resumed run did not say 'resuming after epoch E and N steps'")
    if problems or not result["ok"]:
        result.update(ok=False, error="; ".join(problems + ([result["error"]] if "error" in result else [])))
        return result
    result["resumed_after"] = {"epoch": int(found[1]), "steps": int(found[2])}
    result["detail"] = (
        f"stopped (exit {EXIT_PREEMPTED}) and resumed after epoch {found[1]} and {found[2]} steps; " + result["detail"]
    )
    return result
