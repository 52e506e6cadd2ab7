"""Several SWA settings of one row against the same SGD runs (`swa.variant`): run directories, the
grid, resuming, the table (shared SGD column, paired differences, test loss) and the curves."""

import json
import math
import statistics

import pytest
import yaml
from click.testing import CliRunner
from conftest import REPO

from swa_bench.cli import main
from swa_bench.config import ConfigError, load_config
from swa_bench.grid.plan import build_plan
from swa_bench.records import RunMismatchError, RunRecords, run_dir_of
from swa_bench.tables import aggregate, load_paper, render

DIGITS = REPO / "configs/demo/digits.yaml"


def write_variants(root, lrs=(0.02, 0.04)):
    """ROOT/mini/lr<k>.yaml: the digits demo at two SWA rates, one variant each."""
    raw = yaml.safe_load(DIGITS.read_text())
    (root / "mini").mkdir(parents=True)
    for lr in lrs:
        raw["swa"].update(lr=lr, variant=f"lr{lr:g}")
        (root / "mini" / f"lr{lr:g}.yaml").write_text(yaml.safe_dump(raw))
    return root


def test_variant_gets_its_own_swa_folder_and_shares_the_sgd_folder(tmp_path):
    cfg = load_config(DIGITS, {"swa.variant": "high-lr", "run.method": "swa", "run.seed": 2})
    assert run_dir_of(tmp_path, cfg) == tmp_path / "digits/digits_cnn/swa-high-lr/seed2-subset300"
    assert run_dir_of(tmp_path, cfg, "sgd") == tmp_path / "digits/digits_cnn/sgd/seed2-subset300"
    plain = load_config(DIGITS, {"run.method": "swa"})
    assert run_dir_of(tmp_path, plain) == tmp_path / "digits/digits_cnn/swa/seed0-subset300"


@pytest.mark.parametrize("bad", ["", "../up", "a/b", ".hidden", "x" * 41, "sp ace"])
def test_variant_must_be_a_folder_name(bad):
    with pytest.raises(ConfigError, match="swa.variant: must be a short folder name"):
        load_config(DIGITS, {"swa.variant": bad})


def test_grid_plans_each_sgd_run_once(tmp_path):
    configs = write_variants(tmp_path / "configs")
    plan = build_plan("mini", configs, tmp_path / "out", seeds=2)
    names = [spec.name for spec in plan.runs]
    assert names == [
        "digits/digits_cnn/sgd/seed0-subset300",
        "digits/digits_cnn/sgd/seed1-subset300",
        "digits/digits_cnn/swa-lr0.02/seed0-subset300",
        "digits/digits_cnn/swa-lr0.02/seed1-subset300",
        "digits/digits_cnn/ema/seed0-subset300",
        "digits/digits_cnn/ema/seed1-subset300",
        "digits/digits_cnn/swa-lr0.04/seed0-subset300",
        "digits/digits_cnn/swa-lr0.04/seed1-subset300",
        "digits/digits_cnn/fge/seed0-subset300",
        "digits/digits_cnn/fge/seed1-subset300",
    ]  # the FGE runs once too (no swa key changes them), after the runs they continue


def test_sgd_run_accepts_any_swa_setting_but_swa_runs_do_not(tmp_path):
    sgd = {"config": load_config(DIGITS, {"swa.lr": 0.02}).to_dict()}
    records = RunRecords(tmp_path / "sgd")
    records.claim(sgd)
    other = {"config": load_config(DIGITS, {"swa.lr": 0.04, "swa.variant": "x"}).to_dict()}
    assert records.claim(other)  # the same SGD run: no swa key changes it
    changed = {"config": load_config(DIGITS, {"optim.lr_init": 0.1}).to_dict()}
    with pytest.raises(RunMismatchError, match="optim.lr_init"):
        records.claim(changed)
    swa = RunRecords(tmp_path / "swa")
    swa.claim({"config": load_config(DIGITS, {"run.method": "swa", "swa.lr": 0.02}).to_dict()})
    with pytest.raises(RunMismatchError, match="swa.lr"):
        swa.claim({"config": load_config(DIGITS, {"run.method": "swa", "swa.lr": 0.04}).to_dict()})


