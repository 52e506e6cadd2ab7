"""Where the images come from.

The small sources end up as the same thing: uint8 images in memory (N, H, W, C) with integer labels,
served through PIL and the docs/PROTOCOL.md §2 transforms, as torchvision's CIFAR classes do. That keeps one
transform path for the pickle batches, an ImageFolder copy and the digits demo. ImageNet (docs/PROTOCOL.md §4)
is too large for that: its ImageFolder tree is read image by image, with the same errors.
"""

from __future__ import annotations

import os
import pickle
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, Subset

from swa_bench.config import DataConfig, num_classes
from swa_bench.data.transforms import ImageTransform, transforms_for
from swa_bench.errors import UserError


class DataError(UserError, RuntimeError):
    """A missing or malformed dataset, phrased as one line naming what was expected where."""


class ImageArrayDataset(Dataset):
    """uint8 images (N, H, W, C) and labels, served per image through `spec`'s torchvision transform."""

    def __init__(self, images: np.ndarray, targets: np.ndarray, spec: ImageTransform):
        self.images = images
        self.targets = targets
        self.spec = spec
        self.transform = None  # built at the first image: the device loader never needs it (nor torchvision)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        if self.transform is None:
            self.transform = self.spec.torchvision(image_size=self.images.shape[1])
        image = self.images[index]
        pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
        return self.transform(pil), int(self.targets[index])


class ImageFileDataset(Dataset):
    """(path, label) samples decoded when asked for. An unreadable file stops the run naming it, or
    with `skip_bad` gives None, which the loader leaves out and counts."""

    def __init__(self, samples: list[tuple[str, int]], spec: ImageTransform, skip_bad: bool):
        self.samples = samples
        self.targets = np.asarray([label for _, label in samples], dtype=np.int64)
        self.spec = spec
        self.transform = spec.torchvision()
        self.skip_bad = skip_bad

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        path, label = self.samples[index]
        try:
            with Image.open(path) as img:
                image = img.convert("RGB")
        except Exception as e:  # truncated, not an image, unreadable
            if self.skip_bad:
                return None
            raise DataError(f"{path}: unreadable image ({e.__class__.__name__}); "
                            f"--set data.skip_bad_images=true skips and counts such files") from None
        return self.transform(image), label


@dataclass
class DatasetBundle:
    train: Dataset
    test: Dataset
    num_classes: int
    source: dict  # what the images are: {"format", "path", "description"}
    train_size_full: int
    in_memory: bool = True  # False: images are read from files as needed (ImageNet)
    # (height, width) of the training and of the test images as they reach the model; None: varies
    input_sizes: tuple[tuple[int, int], tuple[int, int]] | None = None


def build_datasets(cfg: DataConfig, progress: bool = True) -> DatasetBundle:
    """Load train and test sets for `cfg`, apply transforms and the optional training subset."""
    if cfg.dataset == "digits":
        arrays, source = _load_digits()
    elif cfg.dataset == "imagenet":
        return _imagenet_bundle(cfg)
    else:
        fmt = _resolve_format(cfg)
        if fmt == "imagefolder":
            arrays, source = _load_imagefolder(cfg, progress)
        else:
            arrays, source = _load_torchvision_cifar(cfg)
    (train_x, train_y), (test_x, test_y) = arrays
    classes = num_classes(cfg)
    for split, labels in (("train", train_y), ("test", test_y)):
        if len(labels) == 0:
            raise DataError(f"{source['path']}: the {split} split has no images")
        if labels.min() < 0 or labels.max() >= classes:
            raise DataError(
                f"{source['path']}: {split} labels span {labels.min()}..{labels.max()}, "
                f"but {cfg.dataset} has {classes} classes"
            )
    if train_x.shape[1:] != test_x.shape[1:]:
        raise DataError(f"{source['path']}: train images are {train_x.shape[1:]} but test images are {test_x.shape[1:]}")

    train_spec, test_spec = transforms_for(cfg)
    train: Dataset = ImageArrayDataset(train_x, train_y, train_spec)
    test = ImageArrayDataset(test_x, test_y, test_spec)
    native = tuple(train_x.shape[1:3])
    sizes = ((cfg.image_size,) * 2 if cfg.image_size else native,
             (cfg.image_size,) * 2 if cfg.image_size and cfg.test_resize else native)
    return DatasetBundle(_subset(train, cfg, source), test, classes, source, len(train), input_sizes=sizes)


