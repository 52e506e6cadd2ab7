"""The landscape figures of docs/PROTOCOL.md §6, each a command: `rays` (optima width), `line` (SGD to SWA and
beyond) and `plane` (through three weights). Every point's metrics are cached (figures/evaluator.py),
so a long computation shows its progress and resumes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from swa_bench.figures.evaluator import PointCache, PointEvaluator, finite
from swa_bench.figures.output import COLORS, pyplot, save_figure
from swa_bench.figures.weights import Plane, grid_axis, load_state, random_directions, run_dir_of, solution_file

METRICS = [("test_error", "test error (%)"), ("train_loss_l2", "train loss (L2-regularised)")]


def _bar(total: int, what: str, progress: bool):
    return tqdm(total=total, desc=what, disable=None if progress else True, leave=False)


def _cache(out: Path, name: str, *identity) -> PointCache:
    """The point cache of one figure under one evaluation setting (solutions, subsets, directions...):
    another setting gets another file, so cached numbers are never mixed across settings."""
    digest = hashlib.sha256(json.dumps([str(i) for i in identity]).encode()).hexdigest()[:10]
    return PointCache(out / f"{name}.points.{digest}.jsonl")


def _evaluator(run_dir, options) -> PointEvaluator:
    return PointEvaluator(run_dir, options.get("data_path"), options.get("device"), options.get("train_images"),
                          progress=options.get("progress", True), test_images=options.get("test_images"))


def rays(swa_run, sgd_run, out, rays: int = 10, max_distance: float = 50.0, points: int = 21, seed: int = 0,
         **options) -> list[Path]:
    """Test error and L2-regularised train loss along `rays` random unit directions from each solution."""
    out = Path(out)
    ev = _evaluator(swa_run, options)
    solutions = {"swa": ev.vector(load_state(solution_file(swa_run))), "sgd": ev.vector(load_state(solution_file(sgd_run)))}
    directions = random_directions(solutions["swa"].numel(), rays, seed)
    distances = np.linspace(0.0, max_distance, points)
    cache = _cache(out, "rays", swa_run, sgd_run, seed, options.get("train_images"), options.get("test_images"))
    rows = []
    with _bar(2 * rays * points, "rays", options.get("progress", True)) as bar:
        for name, w in solutions.items():
            for r, d in enumerate(directions):
                for t in distances:
                    key = f"{name}:seed{seed}:ray{r}:t{t:.6g}"
                    m = cache.get_or_compute(key, lambda: ev.metrics(w + float(t) * d))
                    rows.append({"solution": name, "ray": r, "distance": t, **{k: m[k] for k in m if k != "key"}})
                    bar.update(1)
    data = pd.DataFrame(rows)
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, (metric, title) in zip(axes, METRICS):
        for name, part in data.groupby("solution"):
            for r, ray in part.groupby("ray"):
                ax.plot(ray["distance"], finite(ray[metric]), color=COLORS[name], alpha=0.5, linewidth=1,
                        label=name.upper() if r == 0 else None)
        ax.set_xlabel("distance along a random direction")
        ax.set_ylabel(title)
        ax.legend()
    fig.suptitle(f"Width of the optima: {rays} random rays from each solution")
    return save_figure(fig, out, "rays", data)


def line(swa_run, sgd_run, out, t_range: tuple[float, float] = (-1.0, 2.0), points: int = 31, **options) -> list[Path]:
    """Both metrics along w(t) = t w_SGD + (1 - t) w_SWA, against signed distance from w_SWA."""
    out = Path(out)
    ev = _evaluator(swa_run, options)
    w_swa, w_sgd = ev.vector(load_state(solution_file(swa_run))), ev.vector(load_state(solution_file(sgd_run)))
    gap = float((w_sgd - w_swa).norm())
    cache = _cache(out, "line", swa_run, sgd_run, options.get("train_images"), options.get("test_images"))
    rows = []
    ts = np.linspace(t_range[0], t_range[1], points)
    with _bar(points, "line", options.get("progress", True)) as bar:
        for t in sorted(set(ts.tolist()) | {0.0, 1.0}):  # always the two solutions themselves
            m = cache.get_or_compute(f"t{t:.6g}", lambda: ev.metrics(t * w_sgd + (1 - t) * w_swa))
            rows.append({"t": t, "distance": t * gap, **{k: m[k] for k in m if k != "key"}})
            bar.update(1)
    data = pd.DataFrame(rows)
    plt = pyplot()
    fig, left = plt.subplots(figsize=(7, 4))
    right = left.twinx()
    left.plot(data["distance"], finite(data["test_error"]), color=COLORS["swa"], label="test error")
    right.plot(data["distance"], finite(data["train_loss_l2"]), color=COLORS["sgd"], linestyle="--", label="train loss")
    for x, name in ((0.0, "SWA"), (gap, "SGD")):
        left.axvline(x, color="black", alpha=0.3, linewidth=1)
        left.annotate(name, (x, left.get_ylim()[1]), ha="center", va="bottom", fontsize=9)
    left.set_xlabel("signed distance from the SWA solution")
    left.set_ylabel("test error (%)", color=COLORS["swa"])
    right.set_ylabel("train loss (L2-regularised)", color=COLORS["sgd"])
    right.grid(False)
    return save_figure(fig, out, "line", data)


def plane(checkpoints: list[str | Path], out, grid: int = 21, margin: float = 0.2, extra: list[str | Path] = (),
          **options) -> list[Path]:
    """Contours of test error and train loss on the plane through three weight files, the three
    (and any `extra`, projected) marked."""
    out = Path(out)
    ev = _evaluator(run_dir_of(checkpoints[0]), options)
    vectors = [ev.vector(load_state(p)) for p in checkpoints]
    geometry = Plane.through(*vectors)
    marked = [(Path(p).stem if i >= 3 else f"w{i + 1} ({Path(p).parent.parent.parent.name} {Path(p).stem})",
               *geometry.coordinates(ev.vector(load_state(p)) if i >= 3 else vectors[i]))
              for i, p in enumerate(list(checkpoints) + list(extra))]
    xs = grid_axis([x for _, x, _ in marked[:3]], margin, grid)
    ys = grid_axis([y for _, _, y in marked[:3]], margin, grid)
    cache = _cache(out, "plane", *checkpoints, options.get("train_images"), options.get("test_images"))
    values = {metric: np.zeros((grid, grid)) for metric, _ in METRICS}
    with _bar(grid * grid, "plane", options.get("progress", True)) as bar:
        for j, y in enumerate(ys):
            for i, x in enumerate(xs):
                m = cache.get_or_compute(f"x{x:.6g}:y{y:.6g}", lambda: ev.metrics(geometry.point(x, y)))
                for metric, _ in METRICS:
                    values[metric][j, i] = m[metric]
                bar.update(1)
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, (metric, title) in zip(axes, METRICS):
        field = finite(values[metric])
        filled = ax.contourf(xs, ys, field, levels=20, cmap="viridis")
        ax.contour(xs, ys, field, levels=20, colors="white", linewidths=0.3, alpha=0.5)
        fig.colorbar(filled, ax=ax)
        for name, x, y in marked:
            ax.plot(x, y, marker="o", color="white", markeredgecolor="black")
            ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7, color="white")
        ax.set_title(title)
        ax.set_xlabel("x (along w2 - w1)")
        ax.set_ylabel("y")
    data = {"x": xs, "y": ys, "points": [{"name": n, "x": x, "y": y} for n, x, y in marked],
            **{metric: values[metric].tolist() for metric, _ in METRICS}}
    return save_figure(fig, out, "plane", data)
