"""Cycles counted in optimizer steps (fge.cycle_steps, swa.cycle_steps): a cycle scaled to a budget of a
few epochs is a fraction of an epoch. The rates and collection points against the step count, the
collections of real runs (FGE members at mid-cycle, SWA continuing the SGD run at each cycle end), a
resume inside an epoch that collects mid-pass bit-identical, the refusals, and the identities of runs
recorded before the keys existed."""

from __future__ import annotations

import pytest
from conftest import REPO, signal_when

from swa_bench.config import ConfigError, load_config
from swa_bench.protocol import resolve_protocol
from swa_bench.records import RunRecords, run_identity
from swa_bench.schedules import Cyclical, Triangular, cyclical_lr, triangular_lr
from swa_bench.stopping import Preempted, StopSignals
from swa_bench.training import run as trainer_module
from swa_bench.training import train_run

DIGITS = REPO / "configs/demo/digits.yaml"
FULL = REPO / "configs/cpu/preresnet20_ratio0.5.yaml"


def digits(method, **overrides):
    """The demo row, small: B = 14 epochs of 4 steps; the SGD run keeps its state after epoch 11."""
    return load_config(
        DIGITS,
        {"run.method": method, "data.train_subset": 100, "optim.batch_size": 32, "run.budget_scale": 0.7, **overrides},
    )


def test_triangular_and_cyclical_rates_count_steps_across_epoch_ends():
    steps = 7  # per epoch; a cycle of 4 steps ends inside epochs
    tri, cyc = Triangular(0.05, 0.01, 2, 8, cycle_steps=4), Cyclical(0.05, 0.0005, 1, 8, cycle_steps=4)
    for k in range(3 * steps):  # the k-th step (from 0) since epoch 8 began
        epoch, step = 8 + k // steps, k % steps
        assert tri.lr(epoch, step, steps) == pytest.approx(triangular_lr((k % 4) / 4, 0.05, 0.01), abs=1e-15)
        assert cyc.lr(epoch, step, steps) == pytest.approx(cyclical_lr(k + 1, 0.05, 0.0005, 4), abs=1e-15)
    assert tri.lr(8, 2, steps) == pytest.approx(0.01)  # mid-cycle: alpha2
    assert cyc.lr(8, 3, steps) == pytest.approx(0.0005)  # a cycle's last step: alpha2
    # Without cycle_steps, the record of a schedule is what it was before the key existed.
    assert "cycle_steps" not in Triangular(0.05, 0.01, 2, 8).to_dict()
    assert tri.to_dict()["cycle_steps"] == 4