@pytest.fixture(scope="module")
def variant_grid(tmp_path_factory):
    root = tmp_path_factory.mktemp("variants")
    configs = write_variants(root / "configs")
    out = root / "out"
    result = CliRunner().invoke(
        main,
        [
            "grid",
            "--table",
            "mini",
            "--configs",
            str(configs),
            "--seeds",
            "2",
            "--jobs",
            "2",
            "--budget-scale",
            "0.25",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    return out


def summaries(out):
    return [{**json.loads(p.read_text()), "folder": p.parent.parent.name} for p in sorted(out.rglob("summary.json"))]


def test_grid_trains_two_variants_against_one_set_of_sgd_runs(variant_grid):
    folders = sorted(p.name for p in (variant_grid / "digits/digits_cnn").iterdir())
    assert folders == ["ema", "fge", "sgd", "swa-lr0.02", "swa-lr0.04"]  # SGD, EMA and FGE runs shared by the variants
    found = summaries(variant_grid)
    assert len(found) == 10
    for s in found:
        assert s["variant"] == (None if s["method"] != "swa" else s["folder"].removeprefix("swa-"))
        assert set(s["results_nll"]) == set(s["results"]) and all(v > 0 for v in s["results_nll"].values())
        assert 0 <= s["final_train_acc"] <= 100


def test_table_gives_each_variant_a_row_with_the_shared_sgd_column(variant_grid):
    found = summaries(variant_grid)
    table = aggregate(found, load_paper())
    assert set(table.variant) == {"lr0.02", "lr0.04"}
    sgd = {s["seed"]: s["results"]["sgd"] for s in found if s["method"] == "sgd"}
    for variant, part in table.groupby("variant"):
        cells = part.set_index("column")
        assert cells.loc["sgd", "mean"] == pytest.approx(statistics.mean(sgd.values()))
        assert cells.loc["sgd", "n"] == 2
        swa = {s["seed"]: s for s in found if s.get("variant") == variant}
        diffs = [swa[k]["results"]["swa_1.5"] - sgd[k] for k in sorted(sgd)]
        assert cells.loc["swa_1.5", "vs_sgd_mean"] == pytest.approx(statistics.mean(diffs))
        assert cells.loc["swa_1.5", "vs_sgd_std"] == pytest.approx(statistics.stdev(diffs))
        nll = [swa[k]["results_nll"]["swa_1.5"] for k in sorted(swa)]
        assert cells.loc["swa_1.5", "nll_mean"] == pytest.approx(statistics.mean(nll))
        train = [s["final_train_acc"] for s in found if s["method"] == "sgd"]
        assert cells.loc["sgd", "train_acc_mean"] == pytest.approx(statistics.mean(train))
        assert math.isnan(cells.loc["swa_1", "train_acc_mean"])
    markdown = render(table, "markdown", detail=True)
    assert "[lr0.02]" in markdown and "[lr0.04]" in markdown
    assert "; NLL " in markdown and "; vs SGD " in markdown and "; train acc " in markdown
    assert "; NLL " not in render(table, "markdown")


def test_table_command_detail_and_csv(variant_grid):
    result = CliRunner().invoke(main, ["table", str(variant_grid), "--detail"])
    assert result.exit_code == 0, result.output
    assert "vs SGD" in result.output
    csv = CliRunner().invoke(main, ["table", str(variant_grid), "--format", "csv"]).output
    header = csv.splitlines()[0].split(",")
    assert {"variant", "nll_mean", "vs_sgd_mean", "vs_sgd_std", "train_acc_mean"} <= set(header)


def test_curves_draw_each_variant(variant_grid, tmp_path):
    runs = [str(p) for p in sorted((variant_grid / "digits/digits_cnn").glob("*/seed*"))]
    result = CliRunner().invoke(main, ["plot", "curves", *runs, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    import pandas as pd

    data = pd.read_csv(tmp_path / "curves.csv")
    assert set(data[data.series == "swa"]["label"]) == {
        "Digits 8x8 (demo) digits CNN [lr0.02]",
        "Digits 8x8 (demo) digits CNN [lr0.04]",
    }
    assert set(data[data.series == "sgd"]["label"]) == {"Digits 8x8 (demo) digits CNN"}
