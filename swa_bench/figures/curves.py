"""Test accuracy (and the learning rate) against epoch for SGD and SWA runs: seeds as a mean with a
band (min to max), the averaged model's evaluations marked (docs/PROTOCOL.md §6, "Convergence")."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from swa_bench.figures.output import COLORS, SHADES, pyplot, save_figure
from swa_bench.records import RunRecords


def _series(run_dirs: list[Path]) -> pd.DataFrame:
    rows = []
    for run_dir in run_dirs:
        records = RunRecords(run_dir)
        if not records.config_path.exists():
            raise FileNotFoundError(f"{run_dir}: not a run directory (no config.yaml)")
        config = yaml.safe_load(records.config_path.read_text())["config"]
        method = config["run"]["method"]
        label = f"{config['data']['dataset']} {config['model']['name']}"
        variant = config.get("swa", {}).get("variant")
        if method == "swa" and variant:  # SWA variants of one row are curves of their own
            label += f" [{variant}]"
        for row in records.read_metrics():
            base = {
                "run": str(run_dir),
                "label": label,
                "method": method,
                "seed": config["run"]["seed"],
                "epoch": row["epoch"],
                "lr": row.get("lr"),
                "lr_end": row.get("lr_end"),
            }
            if method == "ema":  # its iterate and rates are the SGD run's: only its average is its own
                if "ema_test_acc" in row:
                    rows.append({**base, "series": "ema", "test_acc": row["ema_test_acc"]})
                continue
            if method == "fge":  # the ensemble so far, and each collected model alone (its iterate at collection)
                rows.append({**base, "series": "lr", "test_acc": float("nan")})
                for series, key in (("fge", "fge_test_acc"), ("fge_member", "fge_member_acc")):
                    if key in row:
                        rows.append({**base, "series": series, "test_acc": row[key]})
                continue
            rows.append({**base, "series": "lr", "test_acc": float("nan")})  # the rate of every epoch
            if "test_acc" in row:
                series = "sgd" if method == "sgd" else "swa_sgd"  # an SWA run's current (SGD) weights
                rows.append({**base, "series": series, "test_acc": row["test_acc"]})
            if "swa_test_acc" in row:
                rows.append({**base, "series": "swa", "test_acc": row["swa_test_acc"]})
    return pd.DataFrame(rows)


SERIES = ("sgd", "swa_sgd", "swa", "ema", "fge", "fge_member")


def plot_curves(
    run_dirs: list[str | Path],
    out: str | Path,
    name: str = "curves",
    zoom_from: int | None = None,
    series: tuple[str, ...] = SERIES,
) -> list[Path]:
    """The figure, and with `zoom_from` a panel of the epochs from it on beside, where the averaged
    models separate from the iterates by a point or two that the full scale flattens. `series`: the
    curves to draw (e.g. only SGD and the averages, when many SWA settings share one figure)."""
    data = _series([Path(p) for p in run_dirs])
    if data.empty:
        raise ValueError("the runs have no evaluated epochs yet")
    lr = data[data.series == "lr"].groupby(["label", "method", "epoch"])[["lr", "lr_end"]].first().reset_index()
    data = data[data.series.isin(series)]
    if data.empty:
        raise ValueError("the runs have no evaluated epochs yet")
    stats = (
        data.groupby(["label", "series", "epoch"])
        .agg(mean=("test_acc", "mean"), low=("test_acc", "min"), high=("test_acc", "max"), seeds=("run", "nunique"))
        .reset_index()
    )
    # A mean over seeds only where every seed was evaluated (one seed may be evaluated more often).
    runs = data.groupby(["label", "series"])["run"].nunique().rename("runs").reset_index()
    stats = stats.merge(runs, on=["label", "series"])
    stats = stats[stats["seeds"] == stats["runs"]].drop(columns="runs")
    plt = pyplot()
    if zoom_from is None:
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 5.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
        zoom = None
    else:
        if not (stats["epoch"] >= zoom_from).any():
            raise ValueError(f"--zoom-from {zoom_from}: no evaluation at or after that epoch")
        fig = plt.figure(figsize=(12, 5.5))
        grid = fig.add_gridspec(2, 2, height_ratios=[3, 1], width_ratios=[7, 5])
        top = fig.add_subplot(grid[0, 0])
        bottom = fig.add_subplot(grid[1, 0], sharex=top)
        zoom = fig.add_subplot(grid[:, 1])
    names = {
        "sgd": "SGD",
        "swa_sgd": "SWA run, SGD iterate",
        "swa": "SWA (averaged, BN recomputed)",
        "ema": "EMA of the SGD run (BN recomputed; beyond the paper)",
        "fge": "FGE ensemble",
        "fge_member": "FGE, each collected model",
    }
    # Several SWA labels (variants, rows): each label's series get a shade of their own.
    swa_labels = sorted(set(stats[stats.series != "sgd"]["label"]))

    def color(label: str, series: str) -> str:
        if series == "sgd" or len(swa_labels) < 2:
            return COLORS[series]
        return SHADES[series][swa_labels.index(label) % len(SHADES[series])]

    # One dataset and model in the figure: name it once in the title, and each curve by its variant.
    rows = {label.split(" [")[0] for label in stats["label"]}
    shown = (lambda label: label[len(next(iter(rows))) :].strip()) if len(rows) == 1 else (lambda label: label)
    if len(rows) == 1:
        fig.suptitle(next(iter(rows)), fontsize=10)
    for (label, series), part in stats.groupby(["label", "series"]):
        seeds = int(part["seeds"].max())
        text = ", ".join(p for p in (shown(label), f"{seeds} seed{'s' if seeds != 1 else ''}") if p)
        text = f"{names[series]} ({text})"
        style = dict(
            color=color(label, series),
            marker="o" if series in ("swa", "ema", "fge", "fge_member") else None,
            markersize=3,
            linestyle="--" if series in ("swa_sgd", "fge_member") else "-",
        )
        panels = [(top, part, text)] + ([(zoom, part[part["epoch"] >= zoom_from], None)] if zoom is not None else [])
        for ax, shown_part, legend in panels:
            ax.plot(shown_part["epoch"], shown_part["mean"], label=legend, **style)
            ax.fill_between(
                shown_part["epoch"],
                shown_part["low"],
                shown_part["high"],
                color=style["color"],
                alpha=0.15,
                linewidth=0,
            )
    top.set_ylabel("test accuracy (%)")
    top.legend(fontsize=8 if zoom is None else 7, loc="lower right")
    if zoom is not None:
        zoom.set_title(f"from epoch {zoom_from}", fontsize=9)
        zoom.set_xlabel("epoch")
        zoom.set_ylabel("test accuracy (%)")
    for (label, method), part in lr.groupby(["label", "method"]):
        legend = method.upper() + (label[label.index(" [") :] if " [" in label else "")
        within = part["lr_end"].notna().any()  # a sawtooth: thin, so the flat rates beside it stay visible
        bottom.plot(
            *_rate_path(part),
            color=color(label, method if method in ("sgd", "fge") else "swa"),
            label=legend,
            linewidth=0.7 if within else None,
            alpha=0.8 if within else None,
        )
    bottom.set_ylabel("learning rate")
    bottom.set_xlabel("epoch")
    bottom.legend(fontsize=7 if len(lr.groupby(["label", "method"])) > 3 else 8, ncol=2 if len(swa_labels) > 3 else 1)
    return save_figure(fig, Path(out), name, stats)


def _rate_path(rates: pd.DataFrame) -> tuple[list, list]:
    """The rate against epoch: a point per epoch, or where the rate changes within an epoch (cyclical
    schedules: the metrics row holds its first and last step's rate) a line from the epoch's start to
    its end, so that a cycle is drawn as the sawtooth it is."""
    xs, ys = [], []
    for epoch, first, last in zip(rates["epoch"], rates["lr"], rates["lr_end"]):
        if pd.isna(last):
            xs.append(epoch), ys.append(first)
        else:
            xs += [epoch - 1, epoch]
            ys += [first, last]
    return xs, ys
