"""The landscape figures of docs/PROTOCOL.md §6, each a command: `rays` (optima width), `line` (SGD to SWA and
beyond) and `plane` (through three weights). Every point's metrics are cached (figures/evaluator.py),
so a long computation shows its progress and resumes."""

from __future__ import annotations

import hashlib
import json
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from swa_bench.figures.evaluator import TEST_SUBSET, PointCache, PointEvaluator, finite
from swa_bench.figures.output import colors, pyplot, save_figure
from swa_bench.figures.weights import (
    FigureInputError,
    Plane,
    grid_axis,
    load_state,
    random_directions,
    run_dir_of,
    solution_file,
)
from swa_bench.identity import config_differences
from swa_bench.records import RunRecords, atomic_write_text, read_checkpoint

METRICS = [("test_error", "test error (%)"), ("train_loss_l2", "train loss (L2-regularised)")]


def _bar(total: int, what: str, progress: bool):
    return tqdm(total=total, desc=what, disable=None if progress else True, leave=False)


def _cache(out: Path, name: str, weights_files, *setting) -> PointCache:
    """The point cache of one figure under what determines its points: the contents of the weights
    files (not their paths: a run retrained at the same path is another run) and the evaluation
    setting (subsets, directions...). Anything else gets another file, so cached numbers are never
    paired with other weights or settings."""
    contents = [_file_digest(Path(f)) for f in weights_files]
    setting = (*setting, TEST_SUBSET)
    digest = hashlib.sha256(json.dumps([contents, [str(i) for i in setting]]).encode()).hexdigest()[:16]
    return PointCache(out / f"{name}.points.{digest}.jsonl")


def _digest_of(files) -> str:
    return hashlib.sha256(json.dumps([_file_digest(Path(f)) for f in files]).encode()).hexdigest()[:16]


