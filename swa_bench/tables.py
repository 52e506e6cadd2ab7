"""The paper's tables from finished runs: mean ± std over seeds beside the paper's numbers.

A row is (dataset, model, setting). The setting names everything that makes a run differ from the
paper's protocol (data other than the original files, a budget scale, a training subset, changed
hyperparameters), so such runs sit in rows of their own and never merge into a paper row.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from swa_bench.columns import Column
from swa_bench.config import DATASETS, RUNTIME_KEYS
from swa_bench.identity import CADENCE_KEYS, FOLDER_KEYS
from swa_bench.shipped import PAPER_DIR

PAPER_SETTING = "paper protocol"
CSV_COLUMNS = [
    "dataset",
    "model",
    "variant",
    "column",
    "mean",
    "std",
    "n",
    "diverged",
    "paper_mean",
    "paper_std",
    "setting",
    "note",
    "documented",
    "nll_mean",
    "nll_std",
    "vs_sgd_mean",
    "vs_sgd_std",
    "vs_sgd_n",
    "vs_sgd_se",
    "train_acc_mean",
    "train_acc_std",
    "paper_source",
]
# Marks a row whose SWA runs carry a note (e.g. SWA settings adapted from the paper's); the note is a footnote.
NOTE_MARKS = ["†", "‡", "§", "¶"]


def model_label(name: str) -> str:
    """A model's name in tables (runs of a model no longer registered keep their name)."""
    from swa_bench.models import get_model_entry

    try:
        return get_model_entry(name).title
    except KeyError:
        return name


# --------------------------------------------------------------------------------------------------
# Reading


def find_summaries(runs_dir: str | Path) -> list[dict]:
    """Summaries of the ended runs under `runs_dir` (finished or diverged); a run still going has
    none yet, and summaries are written atomically, so a table never reads half a run. Each run counts
    once however many copies of its records lie there (a results folder holding a seed's runs twice,
    a copied tree): copies of one run with the same results are one run, said in one line; copies whose
    results differ are not counted at all."""
    from swa_bench.records import RunRecords

    by_run: dict[tuple, list[tuple[RunRecords, dict]]] = {}
    for records in RunRecords.find(runs_dir, "summary.json"):
        try:
            summary = records.checked_summary()
        except ValueError as e:
            warnings.warn(f"{records.summary_path}: skipped, {e}")
            continue
        if summary.get("status") not in ("finished", "diverged"):
            continue
        missing = records.missing_weights(summary["results"])
        if missing:
            warnings.warn(
                f"{records.dir}: finished, but the weights behind {', '.join(missing)} are missing from "
                f"checkpoints/ (its cells stay; figures cannot use them)"
            )
        by_run.setdefault(_run_key(records), []).append((records, summary))
    summaries, copies = [], []
    for found in by_run.values():
        (first, summary), others = found[0], found[1:]
        differing = [r for r, s in others if _results_of(s) != _results_of(summary)]
        if differing:
            warnings.warn(
                f"{first.dir} and {differing[0].dir}: records of one run (same config, method and seed) "
                f"with different results; not counted"
            )
            continue
        summaries.append(summary)
        copies += [(r.dir, first.dir) for r, _ in others]
    if copies:
        copy, of = copies[0]
        warnings.warn(
            f"{len(copies)} record(s) are copies of runs already found (e.g. {copy} of {of}); each run counted once"
        )
    return summaries


def _run_key(records) -> tuple:
    """What makes two records the same run: its identity (method, seed, the digest of every key its
    numbers depend on) and the kind of data files it read, from config.yaml (which a checked summary has)."""
    from swa_bench.identity import run_identity

    stored = records.stored_config()
    identity = run_identity(stored["config"])
    return identity["method"], identity["seed"], identity["config"], str(stored.get("data_format"))


def _results_of(summary: dict) -> tuple:
    return (
        json.dumps(summary.get("results"), sort_keys=True),
        json.dumps(summary.get("results_nll"), sort_keys=True),
        summary.get("status"),
    )


def find_failures(runs_dir: str | Path) -> list[dict]:
    """The failure records a grid left in run directories (failure.json), for the table to mention."""
    from swa_bench.records import RunRecords

    return [
        {"run": str(failure.get("run", records.dir)), "error": failure["error"]}
        for records in RunRecords.find(runs_dir, "failure.json")
        if (failure := records.read_failure()) is not None
    ]


