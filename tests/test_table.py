import json
import statistics

import pandas as pd
import pytest
from click.testing import CliRunner

from swa_bench.cli import main
from swa_bench.tables import (
    CSV_COLUMNS,
    PAPER_SETTING,
    aggregate,
    build_table,
    find_summaries,
    load_paper,
    render,
    setting_label,
)

TORCHVISION = {"format": "torchvision", "path": "/data/cifar-10-batches-py", "description": "cifar10 pickle batches"}
FOLDER = {"format": "imagefolder", "path": "/data/cifar10-jpg", "description": "ImageFolder copy"}


def write_summary(
    root,
    dataset,
    model,
    method,
    seed,
    results,
    data=TORCHVISION,
    scale=1.0,
    subset=None,
    overrides=None,
    status="finished",
    variant=None,
    note=None,
):
    run = root / dataset / model / method / f"seed{seed}"
    run.mkdir(parents=True, exist_ok=True)
    summary = {
        "status": status,
        "dataset": dataset,
        "model": model,
        "method": method,
        "seed": seed,
        "budget": 200,
        "budget_scale": scale,
        "train_subset": subset,
        "data": data,
        "overrides": overrides or {},
        "results": results,
        **({"variant": variant} if variant else {}),
        **({"note": note} if note else {}),
    }
    (run / "summary.json").write_text(json.dumps(summary))
    write_run_records(run, summary)
    return run


def write_run_records(run, summary):
    """The config.yaml and metrics.jsonl a summary must agree with (records.RunRecords.checked_summary):
    the run's method, seed, dataset and model, its report points, and each reported number logged."""
    from swa_bench.columns import Column

    config = {
        "run": {"method": summary["method"], "seed": summary["seed"], "budget_scale": summary["budget_scale"]},
        "data": {"dataset": summary["dataset"], "train_subset": summary["train_subset"]},
        "model": {"name": summary["model"]},
        "schedule": {"budget": summary["budget"]},
    }
    for key, value in (summary.get("overrides") or {}).items():  # what makes another setting another run
        *sections, last = key.split(".")
        target = config
        for section in sections:
            target = target.setdefault(section, {})
        target[last] = value
    for key in ("variant", "note"):
        if summary.get(key) is not None:
            config.setdefault("swa", {})[key] = summary[key]
    columns = list(summary["results"])
    (run / "config.yaml").write_text(
        json.dumps(
            {
                "config": config,
                "data_format": summary["data"]["format"],
                "protocol": {"report_points": {c: i + 1 for i, c in enumerate(columns)}},
            }
        )
    )
    rows = [
        {"epoch": i + 1, "report": [c], Column(c).metrics_prefix + "acc": v}
        for i, (c, v) in enumerate(summary["results"].items())
    ]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture
def runs(tmp_path):
    root = tmp_path / "runs"
    for seed, (sgd, s1, s125, s15) in enumerate(
        [(93.1, 93.5, 93.6, 93.7), (93.3, 93.7, 93.9, 93.8), (93.2, 93.4, 93.5, 93.9)]
    ):
        write_summary(root, "cifar10", "vgg16", "sgd", seed, {"sgd": sgd})
        write_summary(root, "cifar10", "vgg16", "swa", seed, {"swa_1": s1, "swa_1.25": s125, "swa_1.5": s15})
    # A quick run on the JPEG copy at a budget scale: must stay out of the paper row.
    write_summary(
        root,
        "cifar10",
        "vgg16",
        "swa",
        7,
        {"swa_1": 50.0, "swa_1.25": 51.0, "swa_1.5": 52.0},
        data=FOLDER,
        scale=0.02,
        subset=5000,
    )
    # Unfinished and unreadable runs are ignored.
    write_summary(root, "cifar10", "vgg16", "sgd", 9, {"sgd": 0.0}, status="running")
    (root / "cifar10/vgg16/sgd/seed9/summary.json").write_text("{ torn")
    return root


