import json
import statistics

import pandas as pd
import pytest
from click.testing import CliRunner

from swa_bench.cli import main
from swa_bench.tables import CSV_COLUMNS, PAPER_SETTING, aggregate, build_table, load_paper, render, setting_label

TORCHVISION = {"format": "torchvision", "path": "/data/cifar-10-batches-py", "description": "cifar10 pickle batches"}
FOLDER = {"format": "imagefolder", "path": "/data/cifar10-jpg", "description": "ImageFolder copy"}


def write_summary(root, dataset, model, method, seed, results, data=TORCHVISION, scale=1.0, subset=None,
                  overrides=None, status="finished"):
    run = root / dataset / model / method / f"seed{seed}"
    run.mkdir(parents=True, exist_ok=True)
    summary = {"status": status, "dataset": dataset, "model": model, "method": method, "seed": seed,
               "budget": 200, "budget_scale": scale, "train_subset": subset, "data": data,
               "overrides": overrides or {}, "results": results}
    (run / "summary.json").write_text(json.dumps(summary))
    return run


@pytest.fixture
def runs(tmp_path):
    root = tmp_path / "runs"
    for seed, (sgd, s1, s125, s15) in enumerate([(93.1, 93.5, 93.6, 93.7), (93.3, 93.7, 93.9, 93.8),
                                                (93.2, 93.4, 93.5, 93.9)]):
        write_summary(root, "cifar10", "vgg16", "sgd", seed, {"sgd": sgd})
        write_summary(root, "cifar10", "vgg16", "swa", seed, {"swa_1": s1, "swa_1.25": s125, "swa_1.5": s15})
    # A quick run on the JPEG copy at a budget scale: must stay out of the paper row.
    write_summary(root, "cifar10", "vgg16", "swa", 7, {"swa_1": 50.0, "swa_1.25": 51.0, "swa_1.5": 52.0},
                  data=FOLDER, scale=0.02, subset=5000)
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
    summary = {"data": TORCHVISION, "budget_scale": 1.0, "train_subset": None,
               "overrides": {"run.device": "cuda", "data.workers": 8, "run.seed": 2, "optim.lr_init": 0.1}}
    assert setting_label(summary) == "optim.lr_init=0.1"
    summary["overrides"] = {"run.device": "cuda", "data.path": "/x", "run.method": "swa"}
    assert setting_label(summary) == PAPER_SETTING


def test_render_formats(runs):
    with pytest.warns(UserWarning):
        table = build_table(runs)
    markdown = render(table, "markdown")
    assert "## CIFAR-10" in markdown and "VGG-16 (200)" in markdown
    assert "93.20 ± 0.10 (n=3); paper 93.25 ± 0.16; Δ -0.05" in markdown
    assert "SWA 1.25 budgets" in markdown and "SWA 1 budget" in markdown
    csv = render(table, "csv")
    parsed = pd.read_csv(pd.io.common.StringIO(csv))
    assert list(parsed.columns) == CSV_COLUMNS
    assert set(parsed.column) == {"sgd", "swa_1", "swa_1.25", "swa_1.5"}
    assert "\\begin{tabular}" in render(table, "latex")


def test_rows_without_paper_numbers_show_a_dash(tmp_path):
    write_summary(tmp_path, "digits", "digits_cnn", "sgd", 0, {"sgd": 97.0},
                  data={"format": "sklearn", "path": "sklearn", "description": "scikit-learn 8x8 digits"})
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
    assert "95.00 (n=1); paper 95.03 ± 0.05; Δ -0.03" in render(table)


def test_old_records_without_test_losses_still_tabulate(runs):
    """Summaries written before results_nll and final_train_acc existed: their cells show '–' for those."""
    with pytest.warns(UserWarning):
        table = build_table(runs)
    assert table.nll_mean.isna().all() and table.train_acc_mean.isna().all()
    assert "NLL –" in render(table, detail=True)