def setting_label(summary: dict) -> str:
    parts = []
    data_format = summary["data"]["format"]
    if data_format == "imagefolder":
        parts.append("ImageFolder copy")
    elif data_format not in ("torchvision", "imagenet"):  # the datasets the paper used, as distributed
        parts.append(summary["data"]["description"])
    elif summary["data"].get("verified") is False:  # files not checked against the official md5 sums
        parts.append("unverified files")
    start = summary.get("start_point") or {}
    if start.get("weights") and not start.get("verified", True):
        parts.append(f"weights file sha256 {start['sha256'][:8]}")
    if summary["budget_scale"] != 1:
        parts.append(f"budget x{summary['budget_scale']:g}")
    if summary.get("train_subset"):
        parts.append(f"{summary['train_subset']} train images")
    overrides = summary.get("overrides", {})
    # `--set swa.variant=NAME` names the SWA settings set with it: they are that variant's row, not a
    # setting (so a sweep of SWA rates from the command line stays paired with its SGD runs).
    named = "swa." if "swa.variant" in overrides else None
    changed = {
        k: v
        for k, v in overrides.items()
        if k not in RUNTIME_KEYS | FOLDER_KEYS | CADENCE_KEYS and not (named and k.startswith(named))
    }
    parts += [f"{k}={v}" for k, v in sorted(changed.items())]
    return "; ".join(parts) or PAPER_SETTING


# A table cell takes the paper's number by these keys (not the budget: a README's FGE number for a
# 200-epoch budget stands beside a 150-epoch row, its source saying so), so each may have one number.
PAPER_CELL = ["dataset", "model", "column"]
# Where two paper files give the same cell, which wins, by file name: the SWA paper's own FGE column
# (arXiv v1, Table 1, quoting Garipov et al.) over the FGE code README's numbers for those cells. The
# losing file keeps its rows; they show only where the winner has no number. Any other repeated cell
# is refused, so that no order of reading decides which number a table shows.
PAPER_PRECEDENCE = {"fge_swa_paper.csv": ("fge_readme.csv",)}
# A `source` naming the SWA paper itself (e.g. "SWA paper, arXiv v1 (...)") says which version a
# number was read from: it is the paper's number, shown unmarked, where other sources get a footnote.
THE_PAPER = "SWA paper"


def load_paper(paper_dir: str | Path = PAPER_DIR) -> pd.DataFrame:
    files = sorted(Path(paper_dir).glob("*.csv"))
    if not files:
        warnings.warn(f"{paper_dir}: no paper CSV files; the table shows measured numbers only")
        return pd.DataFrame(columns=["dataset", "model", "budget", "column", "mean", "std"])
    frames = _without_superseded({f.name: _paper_file(f).assign(_file=str(f)) for f in files})
    paper = pd.concat(frames.values(), ignore_index=True)
    _refuse_repeated_cells(paper)
    return paper.drop(columns="_file")


def _cells_of(frame: pd.DataFrame) -> list[tuple]:
    return list(zip(*(frame[key] for key in PAPER_CELL)))


def _without_superseded(frames: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Each file of PAPER_PRECEDENCE's losers without the cells its winner gives."""
    kept = dict(frames)
    for winner, losers in PAPER_PRECEDENCE.items():
        cells = set(_cells_of(frames[winner])) if winner in frames else set()
        for loser in (name for name in losers if name in kept):
            kept[loser] = kept[loser].loc[[cell not in cells for cell in _cells_of(kept[loser])]]
    return kept


def _refuse_repeated_cells(paper: pd.DataFrame) -> None:
    """Two numbers for one cell would print its measured row twice, beside each: refused, naming them."""
    from swa_bench.config import ConfigError

    repeated = paper[paper.duplicated(PAPER_CELL, keep=False)]
    if repeated.empty:
        return
    first = repeated.iloc[0]
    same = repeated[(repeated[PAPER_CELL] == first[PAPER_CELL]).all(axis=1)]
    files = " and ".join(dict.fromkeys(same["_file"]))
    budgets = ", ".join("none" if pd.isna(b) else f"{b:g}" for b in same["budget"])
    raise ConfigError(
        f"{files}: {len(same)} paper numbers for one table cell (dataset {first['dataset']}, model "
        f"{first['model']}, column {first['column']}; budgets {budgets}); keep one row"
    )


_PAPER_COLUMNS = {"dataset": str, "model": str, "budget": "number", "column": str, "mean": "number", "std": "number"}


def _paper_file(path: Path) -> pd.DataFrame:
    """One paper CSV, checked: a file that is not one stops `table` with a line naming it."""
    from swa_bench.config import ConfigError

    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError) as e:  # UnicodeDecodeError is a ValueError
        raise ConfigError(f"{path}: not a readable paper CSV ({e.__class__.__name__})") from None
    missing = [c for c in _PAPER_COLUMNS if c not in frame.columns]
    if missing:
        raise ConfigError(f"{path}: not a paper CSV (no column {missing[0]!r}; expected {', '.join(_PAPER_COLUMNS)})")
    for column, kind in _PAPER_COLUMNS.items():
        if kind == "number" and not pd.api.types.is_numeric_dtype(frame[column]):
            raise ConfigError(f"{path}: column {column!r} holds values that are not numbers")
    return frame


