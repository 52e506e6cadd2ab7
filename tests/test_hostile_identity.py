"""No number that is not the run's own (issue 31): a continuation starts only from its own SGD run's
state (A), weights files carry their run's identity and are checked wherever they are read (B), the
landscapes pair only an averaged run with the SGD run of its own seed and protocol (C), and the
experiment driver's and `plot table`'s other failures are one line naming the cause (D).

Every refusal is exit 2 with one `error:` line naming the file and what is wrong, no traceback, and
nothing recorded changed or left behind."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml
from click.testing import CliRunner
from conftest import REPO, signal_when

from swa_bench.cli import main
from swa_bench.record_files import read_checkpoint, torch_bytes
from swa_bench.records import RunRecords
from swa_bench.stopping import StopSignals
from swa_bench.training import run as trainer_module

pytestmark = pytest.mark.integration

DEMO = REPO / "configs/demo/digits.yaml"
MLP = REPO / "configs/demo/digits_mlp.yaml"
# B = 14 epochs of 4 steps; the SGD run keeps its state after epoch 11, FGE collects after 12 and 14.
SMALL = ["--set", "data.train_subset=100", "--set", "optim.batch_size=32", "--quiet"]
SCALE = ["--budget-scale", "0.7"]
# An SWA run that continues the SGD run's last checkpoint (epoch B).
CONTINUE = ["--set", "swa.start_from=sgd_run", "--set", "swa.start=null", "--set", "swa.budgets=[1.25,1.5]"]


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def train(out, method, *extra, seed=0, config=DEMO, scale=SCALE):
    return cli("train", "--config", config, "--method", method, "--seed", seed, "--out", out, *SMALL, *scale, *extra)


def run_dir(out, method, seed=0, model="digits_cnn", scale="0.7"):
    return Path(out) / f"digits/{model}/{method}/seed{seed}-scale{scale}-subset100"


def assert_one_line_error(result, *needles):
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.output and len(errors[0]) < 700, result.output
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def snapshot(path: Path) -> dict:
    return {p.relative_to(path): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file() and p.name != ".lock"}


def rows(path):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in RunRecords(path).read_metrics()]


def without_identity(source: Path, target: Path) -> None:
    """`source` as a file written before files carried identities: no identity, index or step, no sidecar."""
    state = read_checkpoint(source)
    for key in ("identity", "index", "step"):
        state.pop(key, None)
    target.unlink(missing_ok=True)
    target.write_bytes(torch_bytes(state))
    Path(f"{target}.sha256").unlink(missing_ok=True)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """This module's tiny runs on one thread: several times faster than two on a busy machine, and
    every run it compares made the same way."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, one_thread):
    """Finished runs of the small demo row: SGD, FGE, SWA of seeds 0 and 1 and EMA of seed 0 (in
    `main`), an SGD run at another rate (`lr`), one at another budget scale (in `main`), one of
    another model (`mlp`), and an SWA continuation of seed 0's SGD run (`cont`)."""
    base = tmp_path_factory.mktemp("identity")
    out = base / "main"
    for seed in (0, 1):
        for method in ("sgd", "fge", "swa"):
            assert train(out, method, seed=seed).exit_code == 0
    assert train(out, "ema").exit_code == 0
    assert train(out, "sgd", scale=["--budget-scale", "0.8"]).exit_code == 0
    assert train(base / "lr", "sgd", "--set", "optim.lr_init=0.07").exit_code == 0
    assert train(base / "mlp", "sgd", config=MLP).exit_code == 0
    shutil.copytree(run_dir(out, "sgd"), run_dir(base / "cont", "sgd"))
    assert train(base / "cont", "swa", *CONTINUE).exit_code == 0
    return SimpleNamespace(base=base, out=out, lr=base / "lr", mlp=base / "mlp", cont=base / "cont")