def test_cells_equal_hand_computation(runs):
    with pytest.warns(UserWarning, match="unreadable"):
        table = build_table(runs)
    paper_rows = table[table.setting == PAPER_SETTING].set_index("column")
    sgd = [93.1, 93.3, 93.2]
    assert paper_rows.loc["sgd", "mean"] == pytest.approx(statistics.mean(sgd))
    assert paper_rows.loc["sgd", "std"] == pytest.approx(statistics.stdev(sgd))  # sample std, ddof = 1
    assert paper_rows.loc["sgd", "n"] == 3
    assert paper_rows.loc["swa_1.5", "mean"] == pytest.approx(statistics.mean([93.7, 93.8, 93.9]))
    assert paper_rows.loc["swa_1.25", "std"] == pytest.approx(statistics.stdev([93.6, 93.9, 93.5]))
    # The paper's numbers (docs/PROTOCOL.md §5) sit beside.
    assert paper_rows.loc["sgd", "paper_mean"] == 93.25 and paper_rows.loc["sgd", "paper_std"] == 0.16
    assert paper_rows.loc["swa_1.25", "paper_mean"] == 93.70


def test_other_data_and_scales_get_their_own_labelled_row(runs):
    with pytest.warns(UserWarning):
        table = build_table(runs)
    quick = table[table.setting != PAPER_SETTING]
    assert set(quick.setting) == {"ImageFolder copy; budget x0.02; 5000 train images"}
    assert quick.set_index("column").loc["swa_1", "mean"] == 50.0 and (quick.n == 1).all()
    paper = table[table.setting == PAPER_SETTING]
    assert (paper.n == 3).all()  # the quick run was not merged in


def test_setting_label_names_changed_hyperparameters_but_not_runtime_keys():
    summary = {
        "data": TORCHVISION,
        "budget_scale": 1.0,
        "train_subset": None,
        "overrides": {"run.device": "cuda", "data.workers": 8, "run.seed": 2, "optim.lr_init": 0.1},
    }
    assert setting_label(summary) == "optim.lr_init=0.1"
    summary["overrides"] = {"run.device": "cuda", "data.path": "/x", "run.method": "swa"}
    assert setting_label(summary) == PAPER_SETTING


def table_lines(text: str, heading: str = "## CIFAR-10") -> list[list[str]]:
    """The cells of the markdown table under `heading`, header first (the rule line left out)."""
    block = text.split(heading, 1)[1].split("\n\n")[1]
    rows = [line for i, line in enumerate(block.splitlines()) if i != 1]
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in rows]


def latex_lines(text: str) -> list[list[str]]:
    """The cells of each LaTeX table row between \\toprule and \\bottomrule (the \\midrule left out)."""
    body = text.split("\\toprule", 1)[1].split("\\bottomrule", 1)[0]
    return [
        [c.strip() for c in line.removesuffix("\\\\").split(" & ")]
        for line in map(str.strip, body.splitlines())
        if line and line != "\\midrule"
    ]


def paper_row(lines: list[list[str]], label: str = "VGG-16 (200)") -> dict[str, str]:
    """The cells of the paper-protocol row `label` by header; a "paper" or Δ cell is named after the
    column it follows ("SGD paper", "SGD Δ")."""
    header, *rows = lines
    names, column = [], ""
    for name in header:
        column = column if name in ("paper", "Δ", "$\\Delta$") else name
        names.append(name if name == column else f"{column} {name}")
    return dict(zip(names, next(r for r in rows if r[:2] == [label, PAPER_SETTING])))


def test_markdown_gives_paper_and_difference_their_own_columns(runs):
    write_summary(runs, "cifar10", "tinynet", "sgd", 0, {"sgd": 90.0})  # a model the paper does not have
    with pytest.warns(UserWarning):
        table = build_table(runs)
    header, *rows = table_lines(render(table, "markdown"))
    assert header == [
        "model (budget)",
        "setting",
        "SGD",
        "paper",
        "Δ",
        "SWA 1 B",
        "paper",
        "Δ",
        "SWA 1.25 B",
        "paper",
        "Δ",
        "SWA 1.5 B",
        "paper",
        "Δ",
    ]
    cells = paper_row([header, *rows])
    # SGD: mean 93.20, std 0.10 over (93.1, 93.3, 93.2); the paper's 93.25 ± 0.16; 93.20 - 93.25
    assert (cells["SGD"], cells["SGD paper"], cells["SGD Δ"]) == ("93.20 ± 0.10 (n=3)", "93.25 ± 0.16", "-0.05")
    # SWA 1.5: mean 93.80 over (93.7, 93.8, 93.9); the paper's 93.64 ± 0.18; 93.80 - 93.64
    assert (cells["SWA 1.5 B"], cells["SWA 1.5 B paper"], cells["SWA 1.5 B Δ"]) == (
        "93.80 ± 0.10 (n=3)",
        "93.64 ± 0.18",
        "+0.16",
    )
    # The quick run on other data keeps the paper's number beside it (it is the same model).
    assert next(r for r in rows if r[0] == "tinynet (200)")[2:5] == ["90.00 (n=1)", "–", "–"]
    quick = next(r for r in rows if r[1] != PAPER_SETTING)
    assert quick[2:5] == ["–", "–", "–"]  # no SGD run in that row
    assert quick[11:14] == ["52.00 (n=1)", "93.64 ± 0.18", "-41.64"]


