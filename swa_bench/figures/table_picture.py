"""The table as a picture: per table row and averaged column, the measured gain over SGD (paired by
seed: mean ± std, error bar) beside the paper's gain (its column minus its SGD, a hollow diamond),
so one glance shows where a reproduction agrees with the paper and where it does not.

Example:
    from swa_bench.figures.table_picture import plot_table
    plot_table("results/cifar10-jpg-mini", "figures")  # figures/table_vs_sgd.png, .pdf, .csv
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from swa_bench.columns import Column
from swa_bench.errors import UserError
from swa_bench.figures.output import colors, pyplot, save_figure
from swa_bench.methods.sgd import BASELINE
from swa_bench.tables import _ROW_KEYS, PAPER_SETTING, build_table, dataset_title, model_label, varies_with_variant

XLABEL = "test accuracy difference to SGD (points), mean ± std over seeds (n)"


class NothingToPlotError(UserError, ValueError):
    """No finished runs (or none of an averaged column) under the folder: one line, exit 2."""


def table_differences(runs_dir: str | Path, paper_dir: str | Path | None = None) -> pd.DataFrame:
    """One line per (table row, averaged column), in the table's order: the paired difference to SGD
    and the paper's (NaN where the paper lacks the column or its SGD)."""
    table = build_table(runs_dir, paper_dir)
    if table.empty:
        raise NothingToPlotError(f"{runs_dir}: no finished runs yet")
    # The paper's SGD of each row: the number the table puts beside that row's SGD cell.
    sgd = table[table.column == BASELINE][_ROW_KEYS + ["paper_mean", "paper_source"]].rename(
        columns={"paper_mean": "paper_sgd", "paper_source": "sgd_source"}
    )
    lines = table[table.column != BASELINE].merge(sgd, on=_ROW_KEYS, how="left")
    if lines.empty:
        raise NothingToPlotError(f"{runs_dir}: no finished runs of an averaged column (FGE, SWA, EMA) yet, only SGD")
    lines["paper_diff"] = lines["paper_mean"] - lines["paper_sgd"]
    # A difference with a number from elsewhere than the paper's tables (a README) names that source.
    source = lines["paper_source"].fillna("")
    source = source.where(source != "", lines["sgd_source"].fillna(""))
    lines["paper_source"] = source.where(lines.paper_diff.notna(), "")
    # The columns no SWA variant changes (FGE, EMA): the table repeats them in each variant's row, the
    # picture draws them once, under the row's name without a variant.
    shared = ~lines.column.map(varies_with_variant)
    lines.loc[shared, "variant"] = ""
    lines = lines.drop_duplicates(subset=_ROW_KEYS + ["column"])
    lines["row"] = [_row_title(*keys) for keys in zip(lines.dataset, lines.model, lines.budget, lines.variant)]
    lines["column_title"] = [Column(c).title(d) for c, d in zip(lines.column, lines.dataset)]
    lines["order"] = lines.column.map(lambda c: Column(c).order())
    lines = lines.sort_values(_ROW_KEYS + ["order"])  # the table's order
    return lines[
        _ROW_KEYS
        + [
            "row",
            "column",
            "column_title",
            "vs_sgd_mean",
            "vs_sgd_std",
            "vs_sgd_n",
            "vs_sgd_se",
            "paper_diff",
            "paper_source",
        ]
    ].reset_index(drop=True)


def _row_title(dataset: str, model: str, budget, variant: str) -> str:
    """A row as a reader names it: the model, its budget in epochs, its SWA setting's name."""
    title = model_label(model) + ("" if dataset == "imagenet" else f", B = {budget} epochs")
    return title + (f", SWA setting {variant}" if variant else "")


def _heading(row: str, setting: str) -> str:
    return row if setting == PAPER_SETTING else f"{row} — {setting}"