def sgd_copy(runs, tmp_path) -> Path:
    """A copy of seed 0's finished SGD run under tmp_path/out, for a continuation to start from."""
    target = run_dir(tmp_path / "out", "sgd")
    shutil.copytree(run_dir(runs.out, "sgd"), target)
    return target


# --------------------------------------------------------------------------------------------------
# A. A continuation starts from its own SGD run's state only


def _state_of(runs, method_of_continuation, source) -> Path:
    """The file an FGE run (state_epoch11.pt) or an SWA continuation (last.pt) would read, in the run of `source`."""
    if source == "ema":
        return run_dir(runs.out, "ema") / "checkpoints" / "last.pt"
    folder = {
        "seed1": run_dir(runs.out, "sgd", seed=1),
        "lr": run_dir(runs.lr, "sgd"),
        "scale": run_dir(runs.out, "sgd", scale="0.8"),
        "mlp": run_dir(runs.mlp, "sgd", model="digits_mlp"),
    }[source]
    if method_of_continuation == "swa":
        return folder / "checkpoints" / "last.pt"
    (kept,) = (folder / "checkpoints").glob("state_epoch*.pt")
    return kept


START_CASES = {
    # case: (source run, how it is put in place, words the refusal holds)
    "another seed's state with its sidecar": ("seed1", "copy with sidecar", ["another run (method sgd, seed 1)"]),
    "another seed's state, its sidecar removed": ("seed1", "copy, no sidecar", ["another run (method sgd, seed 1)"]),
    "another seed's state over the old sidecar": ("seed1", "copy alone", ["do not match their checksum"]),
    "a symbolic link to another seed's state": ("seed1", "link, no sidecar", ["another run (method sgd, seed 1)"]),
    "a symbolic link with its sidecar linked": ("seed1", "link with sidecar", ["another run (method sgd, seed 1)"]),
    "a state at another learning rate": ("lr", "copy with sidecar", ["another run (another config)"]),
    "a state at another budget scale": ("scale", "copy with sidecar", ["another run (another config)"]),
    "an EMA run's state": ("ema", "copy with sidecar", ["another run (method ema, seed 0)"]),
    "another model's state": ("mlp", "copy with sidecar", ["another run (another config)"]),
    "another model's state of an older version": ("mlp", "older", ["holds the weights of another model"]),
    "an EMA run's state of an older version": ("ema", "older", ["holds an average"]),
}


def _put(source: Path, target: Path, how: str) -> None:
    sidecar, source_sidecar = Path(f"{target}.sha256"), Path(f"{source}.sha256")
    target.unlink()
    if how == "older":
        without_identity(source, target)
        if target.name == "last.pt":
            (target.parent / "previous.pt.sha256").unlink()
        return
    if how.startswith("link"):
        target.symlink_to(source)
    else:
        shutil.copy(source, target)
    if how.endswith("no sidecar"):
        sidecar.unlink()
        if target.name == "last.pt":  # the rolling pair vouch for each other: no sidecar means neither
            (target.parent / "previous.pt.sha256").unlink()
    elif how == "link with sidecar":
        sidecar.unlink()
        sidecar.symlink_to(source_sidecar)
    elif how == "copy with sidecar":
        shutil.copy(source_sidecar, sidecar)


@pytest.mark.parametrize("method", ["fge", "swa"])
@pytest.mark.parametrize("case", sorted(START_CASES))
def test_a_continuation_refuses_a_state_that_is_not_its_sgd_runs(runs, tmp_path, method, case):
    source_run, how, needles = START_CASES[case]
    sgd = sgd_copy(runs, tmp_path)
    target = sgd / "checkpoints" / ("state_epoch11.pt" if method == "fge" else "last.pt")
    _put(_state_of(runs, method, source_run), target, how)
    before = snapshot(sgd)
    extra = CONTINUE if method == "swa" else []
    line = assert_one_line_error(train(tmp_path / "out", method, *extra), target.name, *needles)
    assert str(target) in line
    assert snapshot(sgd) == before and not (tmp_path / "out" / "digits/digits_cnn" / method).exists()


