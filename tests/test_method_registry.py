"""The method registry (swa_bench/methods): a method defined in this file alone, with its own config
section, protocol and tracker, trains, stops and resumes to the uninterrupted result, tables and plots
through the package's unchanged code; and the registry refuses what would collide."""

import dataclasses
import json
from dataclasses import dataclass

import pytest
from click.testing import CliRunner
from conftest import REPO

from swa_bench.cli import main
from swa_bench.columns import Column
from swa_bench.config import ConfigError, load_config
from swa_bench.methods import Method, Series, get_method, method_names, register_method, unregister_method
from swa_bench.methods.sgd import iterate_protocol
from swa_bench.methods.tracking import AverageTracker
from swa_bench.protocol import resolve_protocol
from swa_bench.records import RunRecords, run_identity
from swa_bench.stopping import Preempted

DEMO = REPO / "configs/demo/digits.yaml"


@dataclass(frozen=True)
class TailConfig:
    epochs: int = 3  # the last epochs of the SGD run whose end weights are averaged


class _StoppingTracker(AverageTracker):
    """The tail's tracker; `stop_at` (epoch, step) makes the run stop there as on SIGTERM, once."""

    stop_at = None

    def after_step(self, epoch: int, step: int) -> None:
        if (epoch, step) == type(self).stop_at:
            type(self).stop_at = None
            self.ctx.signals.requested, self.ctx.signals.signal_name = True, "SIGTERM"


class Tail(Method):
    """The equal average of the SGD iterate after each of the budget's last `tail.epochs` epochs, BN
    recomputed: a method the package does not have."""

    name = "tail"
    label = "Tail"
    order = 10
    beyond_paper = "the equal average of the SGD run's last epochs"
    reports = "weights"
    section, section_type = "tail", TailConfig
    checkpoint_key = "average"
    series = (Series("tail", "tail_test_acc", "tail average (BN recomputed)", "#2c3e50", marked=True),)

    def check_section(self, cfg, c) -> None:
        c.positive("tail.epochs", cfg.section("tail").epochs)
        c.at_most("tail.epochs", cfg.section("tail").epochs, cfg.schedule.budget)

    def protocol(self, cfg):
        proto = iterate_protocol(cfg, self.name, Column.at_budget(self.name, 1).name)
        first = max(1, proto.epochs - cfg.section("tail").epochs + 1)
        return dataclasses.replace(proto, first_collection=first, collect_every=1)

    def tracker(self, ctx):
        return _StoppingTracker(ctx)


@pytest.fixture
def tail():
    register_method(Tail)
    yield get_method("tail")
    unregister_method("tail")


def _train(out, *args):
    result = CliRunner().invoke(
        main,
        [
            "train",
            "--config",
            str(DEMO),
            "--method",
            "tail",
            "--out",
            str(out),
            "--quiet",
            "--budget-scale",
            "0.5",
            *args,
        ],
    )
    return result


RUN = "digits/digits_cnn/tail/seed0-scale0.5-subset300"


def test_a_method_registered_in_a_test_file_configures_and_keeps_the_others_identities(tail):
    assert "tail" in method_names() and Column("tail_1").title() == "Tail 1 B" and Column("tail_1").beyond_paper
    cfg = load_config(DEMO, {"run.method": "tail", "tail.epochs": 2})
    assert cfg.section("tail").epochs == 2 and cfg.to_dict()["tail"] == {"epochs": 2}
    proto = resolve_protocol(cfg)
    assert (proto.first_collection, proto.epochs, proto.report_points) == (19, 20, {"tail_1": 20})
    with pytest.raises(ConfigError, match=r"digits.yaml: tail.epochs: must be positive, got 0"):
        load_config(DEMO, {"run.method": "tail", "tail.epochs": 0})
    with pytest.raises(ConfigError, match=r"tail.nope: unknown key"):
        load_config(DEMO, {"tail.nope": 1})
    # Another method's runs do not depend on the new section: an SGD run's identity is the one it had.
    sgd = load_config(DEMO, {"run.method": "sgd"})
    unregister_method("tail")
    before = run_identity(load_config(DEMO, {"run.method": "sgd"}).to_dict())
    register_method(Tail)
    assert run_identity(sgd.to_dict()) == before


def test_a_registered_method_trains_resumes_tables_and_plots(tail, tmp_path):
    whole = _train(tmp_path / "whole")
    assert whole.exit_code == 0, whole.output
    # The same run stopped within epoch 3 (as on SIGTERM), then the same command again.
    _StoppingTracker.stop_at = (2, 1)
    stopped = _train(tmp_path / "stopped")
    assert isinstance(stopped.exception, Preempted) or stopped.exit_code == 75, stopped.output
    resumed = _train(tmp_path / "stopped")
    assert resumed.exit_code == 0, resumed.output

    def rows(out):
        return [{k: v for k, v in r.items() if k != "seconds"} for r in RunRecords(out / RUN).read_metrics()]

    assert rows(tmp_path / "stopped") == rows(tmp_path / "whole")
    summary = RunRecords(tmp_path / "stopped" / RUN).read_summary()
    last = RunRecords(tmp_path / "stopped" / RUN).read_metrics()[-1]
    assert summary["method"] == "tail" and summary["results"] == {"tail_1": last["tail_test_acc"]}
    assert last["tail_count"] == 3 and (tmp_path / "stopped" / RUN / "checkpoints/tail_1.pt").is_file()

    # Its SGD run beside it, then the table pairs the new column with SGD, and the curves draw it.
    sgd = CliRunner().invoke(
        main, ["train", "--config", str(DEMO), "--method", "sgd", "--out", str(tmp_path / "whole"), "--quiet",
               "--budget-scale", "0.5"]
    )  # fmt: skip
    assert sgd.exit_code == 0, sgd.output
    table = CliRunner().invoke(main, ["table", str(tmp_path / "whole"), "--format", "csv"])
    assert table.exit_code == 0, table.output
    lines = [line for line in table.output.splitlines() if ",tail_1," in line]
    assert len(lines) == 1 and f"{summary['results']['tail_1']:.2f}"[:4] in lines[0]
    curves = CliRunner().invoke(
        main, ["plot", "curves", str(tmp_path / "whole" / RUN), str(tmp_path / "whole" / RUN.replace("tail", "sgd")),
               "--out", str(tmp_path / "fig"), "--series", "tail", "--series", "sgd"]
    )  # fmt: skip
    assert curves.exit_code == 0, curves.output
    drawn = (tmp_path / "fig" / "curves.csv").read_text()
    assert "tail" in drawn and "sgd" in drawn


def test_the_registry_refuses_a_method_that_would_collide(tail):
    class Again(Tail):
        pass

    class Clash(Tail):
        name = "other"
        section = "tail"

    class Bad(Tail):
        name = "has_underscore"
        section = None
        section_type = None

    with pytest.raises(ValueError, match="registered already"):
        register_method(Again)
    with pytest.raises(ValueError, match="belongs to another method"):
        register_method(Clash)
    with pytest.raises(ValueError, match="lowercase letters and digits"):
        register_method(Bad)
    assert json.dumps(method_names()) == json.dumps(["sgd", "fge", "swa", "ema", "tail"])