# --------------------------------------------------------------------------------------------------
# Aggregating


_ROW_KEYS = ["dataset", "model", "budget", "setting", "variant"]


def _run_records(summaries: list[dict]) -> pd.DataFrame:
    """One record per (run, reported column)."""

    def values(s: dict) -> dict:
        # A diverged run counts in its row's cells as a run without a number.
        return s["results"] if s["status"] == "finished" else {c: float("nan") for c in s.get("columns", [])}

    nan = float("nan")
    return pd.DataFrame(
        [
            {
                "dataset": s["dataset"],
                "model": s["model"],
                "budget": s["budget"],
                "setting": setting_label(s),
                "variant": s.get("variant") or "",
                "seed": s.get("seed"),
                "column": column,
                "value": value,
                # Records written before test losses were kept have none: NaN, shown as "–".
                "nll": (s.get("results_nll") or {}).get(column, nan),
                "train_acc": s.get("final_train_acc", nan) if Column(column).baseline else nan,
                "note": s.get("note") or "",
                # torchvision's documented accuracy of the pretrained weights, beside their measured one
                "documented": (s.get("start_point") or {}).get("documented_acc1") if Column(column).baseline else None,
            }
            for s in summaries
            for column, value in values(s).items()
        ]
    )


def varies_with_variant(column: str) -> bool:
    """Whether a column's runs depend on the variant: only those of a method with variants (SWA);
    SGD, EMA and FGE runs change with no swa key, so one set of them serves every variant of their row."""
    from swa_bench.methods import find_method

    method = find_method(Column(column).method)
    return method is not None and method.variants


def _share_runs_without_variant(runs: pd.DataFrame) -> pd.DataFrame:
    """SGD, EMA and FGE runs carry no variant (no swa key changes them): they serve every SWA variant
    of their row, so each variant's table row gets a copy of them."""
    keys = ["dataset", "model", "budget", "setting"]
    is_swa = runs.column.map(varies_with_variant)
    variants = runs[is_swa].groupby(keys)["variant"].agg(lambda v: sorted(set(v))).to_dict()
    shared = runs[~is_swa]
    copies = [part.assign(variant=v) for key, part in shared.groupby(keys) for v in variants.get(key, [""])]
    return pd.concat([runs[is_swa], *copies], ignore_index=True)


def _paired_differences(runs: pd.DataFrame) -> pd.DataFrame:
    """Each averaged column minus the SGD run of the same seed (they share initial weights, data
    order and augmentation, so the difference is paired): mean, sample std and n over seeds, and the
    standard error of that mean (std / sqrt(n)), which says whether the mean is distinguishable from 0."""
    baseline = runs.column.map(lambda c: Column(c).baseline).astype(bool)
    sgd = runs[baseline][_ROW_KEYS + ["seed", "value"]].rename(columns={"value": "sgd_value"})
    paired = runs[~baseline].merge(sgd, on=_ROW_KEYS + ["seed"])
    paired["diff"] = paired["value"] - paired["sgd_value"]
    stats = (
        paired.groupby(_ROW_KEYS + ["column"], sort=False)
        .agg(vs_sgd_mean=("diff", "mean"), vs_sgd_std=("diff", "std"), vs_sgd_n=("diff", "count"))
        .reset_index()
    )
    return stats.assign(vs_sgd_se=stats["vs_sgd_std"] / stats["vs_sgd_n"] ** 0.5)