def _subset(train: Dataset, cfg: DataConfig, source: dict) -> Dataset:
    """`data.train_subset` random training images, the same for every run seed."""
    full = len(train)
    if cfg.train_subset is None:
        return train
    if cfg.train_subset > full:
        raise DataError(f"data.train_subset={cfg.train_subset} exceeds the {full} training images in {source['path']}")
    gen = torch.Generator().manual_seed(cfg.subset_seed)
    indices = torch.randperm(full, generator=gen)[: cfg.train_subset].sort().values.tolist()
    return Subset(train, indices)


# --------------------------------------------------------------------------------------------------
# CIFAR as torchvision's pickle batches


_TV_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}


def data_format(cfg: DataConfig) -> str:
    """Which files a run reads, without reading them: a run made from one must not continue, or be
    reported, as made from another (the JPEG copy of CIFAR-10 against torchvision's PNG originals)."""
    if cfg.dataset == "digits":
        return "sklearn"
    if cfg.dataset == "imagenet":
        return "imagenet"
    return _resolve_format(cfg)


def _resolve_format(cfg: DataConfig) -> str:
    if cfg.format != "auto":
        return cfg.format
    root = Path(cfg.path)
    if (root / "train").is_dir() and (root / cfg.test_split).is_dir():
        return "imagefolder"
    return "torchvision"


def _load_torchvision_cifar(cfg: DataConfig):
    from torchvision.datasets import CIFAR10, CIFAR100
    from torchvision.datasets.utils import check_integrity

    root = Path(cfg.path)
    folder = root / _TV_FOLDERS[cfg.dataset]
    cls = CIFAR10 if cfg.dataset == "cifar10" else CIFAR100
    if cfg.download:
        try:
            cls(str(root), train=True, download=True)
        except Exception as e:  # no network, a proxy, a full disk...
            raise DataError(f"{root}: downloading {cfg.dataset} failed ({e.__class__.__name__}: {e})") from None
    if not folder.is_dir():
        raise DataError(
            f"{cfg.dataset} not found: expected torchvision's {folder.name}/ under {root} "
            f"(or an ImageFolder tree {root}/train and {root}/{cfg.test_split}); pass --download to fetch it"
        )
    # Check every file here, so an error names it; then let torchvision read them unchecked
    # (it only tests that a file exists when its md5 is None).
    files = cls.train_list + cls.test_list + [(cls.meta["filename"], cls.meta["md5"])]
    for name, md5 in files:
        path = folder / name
        if not path.is_file():
            raise DataError(f"{path}: missing from torchvision's {cfg.dataset} files")
        if cfg.verify_checksums and not check_integrity(str(path), md5):
            raise DataError(
                f"{path}: md5 differs from the official {cfg.dataset} file; re-fetch with --download, "
                f"or --set data.verify_checksums=false for a copy you made yourself"
            )
    label_key = "labels" if cfg.dataset == "cifar10" else "fine_labels"
    arrays = [_read_cifar_batches([folder / name for name, _ in names], label_key, cfg.dataset)
              for names in (cls.train_list, cls.test_list)]
    source = {
        "format": "torchvision",
        "path": str(folder.resolve()),
        "description": f"{cfg.dataset} pickle batches (torchvision)",
        "verified": cfg.verify_checksums,  # md5 of the official files checked
    }
    return arrays, source