def _file_digest(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def _solutions(swa_run, sgd_run) -> tuple[Path, Path]:
    """The weights files of the two solutions, after checking that --swa names an averaged run and
    --sgd an SGD run of the same row, seed and protocol: their configs may differ only where a
    continuation may differ from the SGD run it continues (the method's own keys). Swapped or
    mismatched runs would mislabel the figure: SWA of one seed against SGD of another is not the
    paper's comparison."""
    from swa_bench.continuation import _not_the_sgd_runs
    from swa_bench.methods import methods as registered
    from swa_bench.methods.sgd import BASELINE

    configs = {}
    averaged = tuple(m.name for m in registered() if m.reports == "weights")  # one set of weights: SWA, EMA
    for flag, run, methods in (("--swa", swa_run, averaged), ("--sgd", sgd_run, (BASELINE,))):
        config = RunRecords(run).stored_config()["config"]
        method = config.get("run", {}).get("method")
        if method not in methods:
            raise FigureInputError(
                f"{flag} {run}: a {method} run (run.method), not {' or '.join(methods)}; "
                f"give the {'averaged' if flag == '--swa' else 'SGD'} run there"
            )
        configs[flag] = config
    for key in ("dataset", "name"):
        section = "data" if key == "dataset" else "model"
        a, b = configs["--swa"][section].get(key), configs["--sgd"][section].get(key)
        if a != b:
            raise FigureInputError(f"--swa and --sgd: runs of different {section}s ({section}.{key} {a} and {b})")
    for key, theirs, mine in config_differences(configs["--sgd"], configs["--swa"], _not_the_sgd_runs):
        what = "seeds" if key == "run.seed" else "configs"
        raise FigureInputError(
            f"--swa {swa_run} and --sgd {sgd_run}: runs of different {what} ({key} {mine!r} and "
            f"{theirs!r}); the figure compares an averaged run with the SGD run of its own seed "
            f"and protocol"
        )
    return solution_file(swa_run), solution_file(sgd_run)


def _distinct(flag: str, files) -> None:
    """Refuses one weights file given twice to `flag` (by path, link or contents): an average of n
    would count one model twice and be labelled an average of n."""
    seen: dict[str, Path] = {}
    for f in files:
        digest = _file_digest(Path(f))
        if digest in seen:
            same = "the same file" if Path(f).resolve() == Path(seen[digest]).resolve() else "the same weights"
            raise FigureInputError(f"{flag} {f}: {same} as {seen[digest]}, given twice; each model counts once")
        seen[digest] = Path(f)


def _meta(path) -> dict:
    """A weights file's fields beside the weights: its column, epoch, a member's index."""
    return {k: v for k, v in read_checkpoint(path).items() if k != "model"}


def _own_error(path: Path) -> tuple[float, str] | None:
    """The test error its run recorded for a weights file's model on the whole test set, and how it
    was measured when not as here: a table cell's result, or an FGE member's own accuracy (None
    where the run recorded none)."""
    try:
        summary = RunRecords.of_weights_file(path).read_summary()
    except (OSError, ValueError):
        return None
    state = _meta(path)
    column = state.get("column")
    if column == "fge_member":  # evaluated when collected, with the BN statistics it trained with
        members = summary.get("fge_members") or []
        index = state.get("index")
        acc = members[index - 1].get("acc") if isinstance(index, int) and 0 < index <= len(members) else None
        return None if acc is None else (100.0 - acc, ", its training BN statistics")
    acc = (summary.get("results") or {}).get(column)
    return None if acc is None else (100.0 - acc, "")


def _subset_note(ev: PointEvaluator, compared: list[tuple[str, float, tuple[float, str] | None]]) -> str:
    """What the figure's test error is measured on, and at its marked models beside the number each
    model's run recorded on the whole test set: a reader compares the two."""
    if ev.test_size < ev.test_total:
        where = f"test error on {ev.test_size:,} of the {ev.test_total:,} test images (the same number of each class)"
    else:
        where = f"test error on all {ev.test_total:,} test images"
    pairs = []
    for label, here, own in compared:
        pair = f"{label} {here:.2f} %"
        if own is not None:
            error, how = own
            pair += f" (its run, all {ev.test_total:,}: {error:.2f} %{how})"
        pairs.append(pair)
    return f"{where}; BN recomputed at every point. Here: " + ", ".join(pairs)


def _evaluator(run_dir, options) -> PointEvaluator:
    return PointEvaluator(
        run_dir,
        options.get("data_path"),
        options.get("device"),
        options.get("train_images"),
        progress=options.get("progress", True),
        test_images=options.get("test_images"),
    )


def rays(
    swa_run, sgd_run, out, rays: int = 10, max_distance: float = 50.0, points: int = 21, seed: int = 0, **options
) -> list[Path]:
    """Test error and L2-regularised train loss along `rays` random unit directions from each solution."""
    out = Path(out)
    files = _solutions(swa_run, sgd_run)
    states = [load_state(f) for f in files]  # each the run's own, before the data are loaded
    ev = _evaluator(swa_run, options)
    solutions = {"swa": ev.vector(states[0], files[0]), "sgd": ev.vector(states[1], files[1])}
    directions = random_directions(solutions["swa"].numel(), rays, seed)
    distances = np.linspace(0.0, max_distance, points)
    cache = _cache(out, "rays", files, seed, options.get("train_images"), options.get("test_images"))
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
    width = ray_widths(data)
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    palette = colors()
    for ax, (metric, title) in zip(axes, METRICS):
        for name, part in data.groupby("solution"):
            for r, ray in part.groupby("ray"):
                ax.plot(
                    ray["distance"],
                    finite(ray[metric]),
                    color=palette[name],
                    alpha=0.5,
                    linewidth=1,
                    label=name.upper() if r == 0 else None,
                )
            # The rises the widths are measured at (rays_width.csv), from this solution's own value.
            for _, w in width[(width.metric == metric) & (width.solution == name)].iterrows():
                ax.axhline(w.value_at_0 + w.rise, color=palette[name], linestyle=":", linewidth=0.8, alpha=0.8)
        if metric == "train_loss_l2":
            ax.set_yscale("log")  # a rise of 0.05 from ~0.3 and the climb to ~3 on one axis
        ax.set_xlabel("distance from the solution (L2 norm of the weights' change)")
        ax.set_ylabel(title)
        ax.legend(fontsize=8)
    fig.suptitle(
        f"Width of the optima: {rays} random unit directions from each solution; dotted: the rises the widths are "
        "measured at (rays_width.csv)",
        fontsize=10,
    )
    start = data[data.distance == 0].groupby("solution")["test_error"].first()
    compared = [(n.upper(), float(start[n]), _own_error(f)) for n, f in zip(("swa", "sgd"), files)]
    fig.text(0.01, -0.02, _subset_note(ev, compared), fontsize=7, color="#555555", va="top")
    paths = save_figure(fig, out, "rays", data)
    atomic_write_text(out / "rays_width.csv", width.to_csv(index=False))
    return paths + [out / "rays_width.csv"]


# The rises a width is measured at: test error in points, the L2-regularised train loss (the paper's
# Figure 3 quantity, the loss SGD minimises) in nats.
WIDTH_RISES = {"test_error": (1.0, 2.0, 5.0), "train_loss_l2": (0.05, 0.1, 0.5)}


def ray_widths(data: pd.DataFrame, rises: dict[str, tuple[float, ...]] = WIDTH_RISES) -> pd.DataFrame:
    """The width of each solution, measured: along each ray, the distance at which a metric first
    exceeds its value at the solution by `rise` (linearly interpolated between computed points; NaN
    where a ray never rises that much), then mean, min and max over the rays; per metric of `rises`."""
    rows = []
    for (name, r), ray in data.sort_values("distance").groupby(["solution", "ray"]):
        t = ray["distance"].to_numpy()
        for metric, metric_rises in rises.items():
            v = ray[metric].to_numpy()
            for rise in metric_rises:
                above = np.nonzero(v >= v[0] + rise)[0]
                if len(above) == 0:
                    at = float("nan")
                else:
                    i = above[0]  # i > 0: the solution itself is never above its own value
                    at = t[i - 1] + (v[0] + rise - v[i - 1]) / (v[i] - v[i - 1]) * (t[i] - t[i - 1])
                rows.append(
                    {"solution": name, "metric": metric, "ray": r, "rise": rise, "distance": at, "value_at_0": v[0]}
                )
    per_ray = pd.DataFrame(rows)
    return (
        per_ray.groupby(["metric", "solution", "rise"], sort=False)
        .agg(
            value_at_0=("value_at_0", "first"),
            mean_distance=("distance", "mean"),
            min_distance=("distance", "min"),
            max_distance=("distance", "max"),
            rays_reaching=("distance", "count"),
            rays=("ray", "count"),
        )
        .reset_index()
    )


def line(swa_run, sgd_run, out, t_range: tuple[float, float] = (-1.0, 2.0), points: int = 31, **options) -> list[Path]:
    """Both metrics along w(t) = t w_SGD + (1 - t) w_SWA, against signed distance from w_SWA."""
    out = Path(out)
    files = _solutions(swa_run, sgd_run)
    states = [load_state(f) for f in files]  # each the run's own, before the data are loaded
    ev = _evaluator(swa_run, options)
    w_swa, w_sgd = ev.vector(states[0], files[0]), ev.vector(states[1], files[1])
    gap = float((w_sgd - w_swa).norm())
    if gap == 0:
        raise ValueError(f"{files[0]} and {files[1]}: the same weights; the line through them is a point")
    cache = _cache(out, "line", files, options.get("train_images"), options.get("test_images"))
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
    palette = colors()
    left.plot(data["distance"], finite(data["test_error"]), color=palette["swa"], label="test error")
    right.plot(
        data["distance"], finite(data["train_loss_l2"]), color=palette["sgd"], linestyle="--", label="train loss"
    )
    for x, name in ((0.0, "SWA"), (gap, "SGD")):
        left.axvline(x, color="black", alpha=0.3, linewidth=1)
        left.annotate(name, (x, left.get_ylim()[1]), ha="center", va="bottom", fontsize=9)
    left.set_xlabel("signed distance from the SWA solution (L2 norm of the weights' change)")
    left.set_ylabel("test error (%)", color=palette["swa"])
    right.set_ylabel("train loss (L2-regularised)", color=palette["sgd"])
    right.grid(False)
    left.set_title("The line through the SWA and SGD solutions: w(t) = t w_SGD + (1 - t) w_SWA", fontsize=10, pad=18)
    at = data.set_index("t")["test_error"]
    compared = [(n, float(at[t]), _own_error(f)) for n, t, f in zip(("SWA", "SGD"), (0.0, 1.0), files)]
    fig.text(0.01, -0.02, _subset_note(ev, compared), fontsize=7, color="#555555", va="top", wrap=True)
    return save_figure(fig, out, "line", data)


def _describe(path) -> str:
    """A weights file as a reader knows it: the run's method, and which of its models it is."""
    run, state = RunRecords.of_weights_file(path), _meta(path)
    try:
        method = run.stored_config()["config"]["run"]["method"].upper()
    except Exception:  # noqa: BLE001 (a name for a figure; the file itself was checked before)
        method = run.dir.parent.name
    if state.get("column") == "fge_member":
        return f"{method} model {state.get('index')} (epoch {state.get('epoch')})"
    return f"{method} {state.get('column', Path(path).stem)} (epoch {state.get('epoch')})"


def _contour_levels(field: np.ndarray, metric: str, test_images: int) -> np.ndarray:
    """Contour levels a reader can read: for the test error, steps of one standard error of a test
    error measured on `test_images` images (binomial, at the field's median), so that a band is about
    what one measurement can tell apart, with 3 to 20 steps over the field's range; otherwise twelve
    steps. (Two standard errors left a plane on 2,000 images two bands: the picture showed nothing.)"""
    low, high = float(np.min(field)), float(np.max(field))
    steps = 12
    if metric == "test_error":
        p = float(np.median(field)) / 100.0
        noise = 100.0 * (p * (1 - p) / max(1, test_images)) ** 0.5
        steps = int(max(3, min(20, round((high - low) / max(noise, 1e-9)))))
    return np.linspace(low, high if high > low else low + 1e-6, steps + 1)


def plane(
    checkpoints: list[str | Path],
    out,
    grid: int = 21,
    margin: float = 0.2,
    extra: list[str | Path] = (),
    mean_of: list[str | Path] = (),
    **options,
) -> list[Path]:
    """Contours of test error and train loss on the plane through three weight files, the three
    (and any `extra`, projected) marked. `mean_of`: also mark the average of those weights (e.g. every
    model an FGE run collected: the SWA solution of its trajectory, the paper's Figure 1, left). Each
    marked point's own metrics (BN recomputed) and its distance from the plane go in the JSON."""
    out = Path(out)
    if len(mean_of) == 1:
        raise ValueError(f"--mean-of {mean_of[0]}: an average needs at least two weight files")
    for p in list(checkpoints) + list(extra) + list(mean_of):
        if not RunRecords.of_weights_file(p).config_path.is_file():
            raise ValueError(
                f"{p}: not a weights file in a run's checkpoints/ folder (RUN/checkpoints/NAME.pt, "
                f"beside RUN/config.yaml), so the run it belongs to is unknown"
            )
    _distinct("--mean-of", mean_of)
    # Each file the run's own where it lies, before the data are loaded.
    states = {p: load_state(p) for p in dict.fromkeys([*checkpoints, *extra, *mean_of])}
    ev = _evaluator(run_dir_of(checkpoints[0]), options)
    vectors = [ev.vector(states[p], p) for p in checkpoints]
    geometry = Plane.through(*vectors, names=[str(p) for p in checkpoints])
    points = [(f"w{i + 1}", vectors[i], [p]) for i, p in enumerate(checkpoints)]
    points += [(Path(p).stem, ev.vector(states[p], p), [p]) for p in extra]
    if mean_of:
        average = torch.stack([ev.vector(states[p], p) for p in mean_of]).mean(0)
        points.append((f"average of {len(mean_of)}", average, list(mean_of)))
    marked = [(name, *geometry.coordinates(w)) for name, w, _ in points]
    xs = grid_axis([x for _, x, _ in marked[:3]], margin, grid)
    ys = grid_axis([y for _, _, y in marked[:3]], margin, grid)
    cache = _cache(out, "plane", checkpoints, grid, margin, options.get("train_images"), options.get("test_images"))
    # Each marked point's metrics, keyed by the contents of the files it is made of.
    measured = [cache.get_or_compute("mark:" + _digest_of(files), lambda: ev.metrics(w)) for _, w, files in points]
    off_plane = [float((w - geometry.point(x, y)).norm()) for (_, w, _), (_, x, y) in zip(points, marked)]
    values = {metric: np.zeros((grid, grid)) for metric, _ in METRICS}
    with _bar(grid * grid, "plane", options.get("progress", True)) as bar:
        for j, y in enumerate(ys):
            for i, x in enumerate(xs):
                m = cache.get_or_compute(f"x{x:.6g}:y{y:.6g}", lambda: ev.metrics(geometry.point(x, y)))
                for metric, _ in METRICS:
                    values[metric][j, i] = m[metric]
                bar.update(1)
    plt = pyplot()
    # Drawn to scale (one unit of x is one of y), the two panels side by side.
    height = 4.5 * max(0.5, min(1.5, (ys[-1] - ys[0]) / (xs[-1] - xs[0])))
    fig, axes = plt.subplots(1, 2, figsize=(11, height + 1.2))
    steps = {}
    for ax, (metric, title) in zip(axes, METRICS):
        field = finite(values[metric])
        levels = _contour_levels(field, metric, ev.test_size)
        steps[metric] = float(levels[1] - levels[0])
        filled = ax.contourf(xs, ys, field, levels=levels, cmap="viridis")
        ax.contour(xs, ys, field, levels=levels, colors="white", linewidths=0.3, alpha=0.5)
        fig.colorbar(filled, ax=ax, format="%.3g")
        ax.set_aspect("equal")
        for name, x, y in marked:
            ax.plot(x, y, marker="o", color="white", markeredgecolor="black")
            right = x > (xs[0] + xs[-1]) / 2  # labels grow towards the middle, never off the axes
            ax.annotate(
                name.split(" (")[0],
                (x, y),
                textcoords="offset points",
                xytext=(-4 if right else 4, 4),
                ha="right" if right else "left",
                fontsize=7,
                color="white",
            )
        ax.set_title(title)
        ax.set_xlabel("x: along w2 - w1 (L2 norm)")
        ax.set_ylabel("y: orthogonal to x (L2 norm)")
    # What the points are, under the panels (on them they would cover the contours): the three
    # models the plane passes through, and how far off it a marked average lies (its marker sits at
    # its projection; the colour under it is the plane's value there, not its own).
    notes = [", ".join(f"w{i + 1} = {_describe(p)}" for i, p in enumerate(checkpoints))]
    for (name, _, _), d, m in list(zip(marked, off_plane, measured))[3:]:
        notes.append(
            f"{name}: {d:.2f} off the plane, marked at its projection (the colour there is the plane's, "
            f"not its own); its own test error {m['test_error']:.2f} %, train loss {m['train_loss_l2']:.3f}"
        )
    compared = [(f"w{i + 1}", m["test_error"], _own_error(p)) for i, (p, m) in enumerate(zip(checkpoints, measured))]
    notes.append(_subset_note(ev, compared))
    notes.append(
        f"test-error contours every {steps['test_error']:.2f} points: about one standard error of an error "
        f"measured on {ev.test_size:,} images"
    )
    # Wrapped to the figure's width: one long line would widen the saved figure and shrink the panels.
    text = "\n".join(textwrap.fill(note, 190, subsequent_indent="  ") for note in notes)
    fig.text(0.01, -0.01, text, fontsize=7, color="#555555", va="top")
    data = {
        "x": xs,
        "y": ys,
        "points": [
            {"name": n, "x": x, "y": y, "distance_from_plane": d, **{k: m[k] for k in m if k != "key"}}
            for (n, x, y), d, m in zip(marked, off_plane, measured)
        ],
        **{metric: values[metric].tolist() for metric, _ in METRICS},
    }
    return save_figure(fig, out, "plane", data)
