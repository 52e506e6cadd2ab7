"""Stage (b): `swa-bench bench` of VGG-16 and PreResNet-164 (the fast path against the reference-style
loop at the same precision and in fp32), then the grid's images/s with 1 and 3 runs sharing the device
and from them the GPU-hours of the CIFAR tables (grid.py)."""

from __future__ import annotations

import json

from .grid import grid_throughput
from .processes import run, swa_bench


def speed(check, figures: dict, errors: list[str]) -> None:
    s = check.sizes
    flags = ["--precision", "bf16", "--compile", s.compile] + (["--channels-last"] if s.bench_channels_last else [])
    for model, target in (("vgg16", 0.4), ("preresnet164", 1.5)):  # the H200 epoch targets (docs/PERFORMANCE.md)
        try:
            figures[f"bench_{model}"] = bench(check, model, target, flags)
        except Exception as e:
            errors.append(f"bench {model}: {e}")
            check.say(f"  bench {model}: FAILED: {e}")
    try:
        figures["grid"] = grid_throughput(check)
    except Exception as e:
        errors.append(f"grid: {e}")
        check.say(f"  grid: FAILED: {e}")


def bench(check, model: str, target: float, flags: list[str]) -> dict:
    folder = check.scratch / "b"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"bench-{model}.json"
    # cwd: the scratch folder, where the bench writes its checkpoint measurements (runs/bench/).
    ran = run(
        swa_bench(
            "bench",
            "--model",
            model,
            "--device",
            check.sizes.device,
            *check.sizes.bench,
            *flags,
            "--epoch-seconds",
            str(target),
            "--json",
            str(path),
        ),
        check.scratch / "logs" / f"b-bench-{model}.log",
        check.timeout(),
        check.env(),
        cwd=folder,
    )
    check.report.copy(ran.log, f"b-bench-{model}.txt")
    if ran.rc != 0 or not path.is_file():
        raise RuntimeError(f"exit {ran.rc}\n{ran.tail()}")
    check.report.copy(path, f"b-bench-{model}.json")
    r = json.loads(path.read_text())
    seen = {
        "train_img_s": r["train_img_s"],
        "eval_img_s": r["eval_img_s"],
        "epoch_steps_s": 50_000 / r["train_img_s"],
        "pipeline_train_x": r["train_img_s"] / r["reference_train_img_s"],
        "pipeline_eval_x": r["eval_img_s"] / r["reference_eval_img_s"],
    }
    if r.get("reference_fp32_train_img_s"):
        seen["vs_fp32_train_x"] = r["train_img_s"] / r["reference_fp32_train_img_s"]
        seen["vs_fp32_eval_x"] = r["eval_img_s"] / r["reference_fp32_eval_img_s"]
    seen["projected_outside_pct"] = r["outside_steps"].get("projected_share_pct")
    check.say(
        f"  bench {model} ({ran.seconds:.0f} s): train {seen['train_img_s']:,.0f} img/s "
        f"= {seen['epoch_steps_s']:.2f} s per 50,000-image epoch of steps (target {target} s); "
        f"speed-up over the reference loop at the same precision: train {seen['pipeline_train_x']:.2f}x, "
        f"eval {seen['pipeline_eval_x']:.2f}x"
        + (
            f"; over the fp32 reference: train {seen['vs_fp32_train_x']:.2f}x, eval {seen['vs_fp32_eval_x']:.2f}x"
            if "vs_fp32_train_x" in seen
            else ""
        )
        + f"; outside the steps at {target} s/epoch: {seen['projected_outside_pct']:.2f} %"
    )
    check.figures[f"bench_{model}"] = seen
    return seen