class _RefusedGlobal(pickle.UnpicklingError):
    pass


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles only what CIFAR's batches hold (dicts, lists, strings and numpy arrays): any other
    global, such as a function a crafted file would call, is refused before it can run."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise _RefusedGlobal(f"{module}.{name} is not something a CIFAR batch holds")
        return super().find_class(module, name)


def _read_cifar_batches(paths: list[Path], label_key: str, dataset: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 32, 32, 3) uint8 and labels of torchvision's CIFAR batch files, read with the
    restricted unpickler; a file that is not such a batch stops the run naming it."""
    images, labels = [], []
    for path in paths:
        try:
            with open(path, "rb") as f:
                entry = _CifarUnpickler(f, encoding="latin1").load()
            data = np.asarray(entry["data"])
            targets = np.asarray(entry[label_key], dtype=np.int64)
            if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(targets) != len(data):
                raise ValueError("not 32x32x3 uint8 images with one label each")
        except _RefusedGlobal as e:
            raise DataError(f"{path}: refused to unpickle: {e} (a crafted or foreign file); not read") from None
        except Exception as e:  # truncated, foreign or malformed
            raise DataError(f"{path}: not a readable {dataset} batch ({e.__class__.__name__}: {_short(e)})") from None
        images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels.append(targets)
    return np.ascontiguousarray(np.concatenate(images)), np.concatenate(labels)


def _short(error: Exception, limit: int = 120) -> str:
    text = str(error)
    return text if len(text) <= limit else text[:limit] + "..."


# --------------------------------------------------------------------------------------------------
# Any ImageFolder tree with train/ and test/ (e.g. the JPEG copy of CIFAR-10)


def _scan_imagefolder(cfg: DataConfig) -> dict[str, list[tuple[str, int]]]:
    """{"train": samples, "test": samples} of ROOT/train/<class>/* and ROOT/<test_split>/<class>/*,
    after checking both splits have the same, expected classes."""
    root = Path(cfg.path)
    splits, classes = {}, None
    for split, name in (("train", "train"), ("test", cfg.test_split)):
        folder = root / name
        if not folder.is_dir():
            raise DataError(
                f"{folder}: missing; an ImageFolder dataset needs {root}/train/<class>/ and {root}/{cfg.test_split}/<class>/"
            )
        try:
            found = sorted(e.name for e in os.scandir(folder) if e.is_dir())
        except OSError as e:
            raise DataError(f"{folder}: cannot read ({os.strerror(e.errno) if e.errno else e})") from None
        if not found:
            raise DataError(f"{folder}: no class folders found")
        if classes is None:
            classes = found
            if len(classes) != num_classes(cfg):
                raise DataError(
                    f"{folder}: {len(classes)} class folders, but {cfg.dataset} has {num_classes(cfg)} classes"
                    + ("" if cfg.num_classes else " (data.num_classes sets another count)")
                )
        elif found != classes:
            raise DataError(f"{folder}: class folders differ from {root / 'train'}")
        splits[split] = [(path, label) for label, name in enumerate(classes) for path in _image_files(folder / name)]
    return splits


def _image_files(folder: Path) -> list[str]:
    """The image files under a class folder, sorted. Directory links are followed, but no directory
    is visited twice, so a link that loops back cannot multiply the images."""
    from torchvision.datasets.folder import IMG_EXTENSIONS

    walked, visited = [], set()

    def unreadable(error: OSError):
        raise DataError(f"{error.filename}: cannot read ({error.strerror})")

    for current, dirs, names in os.walk(folder, followlinks=True, onerror=unreadable):
        real = os.path.realpath(current)
        if real in visited:
            dirs[:] = []
            continue
        visited.add(real)
        walked.append((current, names))
    # The order torchvision's ImageFolder gives (folders by path, then files by name), so subsets and
    # data order match runs made with it.
    files = [os.path.join(current, n) for current, names in sorted(walked) for n in sorted(names)
             if n.lower().endswith(IMG_EXTENSIONS)]
    if not files:
        raise DataError(f"{folder}: no images (expected files ending in {', '.join(IMG_EXTENSIONS)})")
    return files


def _load_imagefolder(cfg: DataConfig, progress: bool):
    root = Path(cfg.path)
    splits = _scan_imagefolder(cfg)
    arrays = []
    for split, name in (("train", "train"), ("test", cfg.test_split)):
        images = _decode_all([path for path, _ in splits[split]], f"decoding {root.name}/{name}", progress)
        labels = np.asarray([label for _, label in splits[split]], dtype=np.int64)
        arrays.append((images, labels))
    source = {
        "format": "imagefolder",
        "path": str(root.resolve()),
        "description": f"ImageFolder copy of {cfg.dataset} at {root}",
    }
    return arrays, source


def _imagenet_bundle(cfg: DataConfig) -> DatasetBundle:
    """The ImageNet tree, read image by image with docs/PROTOCOL.md §4's transforms."""
    root = Path(cfg.path)
    splits = _scan_imagefolder(cfg)
    train_spec, test_spec = transforms_for(cfg)
    source = {"format": "imagenet", "path": str(root.resolve()), "description": f"ImageNet ImageFolder tree at {root}"}
    train = ImageFileDataset(splits["train"], train_spec, cfg.skip_bad_images)
    test = ImageFileDataset(splits["test"], test_spec, cfg.skip_bad_images)
    return DatasetBundle(_subset(train, cfg, source), test, num_classes(cfg), source, len(train), in_memory=False)


def _decode_one(path: str) -> np.ndarray:
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"), dtype=np.uint8)
    except Exception as e:
        raise DataError(f"{path}: unreadable image ({e.__class__.__name__})") from None


def _decode_all(paths: list[str], label: str, progress: bool) -> np.ndarray:
    from tqdm import tqdm

    # PIL releases the GIL while decoding, so threads use every core. The bar shows on a terminal only.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        images = pool.map(_decode_one, paths, chunksize=256)
        decoded = list(tqdm(images, total=len(paths), desc=label, disable=None if progress else True, leave=False))
    shapes = {a.shape for a in decoded}
    if len(shapes) != 1:
        first = decoded[0].shape
        odd = next(p for p, a in zip(paths, decoded) if a.shape != first)
        raise DataError(f"{odd}: image is {decoded[paths.index(odd)].shape[:2]}, others are {first[:2]}")
    return np.stack(decoded)


# --------------------------------------------------------------------------------------------------
# scikit-learn's 8x8 handwritten digits: a real dataset shipped inside a package, for the demo


def _load_digits():
    # The file scikit-learn's load_digits reads (1797 rows: 64 pixel values 0..16, then the label),
    # read directly: importing scikit-learn itself takes about a second, longer than the demo's epochs.
    import importlib.util

    spec = importlib.util.find_spec("sklearn")  # locates the package without importing it
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz" if spec else None
    if path is None or not path.is_file():
        raise DataError("the digits demo needs scikit-learn: pip install 'swa-bench[demo]'")
    table = np.loadtxt(path, delimiter=",")
    # Pixel values are 0..16; scale to 0..255 grey levels so they pass through the PIL path.
    images = np.rint(table[:, :-1].reshape(-1, 8, 8) * (255.0 / 16.0)).astype(np.uint8)[..., None]
    labels = table[:, -1].astype(np.int64)
    # A fixed random split, 80% train and 20% test, the same for every run seed.
    order = np.random.default_rng(0).permutation(len(labels))
    cut = int(0.8 * len(labels))
    train, test = order[:cut], order[cut:]
    source = {"format": "sklearn", "path": "sklearn.datasets.load_digits", "description": "scikit-learn 8x8 digits"}
    return [(images[train], labels[train]), (images[test], labels[test])], source
