"""The metrics of a weight vector, the way docs/PROTOCOL.md §6 measures them: load the parameters, recompute BN
over the (augmented) training set, then test error and loss, and the training loss on the
un-augmented training images plus the L2 term of the run's weight decay (wd/2 |w|^2).

Points are many and each costs a pass over the data, so results go to a JSONL cache beside the
figure; a command run again (after an interruption, or with more points) computes only what is
missing. Data, model, loaders and precision are those of the run (its config.yaml), through the same
fast paths as training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Subset

from swa_bench.averaging import recompute_bn
from swa_bench.config import config_from_dict
from swa_bench.data import build_datasets, make_loader, resolve_loader_kind
from swa_bench.data.datasets import ImageArrayDataset
from swa_bench.data.loaders import image_rows
from swa_bench.engine import evaluate, resolve_device
from swa_bench.execution import Execution
from swa_bench.models import create_model
from swa_bench.records import RunRecords


class PointEvaluator:
    def __init__(
        self,
        run_dir: str | Path,
        data_path: str | None = None,
        device: str | None = None,
        train_images: int | None = None,
        seed: int = 0,
        progress: bool = True,
        test_images: int | None = None,
    ):
        stored = RunRecords(run_dir).stored_config()["config"]
        if data_path:
            stored["data"]["path"] = data_path
        if device:
            stored["run"]["device"] = device
        cfg = config_from_dict(stored, f"{run_dir}/config.yaml")
        self.cfg = cfg
        self.device = resolve_device(cfg.run.device)
        self.execution = Execution.from_config(cfg.run, self.device)
        # The run's numeric settings, as in training: without them CUDA convolutions default to TF32.
        self.execution.configure_backends()
        data = build_datasets(cfg.data, progress=progress)
        if not data.in_memory:
            raise ValueError("landscapes are computed on in-memory datasets (CIFAR, digits), not ImageNet")
        train = data.train
        if train_images is not None and train_images < len(train):  # a fixed subset, to bound the cost
            pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:train_images]
            train = Subset(train, sorted(pick.tolist()))
        test = data.test
        if test_images is not None and test_images < len(test):  # likewise, drawn to represent the test set
            test_base, test_rows = image_rows(test)
            test = Subset(test, stratified_pick(test_base.targets[test_rows], test_images, seed + 1))
        base, indices = image_rows(train)
        # The same training images without augmentation, for the training loss.
        images, targets = base.images[indices], base.targets[indices]
        plain_train = ImageArrayDataset(images, targets, data.test.spec)
        kind = resolve_loader_kind(cfg.data.loader, self.device, True)
        args = dict(workers=cfg.data.workers, device=self.device, kind=kind)
        self.generator = torch.Generator(device=self.device if kind == "device" else torch.device("cpu"))
        batch = cfg.optim.batch_size
        self.bn_loader = make_loader(train, batch, shuffle=True, generator=self.generator, **args)
        self.train_loader = make_loader(plain_train, batch, shuffle=False, **args)
        self.test_loader = make_loader(test, batch, shuffle=False, **args)
        torch.manual_seed(0)
        self.model = self.execution.place(create_model(cfg.model.name, data.num_classes, **cfg.model.options))
        self.names = [n for n, _ in self.model.named_parameters()]
        self.seed = seed
        self.train_size = len(plain_train)
        self.test_size, self.test_total = len(test), len(data.test)

    def vector(self, state: dict, source="weights") -> torch.Tensor:
        """The parameters of `state` as one vector, after checking they are this run's model's."""
        from swa_bench.figures.weights import flatten_parameters

        shapes = dict(self.model.named_parameters())
        wrong = [n for n in self.names if n not in state or getattr(state[n], "shape", None) != shapes[n].shape]
        if wrong:
            raise ValueError(
                f"{source}: not weights of this run's model ({self.cfg.model.name}: "
                f"{'no' if wrong[0] not in state else 'another shape of'} {wrong[0]})"
            )
        return flatten_parameters(state, self.names)

    @torch.no_grad()
    def load(self, vector: torch.Tensor) -> None:
        offset = 0
        for p in self.model.parameters():
            n = p.numel()
            p.copy_(vector[offset : offset + n].view_as(p).to(p.dtype))
            offset += n

    @torch.no_grad()
    def metrics(self, vector: torch.Tensor) -> dict:
        self.load(vector)
        self.generator.manual_seed(self.seed)  # the same BN pass at every point
        with self.execution.autocast():
            recompute_bn(self.model, self.execution.batches(self.bn_loader), self.device)
        test = evaluate(self.model, self.test_loader, self.execution)
        train = evaluate(self.model, self.train_loader, self.execution)
        l2 = 0.5 * self.cfg.optim.weight_decay * float(vector.pow(2).sum())
        return {
            "test_error": 100.0 - test["acc"],
            "test_loss": test["loss"],
            "train_error": 100.0 - train["acc"],
            "train_loss": train["loss"],
            "train_loss_l2": train["loss"] + l2,
        }


# How a test subset is drawn (a point cache's key names it, so points of another draw are never reused).
TEST_SUBSET = "stratified"


def stratified_pick(targets, n: int, seed: int) -> list[int]:
    """`n` indices in which every class is represented as equally as `n` allows (the first n mod k
    classes one image more), drawn at random within each class with `seed`; sorted. A uniform draw of
    2,000 of CIFAR-10's 10,000 test images can be several points harder than the whole set (its
    class mix differs); an equal mix of the classes, as the whole set has, does not add that error."""
    targets = torch.as_tensor(targets)
    generator = torch.Generator().manual_seed(seed)
    classes = sorted(set(targets.tolist()))
    picked = []
    for i, c in enumerate(classes):
        members = torch.nonzero(targets == c).flatten()
        take = n // len(classes) + (1 if i < n % len(classes) else 0)
        picked += members[torch.randperm(len(members), generator=generator)[:take]].tolist()
    return sorted(picked)


POINT_METRICS = ("test_error", "test_loss", "train_error", "train_loss", "train_loss_l2")


class PointCache:
    """Metrics by point key, appended to a JSONL file as they are computed. A line that is not a
    point's row (cut short by a kill, or damaged) is left out and its point computed again; a new
    row never continues a cut line."""

    def __init__(self, path: Path):
        self.path = path
        self.rows: dict[str, dict] = {}
        self._clean_end = True
        if path.exists():
            text = path.read_text(errors="replace")
            self._clean_end = text == "" or text.endswith("\n")
            for line in text.splitlines():
                row = _point_row(line)
                if row is not None:
                    self.rows[row["key"]] = row

    def get_or_compute(self, key: str, compute) -> dict:
        if key not in self.rows:
            row = {"key": key, **compute()}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a") as f:
                f.write(("" if self._clean_end else "\n") + json.dumps(row) + "\n")
            self._clean_end = True
            self.rows[key] = row
        return self.rows[key]


def _point_row(line: str) -> dict | None:
    try:
        row = json.loads(line)
    except ValueError:
        return None
    if not isinstance(row, dict) or not isinstance(row.get("key"), str):
        return None
    if not all(isinstance(row.get(m), (int, float)) and not isinstance(row.get(m), bool) for m in POINT_METRICS):
        return None
    return row


def finite(values) -> np.ndarray:
    return np.nan_to_num(np.asarray(values, dtype=float), nan=100.0, posinf=1e6)