@pytest.mark.parametrize("method", ["fge", "swa"])
def test_a_continuation_of_the_untouched_sgd_run_starts(runs, tmp_path, method):
    sgd_copy(runs, tmp_path)
    result = train(tmp_path / "out", method, *(CONTINUE if method == "swa" else []))
    assert result.exit_code == 0, result.output
    theirs = runs.cont if method == "swa" else runs.out
    assert rows(run_dir(tmp_path / "out", method)) == rows(run_dir(theirs, method))


def test_a_cells_weights_file_in_place_of_the_kept_state_is_refused(runs, tmp_path):
    """sgd.pt carries the SGD run's own identity, but is no run state (no optimizer) and of another epoch."""
    sgd = sgd_copy(runs, tmp_path)
    for suffix in ("", ".sha256"):
        shutil.copy(sgd / "checkpoints" / f"sgd.pt{suffix}", sgd / "checkpoints" / f"state_epoch11.pt{suffix}")
    assert_one_line_error(train(tmp_path / "out", "fge"), "state_epoch11.pt", "holds no optimizer state")


@pytest.mark.parametrize("method", ["fge", "swa"])
@pytest.mark.parametrize(
    "key,value", [("optim.lr_init", 0.07), ("optim.weight_decay", 0.001), ("schedule.sgd_final_ratio", 0.02)]
)
def test_a_continuation_refuses_an_sgd_config_edited_after_training(runs, tmp_path, method, key, value):
    """The edited config.yaml and the continuation agree; the SGD run's checkpoints were made under the old one."""
    sgd = sgd_copy(runs, tmp_path)
    stored = yaml.safe_load((sgd / "config.yaml").read_text())
    section, name = key.split(".")
    stored["config"][section][name] = value
    (sgd / "config.yaml").write_text(yaml.safe_dump(stored, sort_keys=False))
    extra = [*(CONTINUE if method == "swa" else []), "--set", f"{key}={value}"]
    line = assert_one_line_error(
        train(tmp_path / "out", method, *extra),
        str(sgd / "config.yaml"),
        "not the config the SGD run was trained under",
        "edited after training",
    )
    assert ("state_epoch11.pt" if method == "fge" else "last.pt") in line
    # At the config the run was trained under, the edited file itself disagrees: refused too.
    assert_one_line_error(train(tmp_path / "out", method, *(CONTINUE if method == "swa" else [])), key)


@pytest.mark.parametrize("method", ["fge", "swa"])
def test_a_deleted_sgd_config_is_said_so_not_that_there_is_no_run(runs, tmp_path, method):
    sgd = sgd_copy(runs, tmp_path)
    (sgd / "config.yaml").unlink()
    line = assert_one_line_error(
        train(tmp_path / "out", method, *(CONTINUE if method == "swa" else [])),
        str(sgd / "config.yaml"),
        "missing",
        "records are there",
    )
    assert "no SGD run to continue from" not in line


@pytest.mark.parametrize("method", ["fge", "swa"])
def test_an_unfinished_sgd_run_is_counted_against_its_own_budget(runs, tmp_path, monkeypatch, method):
    extra = CONTINUE if method == "swa" else []
    monkeypatch.setattr(trainer_module, "StopSignals", signal_when(lambda reads: reads >= 10))
    assert train(tmp_path / "out", "sgd").exit_code == 75  # stopped in epoch 3
    monkeypatch.setattr(trainer_module, "StopSignals", StopSignals)
    done = len(RunRecords(run_dir(tmp_path / "out", "sgd")).read_metrics())
    assert_one_line_error(train(tmp_path / "out", method, *extra), f"has not finished ({done} of 14 epochs)")
    # Every epoch done, the summary lost: not "14 of 11".
    other = tmp_path / "other"
    (run_dir(other, "sgd")).parent.mkdir(parents=True)
    shutil.copytree(run_dir(runs.out, "sgd"), run_dir(other, "sgd"))
    (run_dir(other, "sgd") / "summary.json").unlink()
    assert_one_line_error(train(other, method, *extra), "all 14 epochs, but no summary.json")


