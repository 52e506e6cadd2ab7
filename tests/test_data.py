"""Datasets in their real on-disk formats, written by the tests: torchvision's CIFAR pickle batches,
an ImageFolder tree of PNGs, and the scikit-learn digits demo; plus the docs/PROTOCOL.md §2 transforms."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import CIFAR10_CLASSES, N_PER_BATCH, N_TEST, write_cifar10, write_cifar100, write_imagefolder
from PIL import Image
from torch.utils.data import Subset
from torchvision import transforms as T

from swa_bench.config import DataConfig
from swa_bench.data import DataError, build_datasets
from swa_bench.data.transforms import transforms_for

VGG_MEAN = (0.485, 0.456, 0.406)
VGG_STD = (0.229, 0.224, 0.225)
RES_MEAN = (0.4914, 0.4822, 0.4465)
RES_STD = (0.2023, 0.1994, 0.2010)


def cfg_for(tmp_path: Path, dataset: str = "cifar10", **kw) -> DataConfig:
    kw.setdefault("mean", RES_MEAN)
    kw.setdefault("std", RES_STD)
    kw.setdefault("verify_checksums", False)
    kw.setdefault("workers", 0)
    return DataConfig(dataset=dataset, path=str(tmp_path), **kw)


def unnormalise(x: torch.Tensor, mean, std) -> np.ndarray:
    """(C, H, W) normalised float tensor -> (H, W, C) uint8, undoing ToTensor and Normalize."""
    m = torch.tensor(mean).view(-1, 1, 1)
    s = torch.tensor(std).view(-1, 1, 1)
    pixels = ((x * s + m) * 255.0).round()
    assert float(pixels.min()) >= 0 and float(pixels.max()) <= 255
    return pixels.to(torch.uint8).permute(1, 2, 0).numpy()


def assert_one_line(err: pytest.ExceptionInfo, *needles: str) -> str:
    message = str(err.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message
    return message


# --------------------------------------------------------------------------------------------------
# torchvision's CIFAR pickle batches


def test_cifar10_pickles_load(tmp_path):
    written = write_cifar10(tmp_path)
    bundle = build_datasets(cfg_for(tmp_path), progress=False)
    assert len(bundle.train) == 5 * N_PER_BATCH
    assert bundle.train_size_full == 5 * N_PER_BATCH
    assert len(bundle.test) == N_TEST
    assert bundle.num_classes == 10
    assert bundle.source["format"] == "torchvision"
    assert bundle.source["path"] == str(written["folder"].resolve())
    x, y = bundle.train[0]
    assert isinstance(x, torch.Tensor) and x.dtype == torch.float32
    assert x.shape == (3, 32, 32)
    assert isinstance(y, int) and y == written["train_labels"][0]
    assert [bundle.train[i][1] for i in range(len(bundle.train))] == written["train_labels"]
    assert [bundle.test[i][1] for i in range(N_TEST)] == written["test_labels"]


def test_cifar10_test_pixels_match_the_written_rows(tmp_path):
    written = write_cifar10(tmp_path)
    cfg = cfg_for(tmp_path)
    bundle = build_datasets(cfg, progress=False)
    for i in (0, 7, N_TEST - 1):
        x, _ = bundle.test[i]
        expected = written["test_data"][i].reshape(3, 32, 32).transpose(1, 2, 0)  # channel-major row -> HWC
        np.testing.assert_array_equal(unnormalise(x, cfg.mean, cfg.std), expected)


def test_cifar10_train_batches_keep_file_order(tmp_path):
    written = write_cifar10(tmp_path)
    cfg = cfg_for(tmp_path, augment=())  # no augmentation: the train transform is then exact too
    bundle = build_datasets(cfg, progress=False)
    for i in (0, N_PER_BATCH, 3 * N_PER_BATCH + 5, 5 * N_PER_BATCH - 1):
        x, _ = bundle.train[i]
        expected = written["train_data"][i].reshape(3, 32, 32).transpose(1, 2, 0)
        np.testing.assert_array_equal(unnormalise(x, cfg.mean, cfg.std), expected)


def test_cifar10_train_samples_are_augmented(tmp_path):
    write_cifar10(tmp_path)
    bundle = build_datasets(cfg_for(tmp_path), progress=False)
    torch.manual_seed(0)
    views = torch.stack([bundle.train[0][0] for _ in range(8)])
    assert views.shape == (8, 3, 32, 32)
    assert not all(torch.equal(views[0], v) for v in views[1:])


def test_cifar100_pickles_load(tmp_path):
    written = write_cifar100(tmp_path)
    cfg = cfg_for(tmp_path, dataset="cifar100")
    bundle = build_datasets(cfg, progress=False)
    assert (len(bundle.train), len(bundle.test), bundle.num_classes) == (60, 25, 100)
    assert bundle.source["format"] == "torchvision"
    assert bundle.source["path"] == str(written["folder"].resolve())
    assert [bundle.test[i][1] for i in range(25)] == written["test"]["fine_labels"]
    x, _ = bundle.test[3]
    expected = written["test"]["data"][3].reshape(3, 32, 32).transpose(1, 2, 0)
    np.testing.assert_array_equal(unnormalise(x, cfg.mean, cfg.std), expected)


@pytest.mark.parametrize("dataset, writer", [("cifar10", write_cifar10), ("cifar100", write_cifar100)])
def test_checksums_reject_hand_made_files(tmp_path, dataset, writer):
    written = writer(tmp_path)
    with pytest.raises(DataError) as err:
        build_datasets(cfg_for(tmp_path, dataset=dataset, verify_checksums=True), progress=False)
    assert_one_line(err, str(written["folder"]))


def test_format_torchvision_is_chosen_when_no_train_test_folders(tmp_path):
    write_cifar10(tmp_path)
    (tmp_path / "train").mkdir()  # only one of the two ImageFolder splits: still torchvision
    bundle = build_datasets(cfg_for(tmp_path, format="auto"), progress=False)
    assert bundle.source["format"] == "torchvision"


@pytest.mark.parametrize("victim", ["data_batch_3", "test_batch"])
def test_truncated_pickle_batch(tmp_path, victim):
    written = write_cifar10(tmp_path)
    path = written["folder"] / victim
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError) as err:
        build_datasets(cfg_for(tmp_path), progress=False)
    assert_one_line(err, str(written["folder"]), "cifar10")


def test_missing_pickle_batch(tmp_path):
    written = write_cifar10(tmp_path)
    (written["folder"] / "data_batch_5").unlink()
    with pytest.raises(DataError) as err:
        build_datasets(cfg_for(tmp_path), progress=False)
    assert_one_line(err, str(written["folder"]))


def test_missing_meta_file(tmp_path):
    written = write_cifar10(tmp_path)
    (written["folder"] / "batches.meta").unlink()
    with pytest.raises(DataError) as err:
        build_datasets(cfg_for(tmp_path), progress=False)
    assert_one_line(err, str(written["folder"]))


@pytest.mark.parametrize("dataset", ["cifar10", "cifar100"])
def test_missing_data_path(tmp_path, dataset):
    root = tmp_path / "nothing-here"
    with pytest.raises(DataError) as err:
        build_datasets(cfg_for(root, dataset=dataset), progress=False)
    assert_one_line(err, str(root), "--download")


def test_empty_data_dir(tmp_path):
    with pytest.raises(DataError) as err:
        build_datasets(cfg_for(tmp_path), progress=False)
    assert_one_line(err, str(tmp_path), "--download")


def test_explicit_imagefolder_format_without_folders(tmp_path):
    write_cifar10(tmp_path)
    with pytest.raises(DataError) as err:
        build_datasets(cfg_for(tmp_path, format="imagefolder"), progress=False)
    assert_one_line(err, str(tmp_path / "train"))


# --------------------------------------------------------------------------------------------------
# ImageFolder trees


def test_imagefolder_loads_with_sorted_class_labels(tmp_path):
    # Create the class folders in an unsorted order; labels must follow the sorted names.
    classes = ["truck", "bird", "zebra", "airplane", "cat", "ship", "dog", "horse", "frog", "deer"]
    written = write_imagefolder(tmp_path, classes, n_train=2, n_test=1)
    cfg = cfg_for(tmp_path, mean=VGG_MEAN, std=VGG_STD)
    bundle = build_datasets(cfg, progress=False)
    assert bundle.source["format"] == "imagefolder"
    assert bundle.source["path"] == str(tmp_path.resolve())
    assert (len(bundle.train), len(bundle.test), bundle.num_classes) == (20, 10, 10)
    index = {name: i for i, name in enumerate(sorted(classes))}
    seen = set()
    for i in range(len(bundle.test)):
        x, y = bundle.test[i]
        assert x.shape == (3, 32, 32) and x.dtype == torch.float32
        pixels = unnormalise(x, cfg.mean, cfg.std)
        name = written["test"][pixels.tobytes()]  # KeyError if the pixels were altered
        assert y == index[name]
        seen.add(name)
    assert seen == set(classes)
    # Train images are augmented: compare the decoded arrays with what was written, label by label.
    raw = bundle.train
    assert sorted(raw.targets.tolist()) == sorted(index[n] for n in written["train"].values())
    for image, label in zip(raw.images, raw.targets):
        assert index[written["train"][image.tobytes()]] == int(label)


def test_imagefolder_wins_over_torchvision_in_auto(tmp_path):
    write_cifar10(tmp_path)
    write_imagefolder(tmp_path, CIFAR10_CLASSES, n_train=1, n_test=1)
    bundle = build_datasets(cfg_for(tmp_path), progress=False)
    assert bundle.source["format"] == "imagefolder"
    assert len(bundle.train) == 10
    forced = build_datasets(cfg_for(tmp_path, format="torchvision"), progress=False)
    assert forced.source["format"] == "torchvision"
    assert len(forced.train) == 5 * N_PER_BATCH


def test_imagefolder_with_nine_classes_for_cifar10(tmp_path):
    write_imagefolder(tmp_path, CIFAR10_CLASSES[:9], n_train=1, n_test=1)
    with pytest.raises(DataError) as err:
        build_datasets(cfg_for(tmp_path), progress=False)
    assert_one_line(err, str(tmp_path / "train"), "9", "10")


def test_imagefolder_test_classes_differ(tmp_path):
    write_imagefolder(tmp_path, CIFAR10_CLASSES, n_train=1, n_test=1)
    (tmp_path / "test" / "truck").rename(tmp_path / "test" / "lorry")
    with pytest.raises(DataError) as err:
        build_datasets(cfg_for(tmp_path), progress=False)
    assert_one_line(err, str(tmp_path / "test"))


def test_imagefolder_empty_class_folder(tmp_path):
    write_imagefolder(tmp_path, CIFAR10_CLASSES, n_train=1, n_test=1)
    for f in (tmp_path / "train" / "cat").iterdir():
        f.unlink()
    with pytest.raises(DataError) as err:
        build_datasets(cfg_for(tmp_path), progress=False)
    assert_one_line(err, str(tmp_path / "train"), "cat")


def test_imagefolder_unreadable_png(tmp_path):
    write_imagefolder(tmp_path, CIFAR10_CLASSES, n_train=1, n_test=1)
    bad = tmp_path / "test" / "dog" / "0000.png"
    bad.write_bytes(b"\x00garbage, not a PNG\xff" * 10)
    with pytest.raises(DataError) as err:
        build_datasets(cfg_for(tmp_path), progress=False)
    assert_one_line(err, str(bad))


def test_imagefolder_images_of_different_sizes(tmp_path):
    write_imagefolder(tmp_path, CIFAR10_CLASSES, n_train=1, n_test=1)
    odd = tmp_path / "train" / "ship" / "0000.png"
    Image.fromarray(np.zeros((16, 16, 3), dtype=np.uint8)).save(odd)
    with pytest.raises(DataError) as err:
        build_datasets(cfg_for(tmp_path), progress=False)
    assert_one_line(err, str(odd))


# --------------------------------------------------------------------------------------------------
# Training subsets (on the digits demo: real data, no files needed)

DIGITS = dict(mean=(0.3,), std=(0.4,), augment=("crop",), crop_padding=1)


def _subset_indices(tmp_path, n, seed):
    bundle = build_datasets(cfg_for(tmp_path, dataset="digits", train_subset=n, subset_seed=seed, **DIGITS))
    assert isinstance(bundle.train, Subset)
    assert len(bundle.train) == n
    assert bundle.train_size_full == 1437
    return list(bundle.train.indices)


def test_train_subset_is_deterministic_per_subset_seed(tmp_path):
    a = _subset_indices(tmp_path, 100, seed=0)
    b = _subset_indices(tmp_path, 100, seed=0)
    c = _subset_indices(tmp_path, 100, seed=1)
    assert a == b
    assert a != c
    assert len(set(a)) == 100 and all(0 <= i < 1437 for i in a)


def test_train_subset_of_everything(tmp_path):
    assert sorted(_subset_indices(tmp_path, 1437, seed=3)) == list(range(1437))


def test_train_subset_on_cifar_pickles(tmp_path):
    write_cifar10(tmp_path)
    bundle = build_datasets(cfg_for(tmp_path, train_subset=30, subset_seed=5), progress=False)
    again = build_datasets(cfg_for(tmp_path, train_subset=30, subset_seed=5), progress=False)
    assert len(bundle.train) == 30 and bundle.train_size_full == 5 * N_PER_BATCH
    assert bundle.train.indices == again.train.indices
    assert len(bundle.test) == N_TEST  # the test set is never subset


def test_train_subset_larger_than_train_set(tmp_path):
    with pytest.raises(DataError) as err:
        build_datasets(cfg_for(tmp_path, dataset="digits", train_subset=1438, **DIGITS))
    assert_one_line(err, "1438", "1437")


def test_train_subset_larger_than_cifar_train_set(tmp_path):
    written = write_cifar10(tmp_path)
    with pytest.raises(DataError) as err:
        build_datasets(cfg_for(tmp_path, train_subset=5 * N_PER_BATCH + 1), progress=False)
    assert_one_line(err, str(written["folder"].resolve()))


# --------------------------------------------------------------------------------------------------
# Transforms (docs/PROTOCOL.md §2)


@pytest.mark.parametrize(
    "augment, expected",
    [
        (("flip", "crop"), [T.RandomHorizontalFlip, T.RandomCrop]),  # VGG
        (("crop", "flip"), [T.RandomCrop, T.RandomHorizontalFlip]),  # PreResNet, WRN
    ],
)
def test_train_transform_order(augment, expected):
    cfg = DataConfig(dataset="cifar10", mean=VGG_MEAN, std=VGG_STD, augment=augment)
    train, test = [t.torchvision(32) for t in transforms_for(cfg)]
    steps = train.transforms
    assert [type(t) for t in steps] == expected + [T.ToTensor, T.Normalize]
    crop = next(t for t in steps if isinstance(t, T.RandomCrop))
    assert crop.padding == 4
    assert tuple(crop.size) == (32, 32)
    assert crop.fill == 0 and crop.padding_mode == "constant"  # zero padding
    flip = next(t for t in steps if isinstance(t, T.RandomHorizontalFlip))
    assert flip.p == 0.5
    assert tuple(steps[-1].mean) == VGG_MEAN and tuple(steps[-1].std) == VGG_STD
    assert [type(t) for t in test.transforms] == [T.ToTensor, T.Normalize]
    assert tuple(test.transforms[1].mean) == VGG_MEAN and tuple(test.transforms[1].std) == VGG_STD


def test_test_transform_is_deterministic():
    cfg = DataConfig(dataset="cifar10", mean=RES_MEAN, std=RES_STD)
    test = transforms_for(cfg)[1].torchvision(32)
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8))
    assert torch.equal(test(img), test(img))


def test_crop_keeps_size_and_pads_with_zeros():
    cfg = DataConfig(dataset="cifar10", mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), augment=("crop",))
    train = transforms_for(cfg)[0].torchvision(32)
    img = Image.fromarray(np.full((32, 32, 3), 255, dtype=np.uint8))
    torch.manual_seed(0)
    outs = [train(img) for _ in range(20)]
    assert all(o.shape == (3, 32, 32) for o in outs)
    # A shifted crop exposes the zero padding: some views contain black pixels, none other values.
    assert any(float(o.min()) == 0.0 for o in outs)
    assert all(set(torch.unique(o).tolist()) <= {0.0, 1.0} for o in outs)


# --------------------------------------------------------------------------------------------------
# The digits demo


def test_digits_dataset(tmp_path):
    cfg = cfg_for(tmp_path / "unused", dataset="digits", **DIGITS)
    first = build_datasets(cfg, progress=False)
    second = build_datasets(cfg, progress=False)
    assert (len(first.train), len(first.test), first.num_classes) == (1437, 360, 10)
    assert first.source["format"] == "sklearn"
    x, y = first.train[0]
    assert x.shape == (1, 8, 8) and x.dtype == torch.float32
    assert 0 <= y < 10
    xt, _ = first.test[0]
    assert xt.shape == (1, 8, 8)
    # The split is fixed: identical across loads, and train and test do not share images.
    np.testing.assert_array_equal(first.train.images, second.train.images)
    np.testing.assert_array_equal(first.train.targets, second.train.targets)
    np.testing.assert_array_equal(first.test.images, second.test.images)
    np.testing.assert_array_equal(first.test.targets, second.test.targets)
    assert set(np.unique(first.train.targets)) == set(range(10))
    # Test images are exactly the stored grey levels after undoing Normalize.
    np.testing.assert_array_equal(unnormalise(xt, cfg.mean, cfg.std)[..., 0], first.test.images[0][..., 0])


def test_failed_download_is_one_line(tmp_path, monkeypatch):
    from torchvision.datasets import CIFAR10

    def offline(self):
        raise OSError("network is unreachable")

    monkeypatch.setattr(CIFAR10, "download", offline)
    with pytest.raises(DataError) as err:
        build_datasets(cfg_for(tmp_path, download=True), progress=False)
    assert_one_line(err, str(tmp_path), "downloading cifar10 failed", "network is unreachable")


def test_digits_are_scikit_learns_load_digits_read_without_importing_it():
    from sklearn.datasets import load_digits

    from swa_bench.data.datasets import _load_digits

    (train, test), _ = _load_digits()
    digits = load_digits()
    images = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    order = np.random.default_rng(0).permutation(len(digits.target))
    np.testing.assert_array_equal(train[0], images[order[:1437]])
    np.testing.assert_array_equal(train[1], digits.target[order[:1437]])
    np.testing.assert_array_equal(test[0], images[order[1437:]])
    np.testing.assert_array_equal(test[1], digits.target[order[1437:]])
