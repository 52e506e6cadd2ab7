"""Pretrained weights for the torchvision models (docs/PROTOCOL.md §4: IMAGENET1K_V1, the weights the paper used).

The weights come from `model.weights_path` when given (machines without internet), else from torch's
hub cache, else (only with `model.download`) from torchvision's URL. A local file is checked against
the sha256 prefix torchvision puts in its file name, so a run cannot silently start from other
weights; `model.verify_weights: false` accepts a file made elsewhere.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn as nn

from swa_bench.errors import UserError
from swa_bench.models.registry import get_model_entry

if TYPE_CHECKING:  # models sit below config in the layering: the type is for readers only
    from swa_bench.config import ModelConfig


class WeightsError(UserError, RuntimeError):
    """Pretrained weights that cannot be had or do not fit, phrased as one line."""


# Old DenseNet checkpoints name a dense layer's parts "norm.1", "conv.2"...; the modules are norm1, conv2.
_DENSENET_OLD_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.([12])\.(weight|bias|running_mean|running_var|num_batches_tracked)$"
)


def weights_enum(model: ModelConfig):
    import torchvision.models

    return getattr(torchvision.models, get_model_entry(model.name).weights)[model.weights]


def documented_accuracy(model: ModelConfig) -> float | None:
    """torchvision's documented ImageNet top-1 accuracy of these weights."""
    try:
        return float(weights_enum(model).meta["_metrics"]["ImageNet-1K"]["acc@1"])
    except (KeyError, TypeError):
        return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _locate(model: ModelConfig) -> tuple[Path, str, str]:
    """(file, its URL, the sha256 prefix in torchvision's file name)."""
    url = weights_enum(model).url
    filename = url.rsplit("/", 1)[-1]
    expected = Path(filename).stem.rsplit("-", 1)[-1]
    if model.weights_path is not None:
        path = Path(model.weights_path)
        if not path.is_file():
            raise WeightsError(f"model.weights_path: {path}: no such file (a copy of {url})")
        return path, url, expected
    path = Path(torch.hub.get_dir()) / "checkpoints" / filename
    if path.is_file():
        return path, url, expected
    if not model.download:
        raise WeightsError(
            f"model.weights: {model.name} {model.weights} is not in {path.parent}; download {url} "
            f"and pass --weights PATH, or pass --download to fetch it"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(url, str(path), hash_prefix=expected, progress=True)
    except Exception as e:  # no network, a proxy, a full disk, a corrupted download
        raise WeightsError(
            f"model.weights: downloading {url} failed ({e.__class__.__name__}); fetch it elsewhere and "
            "pass --weights PATH"
        ) from None
    return path, url, expected


def load_pretrained(module: nn.Module, model: ModelConfig) -> dict:
    """Load `model.weights` into `module`; returns what was loaded, for the run's records."""
    path, url, expected = _locate(model)
    sha256 = _sha256(path)
    if model.verify_weights and not sha256.startswith(expected):
        raise WeightsError(
            f"{path}: sha256 starts {sha256[: len(expected)]}, not {expected} as torchvision's {model.weights} file "
            f"{url.rsplit('/', 1)[-1]}; use --set model.verify_weights=false for weights made elsewhere"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise WeightsError(f"{path}: not a readable state_dict ({e.__class__.__name__})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise WeightsError(f"{path}: not a state_dict (a {type(state).__name__} of tensors by name was expected)")
    state = {_DENSENET_OLD_KEY.sub(r"\1\2.\3", k): v for k, v in state.items()}
    try:
        module.load_state_dict(state)
    except RuntimeError as e:
        detail = " ".join(line.strip() for line in str(e).strip().splitlines()[1:2])[:300]
        raise WeightsError(f"{path}: does not fit {model.name} ({detail})") from None
    verified = sha256.startswith(expected)
    return {
        "weights": model.weights,
        "file": str(path),
        "sha256": sha256,
        "verified": verified,
        # torchvision's figure describes its own file only
        "documented_acc1": documented_accuracy(model) if verified else None,
    }