def _panel(ax, lines: pd.DataFrame) -> None:
    """One dataset: each table row a bold heading over one line per averaged column, top to bottom."""
    ticks, labels, y = [], [], 0
    # A setting every row shares is said once, in the panel's title, not in each heading.
    shared = lines.setting.iloc[0] if lines.setting.nunique() == 1 else None
    for keys, row in lines.groupby(_ROW_KEYS, sort=False):
        # The row's name on a line of its own across the panel: as a tick label it would be as wide
        # as its setting is long and squeeze the panel.
        ax.text(
            0.005,
            y,
            _heading(row.row.iloc[0], PAPER_SETTING if shared is not None else keys[3]),
            transform=ax.get_yaxis_transform(),
            fontweight="bold",
            va="center",
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 1},
        )
        for line in row.itertuples():
            y += 1
            ticks.append(y)
            labels.append(line.column_title)
            ax.errorbar(
                line.vs_sgd_mean,
                y,
                xerr=0 if pd.isna(line.vs_sgd_std) else line.vs_sgd_std,
                fmt="o",
                color=colors().get(Column(line.column).method, "#333333"),
                markersize=5,
                capsize=3,
            )
            # A third of a line lower: beside the measured point, never hidden by it.
            ax.plot(
                line.paper_diff,
                y + 0.3,
                "s" if line.paper_source else "D",
                markerfacecolor="none",
                markeredgecolor="black",
                markersize=6,
            )
            ax.annotate(
                "no SGD run" if pd.isna(line.vs_sgd_n) else f"n={int(line.vs_sgd_n)}",
                (1.01, y),
                xycoords=("axes fraction", "data"),
                va="center",
                fontsize=8,
                color="#555555",
            )
        y += 1.5  # a gap before the next row's heading
    ax.set_yticks(ticks, labels)
    ax.tick_params(axis="y", length=0)
    ax.set_ylim(y - 1, -0.8)
    ax.axvline(0, color="black", linestyle="--", linewidth=1)
    ax.grid(axis="y", visible=False)
    title = dataset_title(lines.dataset.iloc[0])
    ax.set_title(title if shared in (None, PAPER_SETTING) else f"{title}: {shared}", loc="left")


def _legend(fig, plt, lines: pd.DataFrame) -> None:
    """The markers, and beneath the figure what a missing or differently shaped paper marker means."""

    def hollow(shape: str, label: str):
        return plt.Line2D([], [], color="black", marker=shape, markerfacecolor="none", linestyle="none", label=label)

    handles = [plt.Line2D([], [], color="#555555", marker="o", label="this reproduction: mean ± std")]
    drawn = lines.paper_diff.notna()
    if (drawn & (lines.paper_source == "")).any():  # a shape in the legend only where one is drawn
        handles.append(hollow("D", "the paper: its column minus its SGD"))
    sources = sorted(set(lines.paper_source[drawn]) - {""})
    if sources:
        handles.append(hollow("s", "the same, with a number from another source †"))
    fig.legend(handles=handles, loc="upper center", ncol=len(handles), bbox_to_anchor=(0.5, 1.0), fontsize=9)
    notes = [f"† {source}" for source in sources]
    if lines.paper_diff.isna().all():
        notes.append("The paper has no numbers for these rows (settings of this reproduction's own).")
    elif lines.paper_diff.isna().any():
        notes.append("No ◇ where the paper has no number for the column or for its SGD (e.g. EMA, beyond the paper).")
    fig.text(0.01, 0.0, "\n".join(notes), fontsize=8, color="#555555", va="top")


def plot_table(
    runs_dir: str | Path, out: str | Path, paper_dir: str | Path | None = None, name: str = "table_vs_sgd"
) -> list[Path]:
    """OUT/NAME.png, .pdf and .csv (the plotted numbers, `table_differences`): one panel per dataset,
    sharing the x axis so that gains compare across datasets."""
    lines = table_differences(runs_dir, paper_dir)
    plt = pyplot()
    parts = [part for _, part in lines.groupby("dataset", sort=False)]
    # Each panel as high as its lines and headings, so that every line gets the same room.
    sizes = [len(part) + part.groupby(_ROW_KEYS).ngroups for part in parts]
    fig, axes = plt.subplots(
        len(parts),
        1,
        figsize=(8, 1.2 + 0.26 * sum(sizes) + 0.5 * len(parts)),
        sharex=True,
        squeeze=False,
        gridspec_kw={"height_ratios": sizes},
    )
    for ax, part in zip(axes[:, 0], parts):
        _panel(ax, part)
    axes[-1, 0].set_xlabel(XLABEL)
    _legend(fig, plt, lines)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.45 / fig.get_figheight()))  # room for the legend above
    return save_figure(fig, Path(out), name, lines)