# --------------------------------------------------------------------------------------------------
# B. Weights files carry their run's identity


def test_every_weights_file_carries_its_runs_identity(runs):
    for method, files in (
        ("sgd", ["sgd", "state_epoch11"]),
        ("swa", ["swa_1", "swa_1.25", "swa_1.5"]),
        ("ema", ["ema_1"]),
        ("fge", ["fge_1", "fge_member1", "fge_member2"]),
    ):
        folder = run_dir(runs.out, method) / "checkpoints"
        identity = read_checkpoint(folder / "last.pt")["identity"]
        assert identity["method"] == method and identity["seed"] == 0
        for name in files:
            assert read_checkpoint(folder / f"{name}.pt")["identity"] == identity, name
    summary = json.loads((run_dir(runs.out, "fge") / "summary.json").read_text())
    for i, member in enumerate(summary["fge_members"], 1):
        weights = read_checkpoint(run_dir(runs.out, "fge") / "checkpoints" / f"fge_member{i}.pt")
        assert (weights["index"], weights["epoch"], weights["column"]) == (i, member["epoch"], "fge_member")
        assert weights["step"] == member.get("step")


def _stopped_fge(runs, tmp_path, monkeypatch) -> Path:
    """An FGE run stopped in epoch 13 (after collecting its first model), seed 0's SGD run beside it."""
    sgd_copy(runs, tmp_path)
    monkeypatch.setattr(trainer_module, "StopSignals", signal_when(lambda reads: reads >= 6))
    assert train(tmp_path / "out", "fge").exit_code == 75
    monkeypatch.setattr(trainer_module, "StopSignals", StopSignals)
    fge = run_dir(tmp_path / "out", "fge")
    assert read_checkpoint(fge / "checkpoints" / "last.pt")["ensemble"]["count"] == 1
    return fge


MEMBER_CASES = {
    # case: (what is put in place of fge_member1.pt, words the refusal holds)
    "another seed's member with its sidecar": ("seed1 member1", ["another run (method fge, seed 1)"]),
    "another seed's member, no sidecar": ("seed1 member1 alone", ["another run (method fge, seed 1)"]),
    "another method's cell": ("swa seed1 cell", ["another run (method swa, seed 1)"]),
    "the run's own later member": ("own member2", ["its index is 2, not 1"]),
    "a deleted member": ("deleted", ["fge_member1.pt, the weights of collected model 1, is missing"]),
    "a cut member": ("cut", ["fge_member1.pt", "do not match their checksum"]),
}


@pytest.mark.parametrize("case", sorted(MEMBER_CASES))
def test_a_resume_refuses_a_collected_model_that_is_not_its_own(runs, tmp_path, monkeypatch, case):
    what, needles = MEMBER_CASES[case]
    fge = _stopped_fge(runs, tmp_path, monkeypatch)
    member, sidecar = fge / "checkpoints" / "fge_member1.pt", fge / "checkpoints" / "fge_member1.pt.sha256"
    sources = {
        "seed1 member1": run_dir(runs.out, "fge", seed=1) / "checkpoints" / "fge_member1.pt",
        "seed1 member1 alone": run_dir(runs.out, "fge", seed=1) / "checkpoints" / "fge_member1.pt",
        "swa seed1 cell": run_dir(runs.out, "swa", seed=1) / "checkpoints" / "swa_1.pt",
        "own member2": run_dir(runs.out, "fge") / "checkpoints" / "fge_member2.pt",
    }
    if what == "deleted":
        member.unlink()
        sidecar.unlink()
    elif what == "cut":
        member.write_bytes(member.read_bytes()[:-100])
    else:
        shutil.copy(sources[what], member)
        if what.endswith("alone"):
            sidecar.unlink()
        else:
            shutil.copy(f"{sources[what]}.sha256", sidecar)
    before = snapshot(fge)
    assert_one_line_error(train(tmp_path / "out", "fge"), *needles)
    assert snapshot(fge) == before  # nothing rewritten