def aggregate(summaries: list[dict], paper: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, model, setting, variant, column): mean, sample std (ddof=1) and n over
    seeds of the test accuracy, the same for the test loss, the paired difference from SGD, SGD's
    final training accuracy, and the paper's mean and std where the paper has that cell."""
    runs = _run_records(summaries)
    if runs.empty:
        return pd.DataFrame(columns=CSV_COLUMNS + ["budget"])
    runs = _share_runs_without_variant(runs)
    row_keys = _ROW_KEYS
    stats = (
        runs.groupby(row_keys + ["column"], sort=False)
        .agg(
            mean=("value", "mean"),
            std=("value", "std"),
            n=("value", "count"),
            runs=("value", "size"),
            documented=("documented", "first"),
            nll_mean=("nll", "mean"),
            nll_std=("nll", "std"),
            train_acc_mean=("train_acc", "mean"),
            train_acc_std=("train_acc", "std"),
        )
        .reset_index()
    )
    stats["diverged"] = stats.pop("runs") - stats["n"]
    stats = stats.merge(_paired_differences(runs), on=row_keys + ["column"], how="left")
    # A note is the SWA setting's (swa.note): each cell carries the notes of its own runs, so the SGD, EMA
    # and FGE cells repeated under each SWA variant's row never take that variant's note.
    notes = runs.groupby(row_keys + ["column"], sort=False)["note"].agg(
        lambda v: "; ".join(sorted({n for n in v if n}))
    )
    stats = stats.merge(notes.reset_index(), on=row_keys + ["column"], how="left")
    paper = paper.loc[[not Column(c).beyond_paper for c in paper["column"]]]  # no paper number for what it lacks
    # Where a number comes from another source than the paper's tables (a `source` column), it says so.
    paper = paper.assign(paper_source=[_other_source(s) for s in paper["source"]] if "source" in paper else "")
    paper = paper.rename(columns={"mean": "paper_mean", "std": "paper_std"})[
        ["dataset", "model", "column", "paper_mean", "paper_std", "paper_source"]
    ]
    return stats.merge(paper, on=["dataset", "model", "column"], how="left")


def _other_source(source) -> str:
    """A paper file's `source` if it is not the paper itself, else "" (the paper's number)."""
    text = "" if pd.isna(source) else str(source)
    return "" if text.startswith(THE_PAPER) else text


# --------------------------------------------------------------------------------------------------
# Formatting


def _number(value: float, std: float | None = None, digits: int = 2) -> str:
    if pd.isna(value):
        return "–"
    return f"{value:.{digits}f}" if std is None or pd.isna(std) else f"{value:.{digits}f} ± {std:.{digits}f}"


def _measured(row: pd.Series, detail: bool = False) -> str:
    diverged = f"; {int(row['diverged'])} diverged" if row["diverged"] else ""
    text = f"{_number(row['mean'], row['std'])} (n={int(row['n'])}{diverged})"
    if detail:
        text += f"; NLL {_number(row['nll_mean'], row['nll_std'], digits=3)}"
        if not pd.isna(row.get("vs_sgd_mean")):
            # Its own n: the seeds with an SGD run to pair with, possibly fewer than the cell's.
            n, std = int(row["vs_sgd_n"]), row["vs_sgd_std"]
            spread = f" (n={n})" if pd.isna(std) else f" ± {std:.2f} (s.e. {row['vs_sgd_se']:.2f}, n={n})"
            text += f"; vs SGD {row['vs_sgd_mean']:+.2f}{spread}"
        if not pd.isna(row.get("train_acc_mean")):
            text += f"; train acc {_number(row['train_acc_mean'], row['train_acc_std'])}"
    if not pd.isna(row.get("documented")):
        text += f"; torchvision {row['documented']:.2f}"
    return text


def _cells(row: pd.Series | None, with_paper: bool, detail: bool, marks: dict[str, str]) -> list[str]:
    """A column's cells in one table row: measured, then the paper's value and measured − paper
    where the column has paper numbers ("–" where this row has none, or no run). A value from
    another source than the paper's tables is marked with it."""
    if row is None:
        return ["–"] * (3 if with_paper else 1)
    cells = [_measured(row, detail)]
    if with_paper:
        delta = row["mean"] - row["paper_mean"]
        paper = _number(row["paper_mean"], row["paper_std"])
        source = row.get("paper_source")
        if isinstance(source, str) and source and not pd.isna(row["paper_mean"]):
            paper += f" {_mark(marks, f'not from the paper: {source}')}"
        cells += [paper, "–" if pd.isna(delta) else f"{delta:+.2f}"]
    return cells


