"""Test accuracy (and the learning rate) against epoch for SGD and SWA runs: seeds as a mean with a
band (min to max), the averaged model's evaluations marked (docs/PROTOCOL.md §6, "Convergence")."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from swa_bench.figures.output import colors, pyplot, save_figure, shades
from swa_bench.methods.sgd import BASELINE
from swa_bench.records import RunRecords


def _series(run_dirs: list[Path]) -> pd.DataFrame:
    """One row per run, epoch and curve series (swa_bench/methods: each method's series), and a row
    of each epoch's learning rate for the methods whose rate is their own."""
    from swa_bench.methods import find_method

    rows = []
    for run_dir in run_dirs:
        records = RunRecords(run_dir)
        if not records.config_path.exists():
            raise FileNotFoundError(f"{run_dir}: not a run directory (no config.yaml)")
        config = yaml.safe_load(records.config_path.read_text())["config"]
        method = config["run"]["method"]
        known = find_method(method)
        if known is None:
            raise ValueError(f"{run_dir}: a run of {method!r}, which is not a registered method")
        label = _row_name(config["data"]["dataset"], config["model"]["name"])
        variant = config.get("swa", {}).get("variant")
        if known.variants and variant:  # the variants of one row are curves of their own
            label += f" [{variant}]"
        swa = config.get("swa") or {}
        # An averaging run's rates and its line, for figures that compare schedules: cyclical dashed,
        # constant solid, a constant rate collected within epochs dotted.
        rates, top_rate, rates_style = None, None, None
        if method == "swa" and swa.get("lr_schedule") == "cyclical":
            rates, top_rate, rates_style = f"cyclical {swa['alpha1']:g} → {swa['alpha2']:g}", swa["alpha1"], "--"
        elif method == "swa" and swa.get("lr") is not None:
            rates, top_rate = f"constant {swa['lr']:g}", swa["lr"]
            rates_style = ":" if swa.get("cycle_steps") else "-"
        if rates and swa.get("cycle_steps"):  # how often it collects, when not once an epoch (or cycle of epochs)
            rates += f", every {swa['cycle_steps']} steps"
        # The epoch after which the run's method first collects a model (None: it never does).
        collect_from = (records.stored_protocol() or {}).get("swa_start")
        for row in records.read_metrics():
            base = {
                "collect_from": collect_from,
                "run": str(run_dir),
                "label": label,
                "method": method,
                "seed": config["run"]["seed"],
                "epoch": row["epoch"],
                "lr": row.get("lr"),
                "lr_end": row.get("lr_end"),
                "rates": rates,
                "top_rate": top_rate,
                "rates_style": rates_style,
            }
            if known.rate_series is not None:  # the rate of every epoch (EMA's is the SGD run's)
                rows.append({**base, "series": "lr", "test_acc": float("nan")})
            for series in known.series:
                if series.field in row:
                    rows.append({**base, "series": series.key, "test_acc": row[series.field]})
    return pd.DataFrame(rows)


def _row_name(dataset: str, model: str) -> str:
    """A row as tables title it: CIFAR-10 PreResNet-20."""
    from swa_bench.config import DATASETS
    from swa_bench.tables import model_label

    return f"{DATASETS[dataset].title if dataset in DATASETS else dataset} {model_label(model)}"


def all_series() -> tuple[str, ...]:
    from swa_bench.methods import methods

    return tuple(s.key for m in methods() for s in m.series)


def plot_curves(
    run_dirs: list[str | Path],
    out: str | Path,
    name: str = "curves",
    zoom_from: int | None = None,
    series: tuple[str, ...] | None = None,
    by_rates: bool = False,
) -> list[Path]:
    """The figure, and with `zoom_from` a panel of the epochs from it on beside, where the averaged
    models separate from the iterates by a point or two that the full scale flattens. `series`: the
    curves to draw (e.g. only SGD and the averages, when many SWA settings share one figure).
    `by_rates` (schedules compared): each SWA run named by its rates ("cyclical 0.1 → 0.001"), one
    colour per top rate, cyclical dashed, the legend under the panels and no rate panel (the legend
    states every rate; eight schedules' rates drawn over each other could not be read)."""
    from swa_bench.methods import find_method, methods

    series = all_series() if series is None else series
    data = _series([Path(p) for p in run_dirs])
    if data.empty:
        raise ValueError("the runs have no evaluated epochs yet")
    if by_rates:
        named = data["rates"].notna()
        row_names = data.loc[named, "label"].str.split(" [", regex=False).str[0]
        data.loc[named, "label"] = row_names + " [" + data.loc[named, "rates"] + "]"
    lr = data[data.series == "lr"].groupby(["label", "method", "epoch"])[["lr", "lr_end"]].first().reset_index()
    data = data[data.series.isin(series)]
    starts = sorted({int(e) for e in data["collect_from"].dropna()})
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
    if zoom_from is not None and not (stats["epoch"] >= zoom_from).any():
        raise ValueError(f"--zoom-from {zoom_from}: no evaluation at or after that epoch")
    fig = plt.figure(figsize=(7 if zoom_from is None else 12, 5.5))
    panels = 1 if zoom_from is None else 2
    ratios = dict(width_ratios=[7, 5]) if panels == 2 else {}
    if by_rates:
        grid = fig.add_gridspec(1, panels, **ratios)
        top, bottom = fig.add_subplot(grid[0, 0]), None
    else:
        grid = fig.add_gridspec(2, panels, height_ratios=[3, 1], **ratios)
        top = fig.add_subplot(grid[0, 0])
        bottom = fig.add_subplot(grid[1, 0], sharex=top)
    zoom = fig.add_subplot(grid[:, 1]) if panels == 2 else None
    kinds = {s.key: s for m in methods() for s in m.series}
    palette, tones = colors(), shades()
    # Several labels of the other methods (variants, rows): each label's series get a shade of their own.
    swa_labels = sorted(set(stats[stats.series != BASELINE]["label"]))

    top_rate = data.dropna(subset=["top_rate"]).groupby("label")["top_rate"].first().to_dict()
    rates_style = data.dropna(subset=["rates_style"]).groupby("label")["rates_style"].first().to_dict()
    top_rates = sorted(set(top_rate.values()), reverse=True)

    def color(label: str, series: str) -> str:
        if by_rates and series != BASELINE:
            return RATE_COLORS[top_rates.index(top_rate[label]) % len(RATE_COLORS)]
        if series == BASELINE or len(swa_labels) < 2:
            return palette[series]
        return tones[series][swa_labels.index(label) % len(tones[series])]

    # One dataset and model in the figure: name it once in the title, and each curve by its variant.
    rows = {label.split(" [")[0] for label in stats["label"]}

    def shown(label: str) -> str:  # the row once in the title; a variant as the setting it names
        text = label[len(next(iter(rows))) :].strip() if len(rows) == 1 else label
        setting = "" if by_rates else "setting "
        return text.replace(" [", f", {setting}").replace("[", setting).replace("]", "")

    if len(rows) == 1:
        fig.suptitle(next(iter(rows)), fontsize=10)
    for (label, series), part in stats.groupby(["label", "series"]):
        seeds = int(part["seeds"].max())
        text = ", ".join(p for p in (shown(label), f"{seeds} seed{'s' if seeds != 1 else ''}") if p)
        text = f"{kinds[series].name} ({text})"
        # Every evaluation marked: a line between two evaluations epochs apart is not a measurement.
        style = dict(
            color=color(label, series),
            marker="o",
            markersize=3 if kinds[series].marked else 2,
            linestyle=rates_style[label] if by_rates and series != BASELINE else "--" if kinds[series].dashed else "-",
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
    for axis in [top] + ([zoom] if zoom is not None else []):
        for epoch in starts:  # where averaging (or FGE's collecting) begins
            axis.axvline(epoch, color="#888888", linestyle=":", linewidth=1)
    if starts:  # one label for them all: starts a few epochs apart would print over each other
        text = f"collecting from epoch {', '.join(map(str, starts))}"
        top.annotate(text, (starts[0], 1.0), xycoords=("data", "axes fraction"), fontsize=7, color="#555555",
                     ha="right", va="top", rotation=90)  # fmt: skip
    top.set_ylabel("test accuracy (%)")
    if by_rates:  # under the panels: over them it would hide the curves it names
        top.set_xlabel("epoch")
        top.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.0, -0.12), ncol=2, handlelength=4)
    else:
        top.legend(fontsize=8 if zoom is None else 7, loc="lower right")
    if zoom is not None:
        zoom.set_title(f"from epoch {zoom_from}", fontsize=9)
        zoom.set_xlabel("epoch")
        zoom.set_ylabel("test accuracy (%)")
    if bottom is None:
        return save_figure(fig, Path(out), name, stats)
    # Each run's rate in its curves' colour (no legend of its own over the lines); a cycle within epochs
    # thin, so the flat rates beside it stay visible; on a log scale where the rates span decades.
    for (label, method), part in lr.groupby(["label", "method"]):
        within = part["lr_end"].notna().any()
        bottom.plot(
            *_rate_path(part),
            color=color(label, find_method(method).rate_series),
            linewidth=0.6 if within else 1.2,
            alpha=0.6 if within else 1.0,
        )
    positive = pd.concat([lr["lr"], lr["lr_end"]]).dropna()
    positive = positive[positive > 0]
    if len(positive) and positive.max() / positive.min() >= 10:
        bottom.set_yscale("log")
    bottom.set_ylabel("learning rate\n(the curves' colours)", fontsize=8)
    bottom.set_xlabel("epoch")
    return save_figure(fig, Path(out), name, stats)


# One colour per top rate in a figure of schedules: constant and cyclical at one rate share it.
RATE_COLORS = ("#d95f02", "#7570b3", "#1b9e77", "#e7298a", "#66a61e", "#a6761d")


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