def test_a_resume_keeps_its_own_members_and_older_files(runs, tmp_path, monkeypatch):
    """The run's own member, and one written before members carried an identity, resume as before."""
    fge = _stopped_fge(runs, tmp_path, monkeypatch)
    member = fge / "checkpoints" / "fge_member1.pt"
    without_identity(member, member)
    result = train(tmp_path / "out", "fge")
    assert result.exit_code == 0, result.output
    assert rows(fge) == rows(run_dir(runs.out, "fge"))
    assert (
        json.loads((fge / "summary.json").read_text())["results"]
        == json.loads((run_dir(runs.out, "fge") / "summary.json").read_text())["results"]
    )


def test_a_resume_refuses_a_cells_weights_of_another_run(runs, tmp_path, monkeypatch):
    """An SWA run stopped after its swa_1 cell (epoch 14), another seed's swa_1.pt put in its place."""
    monkeypatch.setattr(trainer_module, "StopSignals", signal_when(lambda reads: reads >= 62))
    assert train(tmp_path / "out", "swa").exit_code == 75
    monkeypatch.setattr(trainer_module, "StopSignals", StopSignals)
    swa = run_dir(tmp_path / "out", "swa")
    assert read_checkpoint(swa / "checkpoints" / "last.pt")["epoch"] >= 14
    for suffix in ("", ".sha256"):
        shutil.copy(
            run_dir(runs.out, "swa", seed=1) / "checkpoints" / f"swa_1.pt{suffix}",
            swa / "checkpoints" / f"swa_1.pt{suffix}",
        )
    result = train(tmp_path / "out", "swa")
    if result.exit_code == 0:  # fell back to a checkpoint before the cell, which was made again
        assert "swa_1.pt is not this run's own" in result.output
        assert rows(swa) == rows(run_dir(runs.out, "swa"))
        assert read_checkpoint(swa / "checkpoints" / "swa_1.pt")["identity"]["seed"] == 0
    else:
        assert_one_line_error(result, "swa_1.pt is not this run's own", "another run (method swa, seed 1)")


def _fge_copy(runs, tmp_path) -> Path:
    target = run_dir(tmp_path / "out", "fge")
    shutil.copytree(run_dir(runs.out, "fge"), target)
    return target


@pytest.mark.parametrize(
    "case", ["another seed's member", "another seed's member, no sidecar", "own member2 as member1"]
)
def test_plane_refuses_a_collected_model_that_is_not_the_runs(runs, tmp_path, case):
    fge = _fge_copy(runs, tmp_path)
    c = fge / "checkpoints"
    source = (
        run_dir(runs.out, "fge", seed=1 if "seed" in case else 0)
        / "checkpoints"
        / ("fge_member2.pt" if "member2" in case else "fge_member1.pt")
    )
    shutil.copy(source, c / "fge_member1.pt")
    if "no sidecar" in case:
        (c / "fge_member1.pt.sha256").unlink()
    else:
        shutil.copy(f"{source}.sha256", c / "fge_member1.pt.sha256")
    sgd = run_dir(runs.out, "sgd") / "checkpoints"
    if "member2" in case:  # as a marked point (with --mean-of it would be refused as fge_member2 given twice)
        needle, marked = "collected model 2 of its run, not model 1 as its name says", ["--extra", c / "fge_member1.pt"]
    else:
        needle, marked = (
            "another run (method fge, seed 1)",
            ["--mean-of", c / "fge_member1.pt", "--mean-of", c / "fge_member2.pt"],
        )
    result = cli(
        "landscape",
        "plane",
        sgd / "sgd.pt",
        c / "fge_1.pt",
        c / "fge_member2.pt",
        *marked,
        "--out",
        tmp_path / "fig",
        "--quiet",
    )
    assert_one_line_error(result, str(c / "fge_member1.pt"), needle)
    assert not (tmp_path / "fig").exists()