def _mark(marks: dict[str, str], note: str) -> str:
    """The footnote mark of `note`: †, ‡, §, ¶, then doubled (††, ...)."""
    return marks.setdefault(note, NOTE_MARKS[len(marks) % len(NOTE_MARKS)] * (len(marks) // len(NOTE_MARKS) + 1))


def _tabulate(lines: list[list[str]], headers: list[str], fmt: str) -> str:
    """Text left, numbers right (so signs and decimals line up; "pipe" keeps the alignment in
    markdown, where "github" drops it). LaTeX gets booktabs rules; tabulate escapes its text
    (_ % & # ...), then ± and Δ become math."""
    align = ["left", "left"] + ["right"] * (len(headers) - 2)
    if fmt == "markdown":  # a `|` in a note or a setting would split its cell
        lines = [[cell.replace("|", "\\|") for cell in line] for line in lines]
    body = tabulate(
        lines,
        headers=headers,
        tablefmt={"markdown": "pipe", "latex": "latex_booktabs"}[fmt],
        disable_numparse=True,
        colalign=align,
    )
    return body if fmt == "markdown" else body.replace("±", r"$\pm$").replace("Δ", r"$\Delta$")


def row_label(dataset: str, model: str, budget, variant: str) -> str:
    """A table row's model cell: the model, its budget (ImageNet rows have none of their own), its SWA variant."""
    label = model_label(model) + ("" if dataset == "imagenet" else f" ({budget})")
    return label + (f" [{variant}]" if variant else "")


def dataset_title(dataset: str) -> str:
    return DATASETS[dataset].title if dataset in DATASETS else dataset


def _block(dataset: str, part: pd.DataFrame, paper_columns: list[str], fmt: str, detail: bool) -> str:
    """One dataset's table. Each column has its measured cells; a column with a paper number in any
    row also has a "paper" and a "Δ" (measured − paper) column beside it, so they paste as numbers."""
    columns = sorted(set(part["column"]) | set(paper_columns), key=lambda c: Column(c).order())
    with_paper = set(part.loc[part["paper_mean"].notna(), "column"])
    lines, marks = [], {}
    for (model, budget, setting, variant), row_part in part.groupby(
        ["model", "budget", "setting", "variant"], sort=True
    ):
        rows = {r["column"]: r for _, r in row_part.iterrows()}
        label = row_label(dataset, model, budget, variant)
        # The row's footnote: the notes its cells carry (its SWA runs' settings).
        note = "; ".join(sorted({n for n in row_part["note"] if isinstance(n, str) and n}))
        label += f" {_mark(marks, note)}" if note else ""
        lines.append(
            [label, setting] + [cell for c in columns for cell in _cells(rows.get(c), c in with_paper, detail, marks)]
        )
    headers = ["model" if dataset == "imagenet" else "model (budget)", "setting"]
    for c in columns:
        note = Column(c).beyond_paper
        headers.append(Column(c).title(dataset) + (f" {_mark(marks, note)}" if note else ""))
        headers += ["paper", "Δ"] if c in with_paper else []
    title = dataset_title(dataset)
    heading, footnote = ("## ", "\n\n") if fmt == "markdown" else ("% ", "\n% ")
    footnotes = "".join(f"{footnote}{mark} {note}" for note, mark in marks.items())
    return f"{heading}{title}\n\n{_tabulate(lines, headers, fmt)}{footnotes}"


def render(
    table: pd.DataFrame, fmt: str = "markdown", paper_columns: dict[str, list[str]] | None = None, detail: bool = False
) -> str:
    """`paper_columns`: dataset -> the columns of the paper's table, shown even where no run has them.
    `detail`: each measured cell also gives the test loss, the paired difference from SGD and, for
    SGD, the final training accuracy."""
    if fmt == "csv":
        counts = {c: "Int64" for c in ("n", "diverged", "vs_sgd_n")}  # whole numbers, empty where none
        return table[CSV_COLUMNS].astype(counts).to_csv(index=False, float_format="%.4f")
    paper_columns = paper_columns or {}
    blocks = [
        _block(dataset, part, paper_columns.get(dataset, []), fmt, detail)
        for dataset, part in table.groupby("dataset", sort=True)
    ]
    return "\n\n".join(blocks) + "\n"


def paper_columns(paper: pd.DataFrame) -> dict[str, list[str]]:
    return {dataset: list(part["column"].unique()) for dataset, part in paper.groupby("dataset")}


def build_table(runs_dir: str | Path, paper_dir: str | Path | None = None) -> pd.DataFrame:
    """The table of the ended runs under `runs_dir`, beside the paper's numbers, as a DataFrame."""
    return aggregate(find_summaries(runs_dir), load_paper(paper_dir or PAPER_DIR))


def table_text(
    runs_dir: str | Path, fmt: str = "markdown", paper_dir: str | Path | None = None, detail: bool = False
) -> str:
    """The tables of the ended runs under `runs_dir`, rendered ("" when there are none yet)."""
    paper = load_paper(paper_dir or PAPER_DIR)
    result = aggregate(find_summaries(runs_dir), paper)
    return "" if result.empty else render(result, fmt, paper_columns(paper), detail=detail)
