"""`swa-bench plot table`: the table's paired differences to SGD beside the paper's, as a figure."""

import statistics

import pandas as pd
import pytest
from click.testing import CliRunner
from test_table import FOLDER, write_summary  # the fake summaries of the table tests

from swa_bench.cli import main
from swa_bench.figures.table_picture import plot_table

SGD = [78.2, 78.6, 78.4]
SWA = [79.6, 79.9, 80.0]  # swa_1 - sgd: 1.4, 1.3, 1.6


@pytest.fixture
def runs(tmp_path):
    """A paper row (PreResNet-164 on CIFAR-100: SGD, FGE and SWA in the paper, EMA beyond it) and a row
    the paper does not have (a small run on an ImageFolder copy)."""
    root = tmp_path / "runs"
    for seed, (sgd, swa) in enumerate(zip(SGD, SWA)):
        write_summary(root, "cifar100", "preresnet164", "sgd", seed, {"sgd": sgd})
        write_summary(root, "cifar100", "preresnet164", "swa", seed, {"swa_1": swa, "swa_1.5": swa + 0.2})
        write_summary(root, "cifar100", "preresnet164", "fge", seed, {"fge_1": sgd + 1.0})
        write_summary(root, "cifar100", "preresnet164", "ema", seed, {"ema_1": sgd + 0.5})
        write_summary(root, "cifar10", "preresnet20", "sgd", seed, {"sgd": 55.0}, data=FOLDER, subset=1000)
        write_summary(root, "cifar10", "preresnet20", "swa", seed, {"swa_1": 55.0 + seed}, data=FOLDER, subset=1000)
    return root


def test_figure_holds_the_paired_and_the_papers_differences(runs, tmp_path):
    written = plot_table(runs, tmp_path / "out")
    assert [p.name for p in written] == ["table_vs_sgd.png", "table_vs_sgd.pdf", "table_vs_sgd.csv"]
    assert all(p.stat().st_size > 0 for p in written)
    data = pd.read_csv(written[-1], keep_default_na=False, na_values=[""])
    paper = data[data.dataset == "cifar100"].set_index("column")
    assert list(paper.index) == ["fge_1", "swa_1", "swa_1.5", "ema_1"]  # the table's column order, SGD left out
    diffs = [swa - sgd for swa, sgd in zip(SWA, SGD)]
    assert paper.loc["swa_1", "vs_sgd_mean"] == pytest.approx(statistics.mean(diffs), abs=1e-5)
    assert paper.loc["swa_1", "vs_sgd_std"] == pytest.approx(statistics.stdev(diffs), abs=1e-5)
    assert paper.loc["swa_1", "vs_sgd_n"] == 3
    assert paper.loc["swa_1", "paper_diff"] == pytest.approx(79.77 - 78.49)  # results/paper/cifar.csv
    assert paper.loc["swa_1.5", "paper_diff"] == pytest.approx(80.35 - 78.49)
    assert pd.isna(paper.loc["swa_1", "paper_source"])
    # FGE: the SWA paper's own number (arXiv v1), drawn as the paper's, not the FGE code README's.
    assert paper.loc["fge_1", "paper_diff"] == pytest.approx(79.84 - 78.49)
    assert pd.isna(paper.loc["fge_1", "paper_source"])
    assert pd.isna(paper.loc["ema_1", "paper_diff"]) and paper.loc["ema_1", "vs_sgd_mean"] == pytest.approx(0.5)
    mini = data[data.dataset == "cifar10"].iloc[0]
    assert mini["row"] == "PreResNet-20, B = 200 epochs" and mini["setting"] == "ImageFolder copy; 1000 train images"
    assert mini["vs_sgd_mean"] == pytest.approx(1.0) and pd.isna(mini["paper_diff"])


def test_a_number_from_another_source_names_it(runs, tmp_path):
    """Without the paper's own FGE file, FGE's paper number is the FGE code README's: drawn as another
    marker, its source named."""
    import shutil

    from swa_bench.figures.table_picture import table_differences
    from swa_bench.shipped import PAPER_DIR

    papers = tmp_path / "paper"
    papers.mkdir()
    for name in ("cifar.csv", "fge_readme.csv"):
        shutil.copy(PAPER_DIR / name, papers / name)
    lines = table_differences(runs, papers).set_index(["dataset", "column"])
    assert lines.loc[("cifar100", "fge_1"), "paper_diff"] == pytest.approx(80.3 - 78.49)
    assert lines.loc[("cifar100", "fge_1"), "paper_source"].startswith("FGE code README")
    assert lines.loc[("cifar100", "swa_1"), "paper_source"] == ""


def test_fge_and_ema_are_drawn_once_for_all_swa_variants(tmp_path):
    """The table gives each SWA variant's row a copy of the FGE and EMA cells (their runs have no
    variant); the picture draws them once, under the row without a variant."""
    import shutil

    root = tmp_path / "runs"
    for seed in range(2):
        write_summary(root, "cifar10", "preresnet20", "sgd", seed, {"sgd": 55.0}, data=FOLDER, subset=1000)
        write_summary(root, "cifar10", "preresnet20", "fge", seed, {"fge_1": 55.5}, data=FOLDER, subset=1000)
        write_summary(root, "cifar10", "preresnet20", "ema", seed, {"ema_1": 55.2}, data=FOLDER, subset=1000)
        for variant, gain in (("a", 1.0), ("b", -1.0)):
            run = write_summary(
                root,
                "cifar10",
                "preresnet20",
                "swa",
                seed,
                {"swa_1": 55.0 + gain},
                data=FOLDER,
                subset=1000,
                variant=variant,
            )
            shutil.move(run, run.parent.parent / f"swa-{variant}" / run.name)
    data = pd.read_csv(plot_table(root, tmp_path / "out")[-1], keep_default_na=False, na_values=[""])
    assert sorted(data.column) == ["ema_1", "fge_1", "swa_1", "swa_1"]
    assert set(data[data.column.isin(["fge_1", "ema_1"])]["row"]) == {"PreResNet-20, B = 200 epochs"}
    assert dict(zip(data[data.column == "swa_1"]["row"], data[data.column == "swa_1"]["vs_sgd_mean"])) == {
        "PreResNet-20, B = 200 epochs, SWA setting a": pytest.approx(1.0),
        "PreResNet-20, B = 200 epochs, SWA setting b": pytest.approx(-1.0),
    }
    assert data[data.column == "fge_1"]["vs_sgd_mean"].iloc[0] == pytest.approx(0.5)


def test_cli_draws_a_runs_folder_and_refuses_an_empty_one(runs, tmp_path):
    result = CliRunner().invoke(main, ["plot", "table", str(runs), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1].endswith("table_vs_sgd.csv")
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(main, ["plot", "table", str(empty), "--out", str(tmp_path / "none")])
    assert result.exit_code == 2
    assert result.output == f"error: {empty}: no finished runs yet\n"
    assert not (tmp_path / "none").exists()


def test_sgd_runs_alone_are_refused_in_words(tmp_path):
    write_summary(tmp_path, "cifar100", "preresnet164", "sgd", 0, {"sgd": 78.0})
    with pytest.raises(ValueError, match="only SGD"):
        plot_table(tmp_path, tmp_path / "out")