@pytest.mark.parametrize("how", ["the same path", "a symbolic link", "a hard link", "a copy"])
def test_mean_of_refuses_one_file_given_twice(runs, tmp_path, how):
    fge = _fge_copy(runs, tmp_path)
    c = fge / "checkpoints"
    twin = c / "fge_member1.pt" if how == "the same path" else c / "twin.pt"
    if how == "a symbolic link":
        twin.symlink_to(c / "fge_member1.pt")
    elif how == "a hard link":
        os.link(c / "fge_member1.pt", twin)
    elif how == "a copy":
        shutil.copy(c / "fge_member1.pt", twin)
    sgd = run_dir(runs.out, "sgd") / "checkpoints"
    result = cli(
        "landscape",
        "plane",
        sgd / "sgd.pt",
        c / "fge_1.pt",
        c / "fge_member2.pt",
        "--mean-of",
        c / "fge_member1.pt",
        "--mean-of",
        twin,
        "--out",
        tmp_path / "fig",
        "--quiet",
    )
    assert_one_line_error(result, "--mean-of", str(twin), "given twice")


def test_a_deleted_member_is_refused_by_the_figures_and_flagged(runs, tmp_path):
    from swa_bench.figures.weights import FigureInputError, fge_member_files

    fge = _fge_copy(runs, tmp_path)
    assert [p.name for p in fge_member_files(fge)] == ["fge_member1.pt", "fge_member2.pt"]
    (fge / "checkpoints" / "fge_member2.pt").unlink()
    with pytest.raises(FigureInputError, match="fge_member2.pt: missing, though summary.json lists"):
        fge_member_files(fge)
    status = cli("status", tmp_path / "out")
    assert "damaged" in status.output and "fge_member2" in status.output, status.output
    table = cli("table", tmp_path / "out")
    assert table.exit_code == 0 and "fge_member2" in table.output and "missing" in table.output, table.output


def test_the_experiments_plane_takes_the_members_its_summary_lists(runs, tmp_path):
    """`_fge_members` of the experiment driver: every listed model, a missing one refused in one line."""
    from swa_bench.errors import UserError
    from swa_bench.experiment import _fge_members

    fge = _fge_copy(runs, tmp_path)
    with pytest.raises(UserError, match="2 collected models kept; the plane needs three"):
        _fge_members(fge)
    (fge / "checkpoints" / "fge_member1.pt").unlink()
    with pytest.raises(UserError, match="fge_member1.pt: missing"):
        _fge_members(fge)


def test_weights_files_without_an_identity_are_read_as_older_files(runs, tmp_path):
    from swa_bench.figures.weights import load_state

    fge = _fge_copy(runs, tmp_path)
    for name in ("fge_member1", "fge_1"):
        path = fge / "checkpoints" / f"{name}.pt"
        without_identity(path, path)
        original = read_checkpoint(run_dir(runs.out, "fge") / "checkpoints" / f"{name}.pt")["model"]
        assert set(load_state(path)) == set(original)


def test_line_refuses_a_solution_file_of_another_run(runs, tmp_path):
    swa = run_dir(tmp_path / "out", "swa")
    shutil.copytree(run_dir(runs.out, "swa"), swa)
    for suffix in ("", ".sha256"):
        shutil.copy(
            run_dir(runs.out, "swa", seed=1) / "checkpoints" / f"swa_1.5.pt{suffix}",
            swa / "checkpoints" / f"swa_1.5.pt{suffix}",
        )
    result = cli(
        "landscape", "line", "--swa", swa, "--sgd", run_dir(runs.out, "sgd"), "--out", tmp_path / "fig", "--quiet"
    )
    assert_one_line_error(result, "swa_1.5.pt", "another run (method swa, seed 1)")


# --------------------------------------------------------------------------------------------------
# C. The landscapes pair a run with the SGD run of its own seed and protocol


