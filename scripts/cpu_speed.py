"""How fast one execution trains the full-size CPU configs (configs/cpu/), end to end in one process:
start-up (imports, decoding the images, building the model), compilation when asked, and training
steps over the full 50,000-image training set; then forward passes over the test images, timed only
(their accuracy is not computed: the pilot that sizes the budget reads training figures alone).

    OMP_NUM_THREADS=1 python scripts/cpu_speed.py --data data/cifar10-jpg --compile default --steps 120

Prints one JSON line: seconds to the first step, seconds of the timed steps, images/s of steady
training (after the first 10 steps, which include compilation), the projected seconds of a full
epoch, training accuracy of the steps taken, images/s of evaluation.
"""

from __future__ import annotations

import time

STARTED = time.monotonic()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="cpu/preresnet20_ratio0.5")
    parser.add_argument("--data", required=True)
    parser.add_argument("--compile", default="none", choices=["none", "default", "max-autotune"])
    parser.add_argument("--channels-last", type=int, default=1, choices=[0, 1])
    parser.add_argument("--steps", type=int, default=391, help="training steps (391: one full epoch)")
    parser.add_argument("--eval-batches", type=int, default=20)
    parser.add_argument("--label", default="")
    args = parser.parse_args()

    import torch

    from swa_bench.config import load_config
    from swa_bench.data.datasets import build_datasets
    from swa_bench.data.loaders import make_loader
    from swa_bench.distributed import World
    from swa_bench.engine import seed_epoch, train_one_epoch
    from swa_bench.execution import Execution
    from swa_bench.models import create_model
    from swa_bench.shipped import find_config

    cfg = load_config(find_config(args.config), {"data.path": args.data})
    device = torch.device("cpu")
    bundle = build_datasets(cfg.data, progress=False)
    gen = torch.Generator(device=device)
    seed_epoch(0, 0, 0, gen)
    train = make_loader(
        bundle.train, cfg.optim.batch_size, shuffle=True, workers=0, device=device, generator=gen, kind="device"
    )
    test = make_loader(bundle.test, cfg.optim.batch_size, shuffle=False, workers=0, device=device, kind="device")
    execution = Execution(device, "fp32", bool(args.channels_last), args.compile)
    module = execution.place(create_model(cfg.model.name, bundle.num_classes))
    model = execution.compiled(module)
    o = cfg.optim
    optimizer = torch.optim.SGD(module.parameters(), lr=o.lr_init, momentum=o.momentum, weight_decay=o.weight_decay)
    ready = time.monotonic()

    class Bar:
        def update(self, n):
            pass

    marks = {}
    taken = {"n": 0}

    def after_step(step):
        taken["n"] = step
        if step in (1, 10):
            marks[step] = time.monotonic()

    tally, steps = train_one_epoch(
        model,
        train,
        optimizer,
        execution,
        Bar(),
        lambda step: o.lr_init,
        stop=lambda: taken["n"] >= args.steps,
        after_step=after_step,
    )
    done = time.monotonic()
    loss, acc = tally.means(World())
    steady = (done - marks[10]) / (steps - 10)
    images = len(bundle.train)
    # Evaluation throughput: forward passes in eval mode, no accuracy computed.
    model.eval()
    with torch.no_grad():
        seen, t0 = 0, None
        for k, (inputs, _) in enumerate(execution.batches(test)):
            if k == 2:
                t0, seen = time.monotonic(), 0
            if k == args.eval_batches + 2:
                break
            model(inputs)
            seen += inputs.size(0)
        eval_img_s = seen / (time.monotonic() - t0)
    print(
        json.dumps(
            {
                "label": args.label,
                "threads": torch.get_num_threads(),
                "omp": os.environ.get("OMP_NUM_THREADS"),
                "compile": args.compile,
                "channels_last": bool(args.channels_last),
                "torch": torch.__version__,
                "startup_s": round(ready - STARTED, 1),
                "first_step_s": round(marks[1] - ready, 1),
                "steps": steps,
                "steps_s": round(done - ready, 1),
                "train_img_s": round(cfg.optim.batch_size / steady, 1),
                "epoch_s_projected": round(marks[10] - ready + steady * (len(train) - 10) + (ready - STARTED), 1),
                "train_acc_of_steps": round(acc, 2),
                "train_loss_of_steps": round(loss, 4),
                "eval_img_s": round(eval_img_s, 1),
                "train_images": images,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