def test_the_full_size_fge_protocol_collects_twenty_models_at_mid_cycle():
    proto = resolve_protocol(load_config(FULL, {"run.method": "fge"}))
    assert (proto.first_epoch, proto.epochs, proto.collect_steps) == (8, 10, (20, 40))
    steps = 391
    collected = [
        (e - 8) * steps + s for e in range(8, 10) for s in range(1, steps + 1) if proto.collects_at_step(e, s, steps)
    ]
    assert collected == list(range(20, 782, 40)) and len(collected) == 20
    assert not any(proto.collects_after(e) for e in range(8, 10))  # not also at the epochs' ends
    # At the step after each collection the rate is alpha2: the collected models sit at mid-cycle.
    assert all(proto.lr(8 + k // steps, k % steps, steps) == pytest.approx(0.01) for k in collected)
    assert proto.to_dict()["collect_steps"] == [20, 40]
    assert "collect_steps" not in resolve_protocol(load_config(FULL, {"run.method": "sgd"})).to_dict()


def test_a_continuation_with_a_cycle_in_steps_collects_at_each_cycle_end():
    cfg = load_config(
        FULL,
        {
            "run.method": "swa",
            "swa.start_from": "sgd_run",
            "swa.from_epoch": 8,
            "swa.start": None,
            "swa.lr_schedule": "cyclical",
            "swa.alpha1": 0.1,
            "swa.alpha2": 0.001,
            "swa.cycle_steps": 130,
            "swa.budgets": [1.0, 1.25],
        },
    )
    proto = resolve_protocol(cfg)
    assert (proto.first_epoch, proto.epochs, proto.collect_steps) == (8, 13, (130, 130))
    assert proto.lr(8, 129, 391) == pytest.approx(0.001) and proto.lr(8, 130, 391) == proto.lr(8, 0, 391)  # a new cycle
    assert sum(proto.collects_at_step(e, s, 391) for e in range(8, 13) for s in range(1, 392)) == 5 * 391 // 130


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"run.method": "fge", "fge.cycle_steps": 41}, "fge.cycle_steps: must be an even number of steps"),
        ({"run.method": "fge", "fge.cycle_steps": 0}, "fge.cycle_steps: must be an even number of steps"),
        ({"run.method": "swa", "swa.cycle_steps": 100}, "swa.cycle_steps: only for runs continuing the SGD run"),
        (
            {
                "run.method": "swa",
                "swa.start_from": "sgd_run",
                "swa.start": None,
                "swa.budgets": [1.25],
                "swa.cycle_steps": -3,
            },
            "swa.cycle_steps: must be positive",
        ),
    ],
)
def test_bad_cycles_in_steps_are_one_line(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(FULL, overrides)


def test_identities_recorded_before_the_keys_existed_stay_valid():
    """A config written before cycle_steps existed (no such key) and today's (the key unset) are one run."""
    for method in ("swa", "fge"):
        today = load_config(DIGITS, {"run.method": method}).to_dict()
        before = {
            section: {k: v for k, v in values.items() if k != "cycle_steps"} if isinstance(values, dict) else values
            for section, values in today.items()
        }
        assert run_identity(today) == run_identity(before)
        changed = load_config(FULL, {"run.method": "fge", "fge.cycle_steps": 38}).to_dict()
        assert run_identity(changed) != run_identity(load_config(FULL, {"run.method": "fge"}).to_dict())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An SGD run and its FGE run with a cycle of 4 steps (6 x 0.7, kept even), uninterrupted."""
    out = tmp_path_factory.mktemp("steps")
    train_run(digits("sgd"), out / "sgd", progress=False)
    fge = train_run(digits("fge", **{"fge.cycle_steps": 6}), out / "fge", progress=False, sgd_run_dir=out / "sgd")
    return out, fge


@pytest.mark.integration
def test_fge_collects_a_model_at_each_mid_cycle_inside_the_epochs(runs):
    out, fge = runs
    members = fge.summary["fge_members"]
    # From epoch 11 (4 steps per epoch, 12 steps to the budget): after steps 2, 6 and 10.
    assert [(m["epoch"], m["step"]) for m in members] == [(12, 2), (13, 6), (14, 10)]
    assert sorted(p.name for p in (out / "fge" / "checkpoints").glob("fge_member*.pt")) == [
        "fge_member1.pt",
        "fge_member2.pt",
        "fge_member3.pt",
    ]
    rows = RunRecords(out / "fge").read_metrics()
    assert rows[-1]["fge_count"] == 3 and rows[-1]["fge_member_acc"] == members[-1]["acc"]


@pytest.mark.integration
def test_a_stop_after_a_mid_pass_collection_resumes_bit_identical(runs, tmp_path, monkeypatch):
    out, fge = runs
    cfg = digits("fge", **{"fge.cycle_steps": 6})
    monkeypatch.setattr(trainer_module, "StopSignals", signal_when(lambda reads: reads >= 3))  # step 3 of epoch 12
    with pytest.raises(Preempted):
        train_run(cfg, tmp_path / "fge", progress=False, sgd_run_dir=out / "sgd")
    state = RunRecords(tmp_path / "fge").load_checkpoint("last")
    assert state["epoch"] == 11 and state["partial"]["step"] == 3 and state["ensemble"]["count"] == 1
    monkeypatch.setattr(trainer_module, "StopSignals", StopSignals)
    again = train_run(cfg, tmp_path / "fge", progress=False, sgd_run_dir=out / "sgd")
    assert again.summary["results"] == fge.summary["results"]
    assert again.summary["fge_members"] == fge.summary["fge_members"]
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(RunRecords(tmp_path / "fge").read_metrics()) == strip(RunRecords(out / "fge").read_metrics())


@pytest.mark.integration
def test_swa_continuing_the_sgd_state_averages_at_each_cycle_end(runs, tmp_path):
    out, _ = runs
    cfg = digits(
        "swa",
        **{
            "swa.start_from": "sgd_run",
            "swa.from_epoch": 16,
            "swa.start": None,
            "swa.lr_schedule": "cyclical",
            "swa.alpha1": 0.02,
            "swa.alpha2": 0.002,
            "swa.cycle_steps": 5,
            "swa.budgets": [1.0, 1.25],
        },
    )
    done = train_run(cfg, tmp_path / "swa", progress=False, sgd_run_dir=out / "sgd")
    rows = {r["epoch"]: r for r in RunRecords(tmp_path / "swa").read_metrics()}
    # From epoch 11, a cycle of 4 steps (5 x 0.7): 3 collections by epoch 14 (1 B), 7 by epoch 18 (1.25 B).
    assert rows[14]["swa_count"] == 3 and rows[18]["swa_count"] == 7
    assert set(done.summary["results"]) == {"swa_1", "swa_1.25"}


def test_a_cycle_in_steps_longer_than_the_room_before_the_first_report_is_one_line(runs, tmp_path):
    out, _ = runs
    cfg = digits("fge", **{"fge.cycle_steps": 40})  # 28 steps under the scale: mid-cycle after 14, 12 available
    with pytest.raises(
        ConfigError,
        match="fge.cycle_steps: the first model is collected after 14 steps, but the first report point comes after 12",
    ):
        train_run(cfg, tmp_path / "fge", progress=False, sgd_run_dir=out / "sgd")
    assert not (tmp_path / "fge").exists()