def test_latex_uses_booktabs_math_and_escapes_text(runs):
    write_summary(
        runs,
        "cifar10",
        "vgg16",
        "swa",
        5,
        {"swa_1": 90.0},
        overrides={"optim.lr_init": 0.1},
        data={"format": "jpeg", "path": "/x", "description": "JPEG 75% & #2"},
    )
    with pytest.warns(UserWarning):
        table = build_table(runs)
    table.loc[table.setting != PAPER_SETTING, "note"] = "a quick run"
    latex = render(table, "latex")
    assert "\\toprule" in latex and "\\midrule" in latex and "\\bottomrule" in latex
    assert "\\hline" not in latex and "|" not in latex.split("\\begin{tabular}{", 1)[1].split("}", 1)[0]
    assert "±" not in latex.split("\\bottomrule")[0] and "$\\pm$" in latex
    lines = latex_lines(latex)
    assert lines[0] == [
        "model (budget)",
        "setting",
        "SGD",
        "paper",
        "$\\Delta$",
        "SWA 1 B",
        "paper",
        "$\\Delta$",
        "SWA 1.25 B",
        "paper",
        "$\\Delta$",
        "SWA 1.5 B",
        "paper",
        "$\\Delta$",
    ]
    cells = paper_row(lines)
    assert (cells["SGD"], cells["SGD paper"], cells["SGD $\\Delta$"]) == (
        "93.20 $\\pm$ 0.10 (n=3)",
        "93.25 $\\pm$ 0.16",
        "-0.05",
    )
    assert any(r[1] == "JPEG 75\\% \\& \\#2; optim.lr\\_init=0.1" for r in lines)
    assert "VGG-16 (200) †" in latex and latex.endswith("\n% † a quick run\n")  # the footnote, as a comment


def test_csv_keeps_its_columns(runs):
    with pytest.warns(UserWarning):
        table = build_table(runs)
    parsed = pd.read_csv(pd.io.common.StringIO(render(table, "csv")))
    assert list(parsed.columns) == CSV_COLUMNS
    assert set(parsed.column) == {"sgd", "swa_1", "swa_1.25", "swa_1.5"}


def test_ema_columns_follow_swa_without_paper_numbers(runs):
    """An EMA run (beyond the paper) reports ema_<k> columns: after SGD and SWA, labelled like SWA's,
    no paper number and a footnote saying so, in every format."""
    for seed, ema in enumerate([93.4, 93.6, 93.5]):
        write_summary(runs, "cifar10", "vgg16", "ema", seed, {"ema_1": ema})
    with pytest.warns(UserWarning):
        table = build_table(runs)
    ema = table[(table.column == "ema_1") & (table.setting == PAPER_SETTING)].iloc[0]
    assert ema["mean"] == pytest.approx(93.5) and ema["n"] == 3 and pd.isna(ema["paper_mean"])

    markdown = render(table, "markdown")
    header, *rows = table_lines(markdown)
    assert header[-1] == "EMA 1 B †" and header[-4:-1] == ["SWA 1.5 B", "paper", "Δ"]  # no paper or Δ beside
    assert paper_row([header, *rows])["EMA 1 B †"] == "93.50 ± 0.10 (n=3)"
    assert "\n\n† EMA (exponential moving average of the weights): beyond the paper" in markdown

    lines = latex_lines(render(table, "latex"))
    assert lines[0][-4:] == ["SWA 1.5 B", "paper", "$\\Delta$", "EMA 1 B †"]
    assert paper_row(lines)["EMA 1 B †"] == "93.50 $\\pm$ 0.10 (n=3)"

    parsed = pd.read_csv(pd.io.common.StringIO(render(table, "csv")))
    rows = parsed[parsed.setting == PAPER_SETTING].set_index("column")
    assert set(rows.index) == {"sgd", "swa_1", "swa_1.25", "swa_1.5", "ema_1"}
    assert rows.loc["ema_1", "mean"] == pytest.approx(93.5) and rows.loc["ema_1", "n"] == 3
    assert rows.loc["ema_1", ["paper_mean", "paper_std"]].isna().all()


