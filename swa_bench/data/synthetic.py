"""Tiny synthetic datasets (random pixels and labels) written in the real on-disk formats:
torchvision's CIFAR pickle batches, ImageFolder trees, the ImageNet layout. The test suite uses them,
and scripts/make_tiny_cifar.py writes them to exercise the pipeline on a CPU; runs on them measure
nothing about SWA, and tables label them (their md5 sums are not the official ones)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from PIL import Image

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
N_PER_BATCH = 20
N_TEST = 30


def write_cifar10(root: Path, n_per_batch: int = N_PER_BATCH, n_test: int = N_TEST, seed: int = 0) -> dict:
    """ROOT/cifar-10-batches-py as the official archive has it: data_batch_1..5, test_batch,
    batches.meta. The files were pickled by Python 2 with str keys, which torchvision reads back
    (encoding="latin1") as str: 'data' (N x 3072 uint8, rows channel-major R..G..B), 'labels'."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    written = {"train_data": [], "train_labels": [], "folder": folder}

    def batch(n: int, label: str) -> dict:
        return {
            "batch_label": label,
            "labels": rng.integers(0, 10, n).tolist(),
            "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            "filenames": [f"img_{label.replace(' ', '_')}_{i}.png" for i in range(n)],
        }

    for i in range(1, 6):
        b = batch(n_per_batch, f"training batch {i} of 5")
        written["train_data"].append(b["data"])
        written["train_labels"].extend(b["labels"])
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(b, protocol=2))
    test = batch(n_test, "testing batch 1 of 1")
    (folder / "test_batch").write_bytes(pickle.dumps(test, protocol=2))
    meta = {"num_cases_per_batch": n_per_batch, "label_names": CIFAR10_CLASSES, "num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    written["train_data"] = np.concatenate(written["train_data"])
    written["test_data"] = test["data"]
    written["test_labels"] = test["labels"]
    return written


def write_cifar100(root: Path, n_train: int = 60, n_test: int = 25, seed: int = 1) -> dict:
    """ROOT/cifar-100-python/{train,test,meta}: 'data', 'fine_labels', 'coarse_labels';
    meta has 'fine_label_names' and 'coarse_label_names'."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)

    def split(n: int, label: str) -> dict:
        return {
            "filenames": [f"{label}_{i}.png" for i in range(n)],
            "batch_label": label,
            "fine_labels": rng.integers(0, 100, n).tolist(),
            "coarse_labels": rng.integers(0, 20, n).tolist(),
            "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        }

    train, test = split(n_train, "training batch 1 of 1"), split(n_test, "testing batch 1 of 1")
    (folder / "train").write_bytes(pickle.dumps(train, protocol=2))
    (folder / "test").write_bytes(pickle.dumps(test, protocol=2))
    meta = {"fine_label_names": [f"fine{i}" for i in range(100)], "coarse_label_names": [f"c{i}" for i in range(20)]}
    (folder / "meta").write_bytes(pickle.dumps(meta, protocol=2))
    return {"train": train, "test": test, "folder": folder}


def write_imagefolder(root: Path, classes: list[str], n_train: int = 2, n_test: int = 1, size: int | tuple = 32,
                      seed: int = 0, test_split: str = "test", suffix: str = ".png"):
    """ROOT/{train,<test_split>}/<class>/NNNN<suffix>; returns {split: {image bytes: class name}}.
    `size`: one side, or (low, high) for images of random heights and widths (ImageNet-like)."""
    rng = np.random.default_rng(seed)
    written: dict[str, dict[bytes, str]] = {"train": {}, "test": {}}
    for split, folder_name, n in (("train", "train", n_train), ("test", test_split, n_test)):
        for name in classes:
            folder = root / folder_name / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                h, w = (size, size) if isinstance(size, int) else rng.integers(size[0], size[1], 2)
                pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i:04d}{suffix}")
                written[split][pixels.tobytes()] = name
    return written


IMAGENET_CLASSES = ["n01440764", "n01443537", "n01484850", "n01491361"]


def write_imagenet(root: Path, n_train: int = 6, n_val: int = 3, seed: int = 0) -> Path:
    """A tiny ImageNet-layout tree: train/<wnid>/*.JPEG and val/<wnid>/*.JPEG, images of assorted sizes."""
    write_imagefolder(root, IMAGENET_CLASSES, n_train, n_val, size=(36, 60), seed=seed, test_split="val",
                      suffix=".JPEG")
    return root
