"""Nothing silently wrong: a run knows its own files (checkpoints of other runs, a lost or damaged
config.yaml, a cut metrics file, directories in place of files), a figure knows its own weights
(point caches by content, bad figure arguments, swapped or foreign runs), a failure record knows its
attempt, and runs are found wherever they are (symbolic links, moved folders). Each case ends in
one line naming the file or flag and exit 2, or in the uninterrupted run's exact records; nothing
recorded is lost."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import REPO, signal_when

from swa_bench.cli import main
from swa_bench.figures.evaluator import PointCache
from swa_bench.records import RunRecords
from swa_bench.stopping import StopSignals
from swa_bench.training import run as trainer_module

pytestmark = pytest.mark.integration

DEMO = REPO / "configs/demo/digits.yaml"
SMALL = ["--set", "data.train_subset=100", "--set", "optim.batch_size=32", "--budget-scale", "0.3", "--quiet"]


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def train(out, method, *extra, config=DEMO):
    return cli("train", "--config", config, "--method", method, "--out", out, *SMALL, *extra)


def run_dir(out, method, model="digits_cnn"):
    return Path(out) / f"digits/{model}/{method}/seed0-scale0.3-subset100"


def assert_one_line_error(result, *needles, status=2):
    assert result.exit_code == status, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def rows(path):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in RunRecords(path).read_metrics()]


def snapshot(path: Path) -> dict:
    """Every file of a run directory and its bytes: to show that nothing was changed."""
    return {p.relative_to(path): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file() and p.name != ".lock"}


def stopped(out, method, monkeypatch, steps=10, *extra):
    """A run stopped by a signal after `steps` steps (epoch checkpoints every epoch)."""
    monkeypatch.setattr(trainer_module, "StopSignals", signal_when(lambda reads: reads >= steps))
    result = train(out, method, "--set", "run.checkpoint_every=1", *extra)
    monkeypatch.setattr(trainer_module, "StopSignals", StopSignals)
    assert result.exit_code == 75, result.output
    return run_dir(out, method)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """Uninterrupted SGD, SWA and EMA runs of the small demo row."""
    out = tmp_path_factory.mktemp("finished")
    for method in ("sgd", "swa", "ema"):
        assert train(out, method, "--set", "run.checkpoint_every=1").exit_code == 0
    return out


# --------------------------------------------------------------------------------------------------
# 1. A checkpoint belongs to one run


@pytest.mark.parametrize("source", ["ema", "sgd", "swa-final", "mlp"])
def test_a_foreign_last_checkpoint_is_never_resumed(finished, tmp_path, monkeypatch, source):
    """Another run's last.pt (with its sidecar) copied into a stopped SWA run: the run falls back to
    its own previous.pt, says so, and ends with exactly the uninterrupted records."""
    target = stopped(tmp_path, "swa", monkeypatch, steps=10)
    if source == "mlp":
        assert (
            train(
                tmp_path / "mlp", "swa", "--set", "run.checkpoint_every=1", config=REPO / "configs/demo/digits_mlp.yaml"
            ).exit_code
            == 0
        )
        origin = run_dir(tmp_path / "mlp", "swa", model="digits_mlp")
    else:
        origin = run_dir(finished, "swa" if source == "swa-final" else source)
    for name in ("last.pt", "last.pt.sha256"):
        shutil.copy(origin / "checkpoints" / name, target / "checkpoints" / name)
    result = train(tmp_path, "swa", "--set", "run.checkpoint_every=1")
    assert result.exit_code == 0, result.output
    assert "last.pt: " in result.output and "using previous.pt" in result.output
    assert rows(target) == rows(run_dir(finished, "swa"))
    summary = json.loads((target / "summary.json").read_text())
    assert summary["results"] == json.loads((run_dir(finished, "swa") / "summary.json").read_text())["results"]


def test_a_foreign_checkpoint_with_nothing_to_fall_back_on_is_one_line(finished, tmp_path, monkeypatch):
    target = stopped(tmp_path, "swa", monkeypatch, steps=3)  # within the first epoch: only last.pt
    assert not (target / "checkpoints" / "previous.pt").exists()
    for name in ("last.pt", "last.pt.sha256"):
        shutil.copy(run_dir(finished, "ema") / "checkpoints" / name, target / "checkpoints" / name)
    before = snapshot(target)
    line = assert_one_line_error(train(tmp_path, "swa"), "last.pt", "another run (method ema, seed 0)")
    assert "delete" in line and snapshot(target) == before  # nothing changed


@pytest.mark.parametrize("method", ["sgd", "ema"])
def test_a_final_checkpoint_of_a_twin_run_does_not_finish_a_stopped_run(finished, tmp_path, monkeypatch, method):
    """A last.pt at the final epoch from the same config in another --out: the stopped run's records
    lack that run's epochs, so it is not this run's state; the run resumes from its own."""
    target = stopped(tmp_path, method, monkeypatch, steps=10)
    for name in ("last.pt", "last.pt.sha256"):
        shutil.copy(run_dir(finished, method) / "checkpoints" / name, target / "checkpoints" / name)
    result = train(tmp_path, method, "--set", "run.checkpoint_every=1")
    assert result.exit_code == 0 and "lacks the rows of epochs" in result.output, result.output
    summary = json.loads((target / "summary.json").read_text())
    assert summary["final_test_acc"] is not None and all(
        (target / "checkpoints" / f"{c}.pt").is_file() for c in summary["results"]
    )
    assert rows(target) == rows(run_dir(finished, method))


# --------------------------------------------------------------------------------------------------
# 2. config.yaml is the run's identity


@pytest.mark.parametrize(
    "damage,needle",
    [
        (None, "missing, but"),
        ("", "not a run's config"),
        ("protocol: {}\n", "not a run's config"),
        ("config: [1, 2\n", "not valid YAML"),
        ("- a\n- b\n", "not a run's config"),
        ("config: 3\n", "not a run's config"),
    ],
)
def test_a_run_whose_config_is_lost_or_damaged_is_refused(tmp_path, monkeypatch, damage, needle):
    target = stopped(tmp_path, "swa", monkeypatch, steps=10)
    config = target / "config.yaml"
    if damage is None:
        config.unlink()
    else:
        config.write_text(damage)
    before = snapshot(target)
    assert_one_line_error(train(tmp_path, "swa", "--set", "optim.lr_init=0.09"), "config.yaml")
    assert_one_line_error(train(tmp_path, "swa"), "config.yaml")
    assert snapshot(target) == before  # not re-created, nothing rewritten
    status = cli("status", tmp_path)
    assert status.exit_code == 0 and "Traceback" not in status.output


# --------------------------------------------------------------------------------------------------
# 5. A cut metrics file


@pytest.mark.parametrize("method", ["swa", "ema"])
def test_a_cut_last_metrics_line_is_re_run_not_dropped(finished, tmp_path, method):
    """A finished run whose summary was removed (to finish again) and whose last metrics row was then cut:
    last.pt (at the final epoch) is ahead of the records, so the run goes back to previous.pt and re-runs
    the last epoch, rewriting its row."""
    out = tmp_path / "copy"
    shutil.copytree(finished, out)
    target = run_dir(out, method)
    (target / "summary.json").unlink()
    metrics = target / "metrics.jsonl"
    text = metrics.read_text()
    last = text.splitlines()[-1]
    metrics.write_text(text[: len(text) - len(last) // 2 - 1])  # the last row cut in two
    final = json.loads(last)["epoch"]
    result = train(out, method, "--set", "run.checkpoint_every=1")
    assert result.exit_code == 0, result.output
    assert f"lacks the rows of epoch {final}" in result.output and "using previous.pt" in result.output
    assert rows(target) == rows(run_dir(finished, method))  # every epoch's row, each once
    assert (
        json.loads((target / "summary.json").read_text())["results"]
        == json.loads((run_dir(finished, method) / "summary.json").read_text())["results"]
    )


def test_a_cut_metrics_file_without_an_earlier_checkpoint_is_one_line(tmp_path, monkeypatch):
    target = stopped(tmp_path, "sgd", monkeypatch, steps=6)  # in epoch 2: last.pt after epoch 1, no previous.pt
    (target / "checkpoints" / "previous.pt").unlink(missing_ok=True)
    (target / "metrics.jsonl").write_text('{"epoch": 1, "lr"')
    before = snapshot(target)
    assert_one_line_error(train(tmp_path, "sgd"), "metrics.jsonl lacks the rows of epoch 1")
    assert snapshot(target) == before


# --------------------------------------------------------------------------------------------------
# 8. Directories where files belong


def test_a_directory_in_place_of_the_summary_is_one_line(finished, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(finished, out)
    summary = run_dir(out, "sgd") / "summary.json"
    summary.unlink()
    summary.mkdir()
    assert_one_line_error(train(out, "sgd"), "summary.json: not a file")
    table = cli("table", out)
    assert "Traceback" not in table.output


@pytest.mark.parametrize("name", ["last.pt", "previous.pt"])
def test_a_directory_in_place_of_a_checkpoint_is_reported(finished, tmp_path, monkeypatch, name):
    target = stopped(tmp_path, "swa", monkeypatch, steps=10)
    checkpoint = target / "checkpoints" / name
    checkpoint.unlink()
    checkpoint.mkdir()
    result = train(tmp_path, "swa", "--set", "run.checkpoint_every=1")
    # Reported (last.pt: unreadable, previous.pt used; then the rotation cannot replace a directory,
    # which swa-bench never deletes), in one line and without a traceback.
    assert "Traceback" not in result.output, result.output
    if result.exit_code != 0:
        assert_one_line_error(result, name)


# --------------------------------------------------------------------------------------------------
# 4. Failure records belong to an attempt


def test_a_stale_failure_record_is_not_reported_and_finishing_clears_it(finished, tmp_path, monkeypatch):
    out = tmp_path / "copy"
    shutil.copytree(finished, out)
    RunRecords(run_dir(out, "swa")).write_failure({"run": "x", "error": "error: in use by another process"})
    table = cli("table", out)
    assert table.exit_code == 0 and "failed, not in the table" not in table.output
    status = cli("status", out)
    assert "failed" not in status.output.split("runs:")[-1]
    # A stopped run with a failure record: training it to the end clears the record.
    target = stopped(tmp_path / "fresh", "sgd", monkeypatch, steps=6)
    RunRecords(target).write_failure({"run": "x", "error": "error: killed"})
    assert "failed" in cli("status", tmp_path / "fresh").output
    assert train(tmp_path / "fresh", "sgd").exit_code == 0
    assert not (target / "failure.json").exists()


def test_a_run_in_use_is_not_a_failure_of_the_run(tmp_path):
    from swa_bench.grid.plan import RunSpec
    from swa_bench.grid.runner import run_spec
    from swa_bench.outcomes import EXIT_IN_USE, NOT_FAILURES

    assert EXIT_IN_USE in NOT_FAILURES
    out = tmp_path / "runs"
    spec = RunSpec(
        config=str(DEMO),
        method="sgd",
        seed=0,
        out=str(out),
        run_dir=str(run_dir(out, "sgd")),
        epochs=6,
        train_images=100,
        model="digits_cnn",
        sets=("data.train_subset=100", "optim.batch_size=32"),
        budget_scale=0.3,
    )
    records = RunRecords(spec.run_dir)
    with records.lock():  # another grid's training process holds it
        status = run_spec(spec)
    assert status == EXIT_IN_USE and not records.failure_path.exists()


# --------------------------------------------------------------------------------------------------
# 7. Where the runs are


def test_runs_under_a_symbolic_link_are_tabulated_once(finished, tmp_path):
    out = tmp_path / "runs"
    out.mkdir()
    (out / "elsewhere").symlink_to(finished, target_is_directory=True)
    (out / "loop").symlink_to(out, target_is_directory=True)  # a link back up: followed once
    csv = cli("table", out, "--format", "csv")
    assert csv.exit_code == 0, csv.output
    lines = csv.output.strip().splitlines()
    assert len(lines) == 1 + 5 and all(",1," in line for line in lines[1:])  # sgd, swa x3, ema; one run each
    status = cli("status", out)
    assert status.output.count("done") >= 3


def test_a_moved_runs_folder_keeps_its_grid_plan(tmp_path):
    out = tmp_path / "runs"
    plan = cli(
        "grid",
        "--table",
        "demo",
        "--rows",
        "digits",
        "--seeds",
        "1",
        "--out",
        out,
        "--budget-scale",
        "0.3",
        "--set",
        "data.train_subset=100",
        "--set",
        "optim.batch_size=32",
        "--jobs",
        "2",
    )
    assert plan.exit_code == 0, plan.output
    moved = tmp_path / "moved"
    out.rename(moved)
    status = cli("status", moved)
    assert status.exit_code == 0, status.output
    assert "4 runs: 4 done" in status.output, status.output  # no phantom pending runs, none doubled


# --------------------------------------------------------------------------------------------------
# 3. Point caches know their weights; 6. figure commands check their arguments


def test_point_cache_survives_a_cut_line_and_ignores_damaged_rows(tmp_path):
    path = tmp_path / "line.points.x.jsonl"
    good = {
        "key": "t0",
        "test_error": 1.0,
        "test_loss": 0.1,
        "train_error": 2.0,
        "train_loss": 0.2,
        "train_loss_l2": 0.3,
    }
    path.write_text(json.dumps(good) + "\n" + '["wrong", "shape"]\n{"key": "t1", "test_error": "x"}\n{"key": "t2", "te')
    cache = PointCache(path)
    assert set(cache.rows) == {"t0"}
    computed = []
    row = cache.get_or_compute("t2", lambda: computed.append(1) or {k: v for k, v in good.items() if k != "key"})
    again = PointCache(path)
    assert set(again.rows) == {"t0", "t2"} and again.rows["t2"] == row and computed == [1]
    again.get_or_compute("t2", lambda: computed.append(2))
    assert computed == [1]  # cached now: not recomputed on the next resume


def test_point_cache_is_keyed_by_the_weights_contents(tmp_path):
    from swa_bench.figures.landscape import _cache

    weights = tmp_path / "swa_1.pt"
    weights.write_bytes(b"first run")
    first = _cache(tmp_path, "line", [weights], 100)
    weights.write_bytes(b"the run retrained at the same path")
    assert _cache(tmp_path, "line", [weights], 100).path != first.path
    assert _cache(tmp_path, "line", [weights], 200).path != _cache(tmp_path, "line", [weights], 100).path


@pytest.mark.parametrize(
    "args,needle",
    [
        (["line", "--test-images", "-1"], "--test-images"),
        (["line", "--train-images", "0"], "--train-images"),
        (["line", "--range", "nan", "1"], "--range"),
        (["line", "--range", "1", "-1"], "--range"),
        (["line", "--points", "100000000"], "--points"),
        (["rays", "--rays", "0"], "--rays"),
        (["rays", "--max-distance", "inf"], "--max-distance"),
        (["rays", "--points", "1"], "--points"),
    ],
)
def test_figure_commands_refuse_bad_numbers(finished, args, needle):
    command, *options = args
    result = cli("landscape", command, "--swa", run_dir(finished, "swa"), "--sgd", run_dir(finished, "sgd"), *options)
    assert result.exit_code == 2 and needle in result.output and "Traceback" not in result.output, result.output


@pytest.mark.parametrize("args", [["--grid", "0"], ["--grid", "100000"], ["--margin", "nan"], ["--margin", "-1"]])
def test_plane_refuses_bad_numbers(finished, args):
    c = run_dir(finished, "swa") / "checkpoints"
    result = cli("landscape", "plane", c / "swa_1.pt", c / "swa_1.25.pt", c / "swa_1.5.pt", *args)
    assert result.exit_code == 2 and args[0] in result.output and "Traceback" not in result.output, result.output


def test_figures_refuse_swapped_foreign_or_repeated_weights(finished, tmp_path):
    swa, sgd, ema = run_dir(finished, "swa"), run_dir(finished, "sgd"), run_dir(finished, "ema")
    assert_one_line_error(cli("landscape", "line", "--swa", sgd, "--sgd", swa, "--out", tmp_path), "--swa", "a sgd run")
    assert_one_line_error(cli("landscape", "rays", "--swa", swa, "--sgd", ema, "--out", tmp_path), "--sgd", "a ema run")
    c = swa / "checkpoints"
    assert_one_line_error(
        cli("landscape", "plane", c / "swa_1.pt", c / "swa_1.pt", c / "swa_1.5.pt", "--out", tmp_path),
        "the same weights",
    )
    loose = tmp_path / "loose.pt"
    shutil.copy(c / "swa_1.pt", loose)
    assert_one_line_error(
        cli("landscape", "plane", loose, c / "swa_1.25.pt", c / "swa_1.5.pt", "--out", tmp_path),
        "loose.pt",
        "not a weights file in a run's checkpoints/ folder",
    )
    other = tmp_path / "mlp"
    assert train(other, "sgd", config=REPO / "configs/demo/digits_mlp.yaml").exit_code == 0
    mlp = run_dir(other, "sgd", model="digits_mlp") / "checkpoints" / "sgd.pt"
    assert_one_line_error(
        cli(
            "landscape",
            "plane",
            c / "swa_1.pt",
            c / "swa_1.25.pt",
            mlp,
            "--out",
            tmp_path,
            "--test-images",
            "10",
            "--train-images",
            "10",
        ),
        "sgd.pt",
        "not weights of this run's model",
    )
    assert not any(tmp_path.glob("*.png"))


def test_figures_are_written_atomically(finished, tmp_path, monkeypatch):
    import swa_bench.figures.output as output

    written = []
    atomic = output.__dict__.get("save_figure")
    from swa_bench import record_files

    real = record_files.atomic_write_bytes
    monkeypatch.setattr(record_files, "atomic_write_bytes", lambda path, data: written.append(path) or real(path, data))
    result = cli(
        "landscape",
        "line",
        "--swa",
        run_dir(finished, "swa"),
        "--sgd",
        run_dir(finished, "sgd"),
        "--out",
        tmp_path,
        "--points",
        "3",
        "--test-images",
        "20",
        "--train-images",
        "20",
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    assert atomic is not None and {".png", ".pdf", ".csv"} <= {p.suffix for p in written}
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_run_made_from_one_kind_of_files_is_not_continued_or_reported_from_another(
    tmp_path, tiny_cifar10, tiny_imagefolder
):
    """data.path is a runtime key (the files may move), so the same --out with the JPEG copy's
    ImageFolder tree and then torchvision's files would otherwise find "the same" run finished."""
    out = tmp_path / "runs"
    args = [
        "--config",
        REPO / "configs/mini/preresnet20_ratio0.5.yaml",
        "--method",
        "sgd",
        "--out",
        out,
        "--budget-scale",
        "0.01",
        "--set",
        "data.train_subset=20",
        "--set",
        "data.verify_checksums=false",
        "--device",
        "cpu",
        "--quiet",
    ]
    first = cli("train", *args, "--data-path", tiny_imagefolder)
    assert first.exit_code == 0, first.output
    again = cli("train", *args, "--data-path", tiny_cifar10)
    assert_one_line_error(again, "made from imagefolder files", "the data now given are torchvision files")
    # An SWA continuation of it is refused the same way.
    swa = cli(
        "train",
        *args[:3],
        "swa",
        *args[4:],
        "--data-path",
        tiny_cifar10,
        "--config",
        REPO / "configs/mini-experiments/preresnet20_finetune.yaml",
    )
    assert swa.exit_code != 0 and "imagefolder" in swa.output, swa.output
