"""A run's identity and its place, in one place: which config keys its numbers depend on (the digest
every checkpoint and weights file carries), and its folder under --out,

    <out>/<dataset>/<model>/<method folder>/seed<k>[-scale<x>][-subset<n>]

and a run's name read back from its folder (run_name). The seed folder says what makes a run another experiment than the
paper's full one (a budget scale, a training subset), so quick and full runs of a row live side by
side; the method folder is the method's own (swa-<variant> for an SWA variant). Runtime keys (marked on
the config's schema) change where or how fast a run goes, never its numbers; each method's section
belongs to its runs alone (swa.start_from excepted: it names the row's kind of start)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from swa_bench.config.schema import LATER_KEYS, RUNTIME_KEYS

LAYOUT = ("dataset", "model", "method folder", "seed folder")  # a run folder's last parts, under --out
# Keys that make a run another run by its folder (its method and seed folders): a table labels them
# apart, never as deviations from the paper's protocol.
FOLDER_KEYS = frozenset({"run.method", "run.seed", "run.budget_scale", "data.train_subset"})
# How often a run is evaluated decides which epochs have a test row, never a number: every training
# and BN pass is seeded by the seed and the epoch, so no evaluation shifts a later step.
CADENCE_KEYS = frozenset({"schedule.eval_every"})


@dataclass(frozen=True)
class RunPlace:
    """Where a run lives under --out."""

    dataset: str
    model: str
    folder: str  # the method's folder: sgd, swa, swa-<variant>, ema, fge
    seed_folder: str  # seed<k>[-scale<x>][-subset<n>]

    @classmethod
    def of(
        cls,
        dataset: str,
        model: str,
        method: str,
        seed: int,
        variant: str | None = None,
        budget_scale: float = 1.0,
        train_subset: int | None = None,
    ) -> "RunPlace":
        from swa_bench.methods import find_method

        known = find_method(method)
        folder = f"{method}-{variant}" if variant and known is not None and known.variants else method
        seed_folder = (
            f"seed{seed}"
            + (f"-scale{budget_scale:g}" if budget_scale != 1 else "")
            + (f"-subset{train_subset}" if train_subset is not None else "")
        )
        return cls(dataset, model, folder, seed_folder)

    @classmethod
    def of_config(cls, cfg, method: str | None = None) -> "RunPlace":
        """`cfg`'s run (or its run with another `method`, e.g. its SGD baseline)."""
        return cls.of(
            cfg.data.dataset,
            cfg.model.name,
            method or cfg.run.method,
            cfg.run.seed,
            cfg.swa.variant,
            cfg.run.budget_scale,
            cfg.data.train_subset,
        )

    @property
    def parts(self) -> tuple[str, str, str, str]:
        return self.dataset, self.model, self.folder, self.seed_folder

    def under(self, out: str | Path) -> Path:
        return Path(out).joinpath(*self.parts)


def run_name(run_dir: str | Path) -> str:
    """How logs, grids and dashboards name a run: <dataset>/<model>/<method folder>/<seed folder>,
    the last parts of its folder (fewer for a folder given outside that layout)."""
    return "/".join(Path(run_dir).parts[-len(LAYOUT) :])


def run_dir_of(out: str | Path, cfg, method: str | None = None) -> Path:
    """The directory of `cfg`'s run (or of its run with another `method`, e.g. its SGD baseline)."""
    return RunPlace.of_config(cfg, method).under(out)


def independent_of(method: str):
    """The config keys a run of `method` does not depend on, as a predicate: each method's section
    belongs to it alone (swa.start_from excepted: it names the row's kind of start), so the runs of
    one row may differ there. (An SGD run keeps the state its FGE run starts from, but its numbers
    do not depend on fge keys; an FGE run checks that state's epoch itself.)"""
    from swa_bench.methods import get_method, sections

    own = get_method(method).section
    others = tuple(f"{name}." for name in sections() if name != own)

    def independent(key: str) -> bool:
        return key.startswith(others) and key != "swa.start_from"

    return independent


def run_identity(config: dict) -> dict:
    """What makes a run this run and no other: its method, seed, and a digest of every config key
    its numbers depend on (runtime keys and other methods' sections left out). Kept in every
    checkpoint, so that a checkpoint copied from another run is recognised as foreign."""
    from swa_bench.methods import find_method

    method = config.get("run", {}).get("method", "sgd")
    ignore = independent_of(method) if find_method(method) is not None else (lambda key: False)
    keys = {
        k: v
        for k, v in flatten(config).items()
        if k not in RUNTIME_KEYS and not ignore(k) and not (k in LATER_KEYS and v is None)
    }
    digest = hashlib.sha256(json.dumps(keys, sort_keys=True, default=str).encode()).hexdigest()
    return {"method": method, "seed": config.get("run", {}).get("seed"), "config": digest}


def identity_problem(found, expected: dict, what: str = "state") -> str | None:
    """What makes a file's `found` identity not `expected` (a run_identity), in words; None if it is
    the same, or if the file carries none (written before files carried identities: an older file,
    not a foreign one; its callers check what they can of it otherwise)."""
    if found is None or found == expected:
        return None
    if not isinstance(found, dict):
        return f"its identity ({found!r}) is not a run's"
    same_run = found.get("method") == expected.get("method") and found.get("seed") == expected.get("seed")
    other = "another config" if same_run else f"method {found.get('method')}, seed {found.get('seed')}"
    return f"the {what} of another run ({other}), not of this {expected.get('method')} run"


def data_format_mismatch(stored: dict, resolved: dict) -> str | None:
    """Why a run's records do not go with data of another kind (None if they do; runs recorded before
    the format was kept are not checked). data.path is a runtime key, so the path alone says nothing."""
    theirs, mine = stored.get("data_format"), resolved.get("data_format")
    if theirs is None or mine is None or theirs == mine:
        return None
    return f"this run was made from {theirs} files, and the data now given are {mine} files"


def flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, f"{key}."))
        else:
            out[key] = v
    return out


def config_differences(theirs: dict, mine: dict, ignore=lambda key: False) -> list[tuple[str, object, object]]:
    """(dotted key, their value, my value) for every key two configs disagree on, skipping runtime-only
    keys (device, loader, paths...) and any key `ignore` accepts."""
    a, b = flatten(theirs), flatten(mine)
    return [
        (key, a.get(key), b.get(key))
        for key in sorted(set(a) | set(b))
        if key not in RUNTIME_KEYS and not ignore(key) and a.get(key) != b.get(key)
    ]