PAIRINGS = {
    # case: (--swa run, --sgd run, words the refusal holds)
    "SWA of seed 0, SGD of seed 1": (
        ("out", "swa", 0, "0.7"),
        ("out", "sgd", 1, "0.7"),
        ["different seeds", "run.seed 0 and 1"],
    ),
    "SWA of seed 1, SGD of seed 0": (
        ("out", "swa", 1, "0.7"),
        ("out", "sgd", 0, "0.7"),
        ["different seeds", "run.seed 1 and 0"],
    ),
    "EMA of seed 0, SGD of seed 1": (("out", "ema", 0, "0.7"), ("out", "sgd", 1, "0.7"), ["different seeds"]),
    "SGD at another rate": (
        ("out", "swa", 0, "0.7"),
        ("lr", "sgd", 0, "0.7"),
        ["different configs", "optim.lr_init 0.05 and 0.07"],
    ),
    "SGD at another budget scale": (
        ("out", "swa", 0, "0.7"),
        ("out", "sgd", 0, "0.8"),
        ["different configs", "run.budget_scale"],
    ),
    "a continuation, SGD of seed 1": (("cont", "swa", 0, "0.7"), ("out", "sgd", 1, "0.7"), ["different seeds"]),
}


def _run(runs, where, method, seed, scale):
    return run_dir(getattr(runs, where), method, seed=seed, scale=scale)


@pytest.mark.parametrize("command", ["line", "rays"])
@pytest.mark.parametrize("case", sorted(PAIRINGS))
def test_landscapes_refuse_runs_of_different_seeds_or_configs(runs, tmp_path, command, case):
    swa, sgd, needles = PAIRINGS[case]
    result = cli(
        "landscape", command, "--swa", _run(runs, *swa), "--sgd", _run(runs, *sgd), "--out", tmp_path / "fig", "--quiet"
    )
    assert_one_line_error(result, "--swa", "--sgd", *needles)
    assert not (tmp_path / "fig").exists()


@pytest.mark.parametrize(
    "swa", [("out", "swa", 0, "0.7"), ("out", "ema", 0, "0.7"), ("cont", "swa", 0, "0.7"), ("out", "swa", 1, "0.7")]
)
def test_landscapes_pair_a_run_with_the_sgd_run_of_its_own_seed(runs, swa):
    """The method's own keys (swa.*, ema.*, swa.start_from) may differ: a continuation is its SGD run's pair."""
    from swa_bench.figures.landscape import _solutions

    sgd = ("cont" if swa[0] == "cont" else "out", "sgd", swa[2], "0.7")
    files = _solutions(_run(runs, *swa), _run(runs, *sgd))
    assert [f.parent.parent for f in files] == [_run(runs, *swa), _run(runs, *sgd)]


# --------------------------------------------------------------------------------------------------
# D. The experiment driver's and `plot table`'s other failures