def test_a_paper_file_cannot_give_ema_a_number(runs):
    write_summary(runs, "cifar10", "vgg16", "ema", 0, {"ema_1": 93.4})
    paper = pd.concat(
        [
            load_paper(),
            pd.DataFrame(
                [{"dataset": "cifar10", "model": "vgg16", "budget": 200, "column": "ema_1", "mean": 99.0, "std": 0.1}]
            ),
        ]
    )
    with pytest.warns(UserWarning):
        table = aggregate(find_summaries(runs), paper)
    assert table[table.column == "ema_1"].paper_mean.isna().all()


def test_rows_without_paper_numbers_show_a_dash(tmp_path):
    write_summary(
        tmp_path,
        "digits",
        "digits_cnn",
        "sgd",
        0,
        {"sgd": 97.0},
        data={"format": "sklearn", "path": "sklearn", "description": "scikit-learn 8x8 digits"},
    )
    table = aggregate([json.loads(p.read_text()) for p in tmp_path.rglob("summary.json")], load_paper())
    assert pd.isna(table.paper_mean).all()
    text = render(table)
    assert "97.00 (n=1)" in text and "scikit-learn 8x8 digits" in text and "paper" not in text.split("\n", 3)[-1]


def test_table_cli(runs, tmp_path):
    result = CliRunner().invoke(main, ["table", str(runs), "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == ",".join(CSV_COLUMNS)
    assert "warning: " in result.stderr and "skipped, unreadable" in result.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(main, ["table", str(empty)])
    assert result.exit_code == 1 and "no finished runs" in result.output
    result = CliRunner().invoke(main, ["table", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "no such runs directory" in result.output


def test_preresnet110_rows_compare_with_the_reference_readme(tmp_path):
    """The reference code's README gives PreResNet-110 as mean ± std; its rows compare against them."""
    paper = load_paper()
    rows = paper[paper.model == "preresnet110"].set_index(["dataset", "column"])
    assert rows.loc[("cifar100", "sgd"), "mean"] == 76.77 and rows.loc[("cifar100", "swa_1.5"), "std"] == 0.21
    assert rows.loc[("cifar10", "swa_1.25"), "mean"] == 95.65 and rows.loc[("cifar10", "sgd"), "std"] == 0.05
    assert set(rows["source"]) == {"timgaripov/swa README"} and len(rows) == 8
    write_summary(tmp_path, "cifar10", "preresnet110", "sgd", 0, {"sgd": 95.0})
    table = aggregate([json.loads(p.read_text()) for p in tmp_path.rglob("summary.json")], paper)
    cells = paper_row(table_lines(render(table)), "PreResNet-110 (200)")
    assert (cells["SGD"], cells["SGD paper"], cells["SGD Δ"]) == ("95.00 (n=1)", "95.03 ± 0.05 †", "-0.03")
    assert "† not from the paper: timgaripov/swa README" in render(table)  # its source, named


def test_old_records_without_test_losses_still_tabulate(runs):
    """Summaries written before results_nll and final_train_acc existed: their cells show '–' for those."""
    with pytest.warns(UserWarning):
        table = build_table(runs)
    assert table.nll_mean.isna().all() and table.train_acc_mean.isna().all()
    assert "NLL –" in render(table, detail=True)


def test_detail_gives_the_standard_error_of_the_paired_difference(tmp_path):
    """vs SGD: mean ± std of the per-seed differences, then the standard error of that mean, std / sqrt(n)."""
    diffs = [0.1, 0.5, 0.3, 0.7]  # mean 0.4, sample std sqrt(0.2 / 3) = 0.2582, s.e. 0.1291
    for seed, diff in enumerate(diffs):
        write_summary(tmp_path, "cifar10", "vgg16", "sgd", seed, {"sgd": 90.0 + seed})
        write_summary(tmp_path, "cifar10", "vgg16", "swa", seed, {"swa_1": 90.0 + seed + diff})
    write_summary(tmp_path, "cifar10", "vgg16", "ema", 0, {"ema_1": 90.2})  # one pair: no spread
    table = build_table(tmp_path).set_index("column")
    assert table.loc["swa_1", "vs_sgd_se"] == pytest.approx(statistics.stdev(diffs) / 2)
    assert table.loc["swa_1", "vs_sgd_se"] == pytest.approx(0.1291, abs=1e-4)
    assert pd.isna(table.loc["ema_1", "vs_sgd_se"])
    cells = paper_row(table_lines(render(table.reset_index(), detail=True)))
    assert cells["SWA 1 B"].endswith("; vs SGD +0.40 ± 0.26 (s.e. 0.13, n=4)")
    assert cells["EMA 1 B †"].endswith("; vs SGD +0.20 (n=1)")
    assert "s.e." not in render(table.reset_index())  # only in the detailed table
    parsed = pd.read_csv(pd.io.common.StringIO(render(table.reset_index(), "csv"))).set_index("column")
    assert parsed.loc["swa_1", "vs_sgd_se"] == pytest.approx(0.1291, abs=1e-4)


# --------------------------------------------------------------------------------------------------
# Each run counted once, however many copies of its records lie under the folder


def _counts(root):
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = build_table(root)
    rows = table[table.setting == PAPER_SETTING].set_index("column")
    return {c: int(rows.loc[c, "n"]) for c in rows.index}, [str(w.message) for w in caught]


@pytest.mark.parametrize("copy", ["subfolder", "beside", "hardlink"])
def test_copies_of_runs_count_once_and_say_so_in_one_line(tmp_path, copy):
    import os
    import shutil

    root = tmp_path / "runs"
    for seed in range(3):
        for method, results in (("sgd", {"sgd": 93.0 + seed / 10}), ("swa", {"swa_1": 93.5 + seed / 10})):
            write_summary(root, "cifar10", "vgg16", method, seed, results)
    before, _ = _counts(root)
    if copy == "subfolder":  # a run tree copied into a folder of the same tree (results/<x>/seed0/...)
        shutil.copytree(root / "cifar10", root / "seed0" / "cifar10")
    elif copy == "beside":  # one run folder copied beside itself
        shutil.copytree(root / "cifar10/vgg16/sgd/seed0", root / "cifar10/vgg16/sgd/seed0-copy")
    else:  # hard links to the same files
        target = root / "elsewhere" / "seed1"
        target.mkdir(parents=True)
        for name in ("summary.json", "config.yaml", "metrics.jsonl"):
            os.link(root / "cifar10/vgg16/swa/seed1" / name, target / name)
    after, messages = _counts(root)
    assert after == before == {"sgd": 3, "swa_1": 3}
    assert (
        len(messages) == 1 and "copies of runs already found" in messages[0] and "each run counted once" in messages[0]
    )


def test_copies_of_one_run_with_other_results_are_not_counted(tmp_path):
    import shutil

    root = tmp_path / "runs"
    for seed in range(2):
        write_summary(root, "cifar10", "vgg16", "sgd", seed, {"sgd": 93.0 + seed})
    shutil.copytree(root / "cifar10/vgg16/sgd/seed1", root / "other" / "seed1")
    edited = json.loads((root / "other/seed1/summary.json").read_text())
    edited["results"]["sgd"] = 99.99
    (root / "other/seed1/summary.json").write_text(json.dumps(edited))
    counts, messages = _counts(root)  # the summary alone edited: it disagrees with its own metrics log
    assert counts == {"sgd": 2}
    assert any("sgd = 99.99, but metrics.jsonl recorded 94.0" in m for m in messages)
    write_run_records(root / "other/seed1", edited)  # its metrics log edited to match: two versions of one run
    counts, messages = _counts(root)
    assert counts == {"sgd": 1}
    assert any(
        "records of one run (same config, method and seed) with different results; not counted" in m for m in messages
    )


def test_a_lone_summary_in_a_stray_folder_is_not_counted(tmp_path):
    import shutil

    root = tmp_path / "runs"
    write_summary(root, "cifar10", "vgg16", "sgd", 0, {"sgd": 93.0})
    write_summary(root, "cifar10", "vgg16", "sgd", 1, {"sgd": 93.2})
    (root / "stray").mkdir()
    shutil.copyfile(root / "cifar10/vgg16/sgd/seed1/summary.json", root / "stray" / "summary.json")
    counts, messages = _counts(root)
    assert counts == {"sgd": 2}
    assert any(
        "stray/summary.json: skipped, does not agree with its run (no readable config.yaml beside it)" in m
        for m in messages
    )


def test_the_command_counts_the_committed_miniature_once():
    """`swa-bench table results/cifar10-jpg-mini`: its seed0/ folder repeats seed 0's runs."""
    from conftest import REPO

    result = CliRunner().invoke(main, ["table", str(REPO / "results/cifar10-jpg-mini")])
    assert result.exit_code == 0, result.output
    assert "each run counted once" in result.output  # the one warning line (stderr is mixed in by CliRunner)
    assert "55.04 ± 0.85 (n=5)" in result.output and "(n=6)" not in result.output  # SGD: seeds 0-4, once each


# --------------------------------------------------------------------------------------------------
# The paper's files: one number per table cell, and which file wins where two give one


def _paper_dir(tmp_path, files: dict[str, str]):
    """A paper folder holding the shipped cifar.csv and `files` (name -> CSV text)."""
    import shutil

    from swa_bench.shipped import PAPER_DIR

    folder = tmp_path / "paper"
    folder.mkdir()
    shutil.copy(PAPER_DIR / "cifar.csv", folder / "cifar.csv")
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


HEADER = "dataset,model,budget,column,mean,std,source\n"


@pytest.mark.parametrize("where", ["two files", "one file"])
def test_a_cell_given_twice_is_refused_in_one_line_naming_it(runs, tmp_path, where):
    from swa_bench.config import ConfigError

    if where == "two files":  # a cell of cifar.csv given again
        folder = _paper_dir(tmp_path, {"more.csv": HEADER + "cifar10,vgg16,200,sgd,93.30,0.20,another copy\n"})
        files, cell = f"{folder / 'cifar.csv'} and {folder / 'more.csv'}:", "model vgg16, column sgd"
    else:  # a row pasted twice
        folder = _paper_dir(tmp_path, {"more.csv": HEADER + "cifar10,vgg16,200,fge_1,93.52,,pasted\n" * 2})
        files, cell = f"{folder / 'more.csv'}:", "model vgg16, column fge_1"
    with pytest.raises(ConfigError) as refused:
        load_paper(folder)
    message = str(refused.value)
    assert message.startswith(files) and "\n" not in message
    assert f"2 paper numbers for one table cell (dataset cifar10, {cell}; budgets 200, 200); keep one row" in message
    result = CliRunner().invoke(main, ["table", str(runs), "--paper-dir", str(folder)])
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and errors == [f"error: {message}"]


def test_a_cell_at_two_budgets_is_still_one_cell(tmp_path):
    """The table matches the paper by dataset, model and column (a README's 200-epoch FGE number sits
    beside a 150-epoch row): two budgets of one cell would still be two numbers in it."""
    from swa_bench.config import ConfigError

    folder = _paper_dir(tmp_path, {"more.csv": HEADER + "cifar10,vgg16,300,sgd,93.30,0.20,elsewhere\n"})
    with pytest.raises(ConfigError, match="budgets 200, 300"):
        load_paper(folder)


def test_the_papers_own_fge_file_wins_over_the_fge_readme_by_rule(tmp_path):
    """Shipped: the SWA paper's FGE numbers (arXiv v1) replace the FGE README's for the same cells, and
    they are the paper's (no source to mark). By the file names' rule, not by the order of reading: a
    cell only the README has keeps the README's number."""
    from swa_bench.shipped import PAPER_DIR

    fge = load_paper().query("column == 'fge_1'").set_index(["dataset", "model"])
    assert not fge.index.duplicated().any() and len(fge) == 6
    assert fge.loc[("cifar100", "preresnet164"), "mean"] == 79.84 and fge.loc[("cifar10", "wrn28x10"), "mean"] == 96.36
    assert set(fge["source"]) == {"SWA paper, arXiv v1 (Table 1, quoting Garipov et al. 2018)"}
    table = aggregate(
        [
            {
                "dataset": "cifar100",
                "model": "vgg16",
                "method": "fge",
                "seed": 0,
                "budget": 200,
                "budget_scale": 1.0,
                "status": "finished",
                "results": {"fge_1": 74.0},
                "overrides": {},
                "data": TORCHVISION,
            }
        ],
        load_paper(),
    )
    assert len(table) == 1 and table.paper_source.iloc[0] == "" and "74.26 |" in render(table)

    readme = (PAPER_DIR / "fge_readme.csv").read_text()
    only_vgg = HEADER + 'cifar100,vgg16,200,fge_1,74.26,,"SWA paper, arXiv v1 (Table 1)"\n'
    fge = load_paper(_paper_dir(tmp_path, {"fge_readme.csv": readme, "fge_swa_paper.csv": only_vgg}))
    fge = fge.query("column == 'fge_1'").set_index("model")
    assert fge.loc["vgg16", "mean"] == 74.26 and fge.loc["preresnet164", "mean"] == 80.3 and len(fge) == 3


def test_pyramidnet_and_shake_shake_have_the_papers_125_budget_numbers():
    """SWA paper, arXiv v1, Table 1: the 1.25-budget SWA numbers of the two continuation rows."""
    paper = load_paper().set_index(["dataset", "model", "column"])
    assert tuple(paper.loc[("cifar100", "pyramidnet272", "swa_1.25"), ["budget", "mean", "std"]]) == (300, 83.93, 0.18)
    assert tuple(paper.loc[("cifar10", "shakeshake26_2x64d", "swa_1.25"), ["budget", "mean", "std"]]) == (
        1800,
        97.16,
        0.10,
    )


# --------------------------------------------------------------------------------------------------
# Notes belong to the SWA setting


def test_a_variants_note_stays_off_the_cells_shared_by_every_variant(tmp_path):
    """SGD, FGE and EMA cells are repeated under each SWA variant's row; the variant's note (swa.note)
    is the SWA cells' and the row's footnote, never theirs."""
    root = tmp_path / "runs"
    for seed in range(2):
        write_summary(root, "cifar10", "vgg16", "sgd", seed, {"sgd": 93.0})
        write_summary(root, "cifar10", "vgg16", "fge", seed, {"fge_1": 93.6})
        write_summary(root, "cifar10", "vgg16", "ema", seed, {"ema_1": 93.2})
        for variant, note in (("finetune", "fine-tuned from the SGD run"), ("plain", None)):
            write_summary(root / variant, "cifar10", "vgg16", "swa", seed, {"swa_1": 93.5}, variant=variant, note=note)
    table = build_table(root)
    parsed = pd.read_csv(pd.io.common.StringIO(render(table, "csv")), keep_default_na=False)
    notes = {(r.variant, r.column): r.note for r in parsed.itertuples()}
    assert notes == {
        (v, c): "fine-tuned from the SGD run" if (v, c) == ("finetune", "swa_1") else ""
        for v in ("finetune", "plain")
        for c in ("sgd", "fge_1", "swa_1", "ema_1")
    }
    markdown = render(table)
    labels = [line[0] for line in table_lines(markdown)[1:]]
    assert labels == ["VGG-16 (200) [finetune] †", "VGG-16 (200) [plain]"]
    assert markdown.count("† fine-tuned from the SGD run") == 1


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda s: s["results"].update(sgd=99.99), "sgd = 99.99, but metrics.jsonl recorded 93.1"),
        (lambda s: s["results"].update(sgd=-5), "sgd = -5 is not an accuracy in %"),
        (lambda s: s["results"].update(sgd=1000), "sgd = 1000 is not an accuracy in %"),
        (lambda s: s["results"].update(sgd=1e308), "is not an accuracy in %"),
        (lambda s: s.update(results_nll={"sgd": -1.0}), "results_nll sgd = -1.0 is not a test loss"),
        (lambda s: s.update(seed=5), "its seed is 5, config.yaml's 1"),
        (lambda s: s.update(method="swa"), "its method is 'swa', config.yaml's 'sgd'"),
        (lambda s: s.update(model="wrn28x10"), "its model is 'wrn28x10', config.yaml's 'vgg16'"),
        (lambda s: s["results"].update({"swa_1": 95.0}), "swa_1 is not a column this run reports (sgd)"),
        (lambda s: s["results"].update({"sgd_2": 95.0}), "not a table column"),
    ],
)
def test_an_edited_summary_is_not_counted_and_named(tmp_path, edit, message):
    """A summary is the run's own: an edit of any field the table reads is refused in one line."""
    root = tmp_path / "runs"
    for seed, value in enumerate((93.0, 93.1, 93.2)):
        write_summary(root, "cifar10", "vgg16", "sgd", seed, {"sgd": value})
    path = root / "cifar10/vgg16/sgd/seed1/summary.json"
    summary = json.loads(path.read_text())
    edit(summary)
    path.write_text(json.dumps(summary))
    counts, messages = _counts(root)
    assert counts == {"sgd": 2}
    assert len(messages) == 1 and f"{path}: skipped" in messages[0] and message in messages[0], messages
