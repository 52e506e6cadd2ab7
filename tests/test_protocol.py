"""The protocol a config implies (epochs, report points, who collects and when) and the column names
the records use."""

import pytest
from conftest import REPO

from swa_bench.columns import Column
from swa_bench.config import load_config
from swa_bench.protocol import resolve_protocol, scale_epochs


@pytest.mark.parametrize(
    "name,method,reports,prefix,title",
    [
        ("sgd", "sgd", "iterate", "test_", "SGD"),
        ("swa_1.25", "swa", "weights", "swa_test_", "SWA 1.25 B"),
        ("ema_1", "ema", "weights", "ema_test_", "EMA 1 B"),
        ("swa_10ep", "swa", "weights", "swa_test_", "SWA 10 epochs"),
        ("swa_1ep", "swa", "weights", "swa_test_", "SWA 1 epoch"),
        ("fge_1", "fge", "ensemble", "fge_test_", "FGE 1 B"),
    ],
)
def test_a_column_name_says_what_it_reports(name, method, reports, prefix, title):
    column = Column(name)
    assert (column.method, column.reports, column.metrics_prefix, column.title()) == (method, reports, prefix, title)
    assert bool(column.beyond_paper) == (method == "ema")


def test_columns_sort_sgd_then_swa_then_ema_by_point():
    names = ["ema_1", "swa_1.5", "sgd", "swa_1", "swa_1.25"]
    assert sorted(names, key=lambda n: Column(n).order()) == ["sgd", "swa_1", "swa_1.25", "swa_1.5", "ema_1"]
    assert Column.at_budget("swa", 1.25).name == "swa_1.25" and Column.at_epochs("swa", 5).name == "swa_5ep"


def test_budgets_sort_before_epochs_whatever_the_input_order():
    """One budget ("swa_1") and one epoch ("swa_1ep") share a number: they must not tie."""
    expected = ["sgd", "swa_1", "swa_1.5", "swa_1ep", "swa_2ep"]
    for names in (expected, expected[::-1], ["swa_1ep", "swa_2ep", "swa_1", "sgd", "swa_1.5"]):
        assert sorted(names, key=lambda n: Column(n).order()) == expected


def test_budget_scale_rounds_half_up_and_keeps_one_epoch():
    assert scale_epochs(150 * 1.25, 1.0) == 188 and scale_epochs(200, 0.001) == 1 and scale_epochs(300, 0.02) == 6


@pytest.mark.parametrize(
    "config,method,epochs,points",
    [
        ("cifar10/vgg16", "sgd", 200, {"sgd": 200}),
        ("cifar10/vgg16", "swa", 300, {"swa_1": 200, "swa_1.25": 250, "swa_1.5": 300}),
        ("cifar10/vgg16", "ema", 200, {"ema_1": 200}),
        ("cifar100/preresnet164", "swa", 225, {"swa_1": 150, "swa_1.25": 188, "swa_1.5": 225}),
        ("imagenet/resnet50", "sgd", 0, {"sgd": 0}),
        ("imagenet/resnet50", "swa", 10, {"swa_5ep": 5, "swa_10ep": 10}),
    ],
)
def test_rows_report_at_the_paper_points(config, method, epochs, points):
    proto = resolve_protocol(load_config(REPO / f"configs/{config}.yaml", {"run.method": method}))
    assert proto.epochs == epochs and proto.report_points == points


def test_swa_collects_every_c_epochs_from_swa_start_and_evaluates_the_report_points():
    proto = resolve_protocol(load_config(REPO / "configs/cifar10/vgg16.yaml", {"run.method": "swa"}))
    collected = [e + 1 for e in range(proto.epochs) if proto.collects_after(e)]
    assert collected[0] == 161 and collected == list(range(161, 301))
    evaluated = {e + 1 for e in range(proto.epochs) if proto.evaluates_after(e)}
    assert {1, 5, 200, 250, 300} <= evaluated and 251 not in evaluated