def test_picture_with_no_finished_runs_is_one_line(tmp_path, capsys):
    from swa_bench import experiment

    (tmp_path / "data").mkdir()
    status = experiment.main(
        [
            "mini",
            "--part",
            "picture",
            "--data",
            str(tmp_path / "data"),
            "--out",
            str(tmp_path / "runs"),
            "--results",
            str(tmp_path / "results"),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and err[0].startswith("error: ") and "no finished runs yet" in err[0], err


def test_plot_table_with_only_sgd_runs_is_one_line(runs, tmp_path):
    shutil.copytree(run_dir(runs.out, "sgd"), run_dir(tmp_path / "out", "sgd"))
    assert_one_line_error(
        cli("plot", "table", tmp_path / "out", "--out", tmp_path / "fig"), "no finished runs of an averaged column"
    )


def _failing_part(tmp_path, monkeypatch, failures: dict, blocked=()):
    """experiment._train over fake runs that all fail: {name: (exit status, error line)}; `blocked`:
    continuations the grid blocked because their SGD run failed."""
    from swa_bench.errors import UserError
    from swa_bench.experiment import _train
    from swa_bench.grid import local

    specs = []
    for name in [*failures, *blocked]:
        folder = tmp_path / "runs" / name
        folder.mkdir(parents=True)
        specs.append(SimpleNamespace(run_dir=str(folder), name=name, after=None if name in failures else "x"))
        status, error = failures.get(name, (-1, "error: the SGD run it continues (x) did not finish"))
        RunRecords(folder).write_failure({"run": name, "exit_status": status, "error": error, "log": "x.log"})
    monkeypatch.setattr(
        local, "run_local", lambda plan, jobs, say: {s.name: failures.get(s.name, (-1,))[0] for s in plan.runs}
    )
    x = SimpleNamespace(out=str(tmp_path / "runs"), jobs=1, say=lambda line: None)
    with pytest.raises(UserError) as raised:
        _train(x, "table", specs)
    return str(raised.value)


EMPTY = "error: data.path /d: no training images found"


@pytest.mark.parametrize(
    "failures,blocked,cause",
    [
        ({"a/sgd/seed0": (2, EMPTY), "a/swa/seed0": (2, EMPTY), "a/ema/seed0": (2, EMPTY)}, (), True),
        ({"a/sgd/seed0": (2, EMPTY), "a/sgd/seed1": (2, EMPTY)}, ("a/fge/seed0", "a/fge/seed1"), True),
        ({"a/sgd/seed0": (2, EMPTY)}, (), True),  # one refusal (exit 2): running again cannot help either
        ({"a/sgd/seed0": (1, "RuntimeError: x"), "a/swa/seed0": (1, "RuntimeError: x")}, (), True),
        ({"a/sgd/seed0": (2, EMPTY), "a/swa/seed0": (2, "error: other")}, (), False),
        ({"a/sgd/seed0": (1, "Killed")}, (), False),  # one crash: may be passing
        ({"a/sgd/seed0": (-9, "(no output)"), "a/swa/seed0": (-9, "(no output)")}, (), False),
    ],
)
def test_a_part_whose_runs_all_fail_for_one_cause_says_it(tmp_path, monkeypatch, failures, blocked, cause):
    line = _failing_part(tmp_path, monkeypatch, failures, blocked)
    n = len(failures) + len(blocked)
    assert f"{n} run(s) did not finish" in line and "\n" not in line
    error = next(iter(failures.values()))[1].removeprefix("error: ")
    if cause:
        assert error in line and "will not help" in line and "run the part again to resume" not in line, line
    else:
        assert "run the part again to resume" in line and "will not help" not in line, line


@pytest.mark.parametrize("column", ["bogus", "swa_x", "swa_", "swa", "sgd_1", "_1", "swa_-1", "swa_nan"])
@pytest.mark.parametrize("method", ["sgd", "swa"])
def test_an_unknown_result_column_is_one_line_naming_summary_and_column(runs, tmp_path, column, method):
    out = tmp_path / "out"
    for m in ("sgd", "swa"):
        shutil.copytree(run_dir(runs.out, m), run_dir(out, m))
    summary_path = run_dir(out, method) / "summary.json"
    summary = json.loads(summary_path.read_text())
    summary["results"][column], summary["results_nll"][column] = 50.0, 1.0
    summary_path.write_text(json.dumps(summary))
    for args in (["table", out], ["plot", "table", out, "--out", tmp_path / "fig"]):
        result = cli(*args)
        warned = [line for line in result.output.splitlines() if str(summary_path) in line]
        assert len(warned) == 1 and repr(column) in warned[0] and "not a table column" in warned[0], result.output
        assert "Traceback" not in result.output and "could not" not in result.output, result.output
    # Without the other run, nothing is left to draw: one line, exit 2.
    shutil.rmtree(run_dir(out, "sgd" if method == "swa" else "swa"))
    result = cli("plot", "table", out, "--out", tmp_path / "fig2")
    assert_one_line_error(result, "no finished runs")
    status = cli("status", out)
    assert status.exit_code == 0 and "damaged" in status.output and column in status.output, status.output
