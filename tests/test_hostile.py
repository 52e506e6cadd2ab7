"""A corpus of hostile inputs: configs and overrides, data sets, damaged run directories, and kills
inside each kind of write. Every bad input must end in exit status 2 with one line naming the file,
key or path, no traceback, nothing left behind and nothing created outside --out; every kill must
resume to records whose implied files all exist and verify."""

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner
from conftest import CIFAR10_CLASSES, REPO, digits_args, write_cifar10, write_imagefolder

from swa_bench.cli import main
from swa_bench.records import RunRecords, read_checkpoint

DEMO = REPO / "configs/demo/digits.yaml"


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_one_line_error(result, *needles):
    """Exit status 2, exactly one `error:` line holding every needle, and no traceback."""
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    assert "Traceback" not in result.output and len(errors[0]) < 600, result.output
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def train_demo(out, *extra, method="sgd"):
    return cli("train", "--config", DEMO, "--method", method, "--out", out, "--quiet", *extra)


def nothing_left(out: Path) -> bool:
    return not out.exists() or not any(p.is_file() for p in out.rglob("*"))


# --------------------------------------------------------------------------------------------------
# Configs and overrides


def _config(tmp_path, text: str) -> Path:
    path = tmp_path / "hostile.yaml"
    path.write_text(text)
    return path


def _digits_with(replace_from: str, replace_to: str) -> str:
    text = DEMO.read_text()
    assert replace_from in text
    return text.replace(replace_from, replace_to)


ALIAS_BOMB = "".join(f"b{i}: &b{i} [{', '.join([f'*b{i - 1}'] * 10)}]\n" for i in range(1, 9))

CONFIG_CASES = {
    "duplicated section": (_digits_with("optim:\n", "optim:\n  lr_init: 0.1\noptim:\n"), ["optim", "duplicated key"]),
    "duplicated key": (
        _digits_with("  batch_size: 64\n", "  batch_size: 64\n  batch_size: 32\n"),
        ["batch_size", "duplicated key", "lines"],
    ),
    "alias bomb as lr_init": (
        "b0: &b0 [1, 2]\n" + ALIAS_BOMB + DEMO.read_text().replace("lr_init: 0.05", "lr_init: *b8"),
        ["expands to more than"],
    ),
    "NUL in a note": (
        _digits_with("  c_epochs: 1\n", '  c_epochs: 1\n  note: "a\\0b"\n'),
        ["swa.note", "control character"],
    ),
    "newline in a variant": (
        _digits_with("  c_epochs: 1\n", '  c_epochs: 1\n  variant: "a\\nb"\n'),
        ["swa.variant", "control character"],
    ),
    "huge crop padding": (_digits_with("crop_padding: 1", "crop_padding: 1000000"), ["data.crop_padding", "at most"]),
    "zero width": (_digits_with("width: 32", "width: 0"), ["model.options.width", "between 1 and 4096"]),
    "negative width": (_digits_with("width: 32", "width: -1"), ["model.options.width"]),
    "huge width": (_digits_with("width: 32", "width: 100000"), ["model.options.width", "between 1 and 4096"]),
    "huge batch": (_digits_with("batch_size: 64", "batch_size: 100000000"), ["optim.batch_size", "at most"]),
    "image size the model cannot take": (
        _digits_with("  workers: 0\n", "  workers: 0\n  image_size: 64\n"),
        ["64x64", "digits_cnn takes 8x8"],
    ),
}


@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_hostile_config_is_one_line(tmp_path, case):
    text, needles = CONFIG_CASES[case]
    path = _config(tmp_path, text)
    out = tmp_path / "out"
    began = time.time()
    result = cli("train", "--config", path, "--method", "sgd", "--out", out, "--quiet", "--budget-scale", "0.05")
    assert_one_line_error(result, *needles)
    assert time.time() - began < 60  # refused, not ground through
    assert nothing_left(out)


OVERRIDE_CASES = {
    "negative seed": (["--seed", "-1"], ["run.seed", "non-negative"]),
    "nested 40000 deep": (["--set", "optim.lr_init=" + "[" * 40000], ["optim.lr_init", "nested too deeply"]),
    "alias bomb in --set": (
        [
            "--set",
            "data.mean=[&a [1,1,1,1,1,1,1,1,1,1], &b ["
            + ",".join(["*a"] * 10)
            + "], &c ["
            + ",".join(["*b"] * 10)
            + "], &d ["
            + ",".join(["*c"] * 10)
            + "], ["
            + ",".join(["*d"] * 10)
            + "]]",
        ],
        ["expands to more than"],
    ),
    "long garbage value": (["--set", "optim.lr_init=" + "x" * 100000], ["optim.lr_init", "..."]),
    "control character in a key": (["--set", "optim.lr\x01init=0.1"], ["unknown key"]),
    "train subset larger than the data": (["--set", "data.train_subset=5000"], ["data.train_subset=5000 exceeds"]),
    "method missing": ([], ["--method"]),
}


@pytest.mark.parametrize("case", sorted(OVERRIDE_CASES))
def test_hostile_override_is_one_line(tmp_path, case):
    extra, needles = OVERRIDE_CASES[case]
    out = tmp_path / "out"
    method = [] if case == "method missing" else ["--method", "sgd"]
    result = cli("train", "--config", DEMO, *method, "--out", out, "--quiet", "--budget-scale", "0.05", *extra)
    assert_one_line_error(result, *needles)
    assert nothing_left(out)


def test_grid_refuses_absurd_seed_counts_at_once(tmp_path):
    began = time.time()
    result = cli("grid", "--table", "demo", "--seeds", "100000000", "--out", tmp_path, "--dry-run")
    assert_one_line_error(result, "--seeds")
    assert time.time() - began < 10


def test_a_pipe_in_a_note_does_not_break_the_markdown_table(tmp_path):
    assert train_demo(tmp_path, "--budget-scale", "0.05", "--set", "swa.note=a | b", method="swa").exit_code == 0
    table = cli("table", tmp_path)
    assert table.exit_code == 0, table.output
    header = next(line for line in table.output.splitlines() if line.startswith("| model"))
    body = [line for line in table.output.splitlines() if line.startswith("| digits")]
    assert body and all(line.replace("\\|", "").count("|") == header.count("|") for line in body)


# --------------------------------------------------------------------------------------------------
# Data sets


def test_crafted_cifar_pickle_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    root = tmp_path / "data"
    write_cifar10(root)
    (root / "cifar-10-batches-py" / "data_batch_1").write_bytes(pickle.dumps({"data": Payload(), "labels": []}, 2))
    out = tmp_path / "out"
    result = cli(
        "train",
        "--config",
        REPO / "configs/cifar10/vgg16.yaml",
        "--method",
        "sgd",
        "--data-path",
        root,
        "--out",
        out,
        "--set",
        "data.verify_checksums=false",
        "--budget-scale",
        "0.005",
        "--quiet",
    )
    assert_one_line_error(result, "data_batch_1", "refused to unpickle", "posix.system")
    assert not marker.exists()  # the payload never ran
    assert nothing_left(out)


def test_real_format_cifar_batches_still_read_with_the_restricted_unpickler(tmp_path):
    from swa_bench.config import load_config
    from swa_bench.data import build_datasets

    written = write_cifar10(tmp_path / "data")
    cfg = load_config(
        REPO / "configs/cifar10/vgg16.yaml", {"data.path": str(tmp_path / "data"), "data.verify_checksums": False}
    ).data
    data = build_datasets(cfg, progress=False)
    first = written["train_data"][0].reshape(3, 32, 32).transpose(1, 2, 0)
    assert np.array_equal(data.train.images[0], first) and len(data.train) == 100


def test_a_directory_link_that_loops_does_not_multiply_images(tmp_path):
    from swa_bench.config import load_config
    from swa_bench.data import build_datasets

    root = tmp_path / "folder"
    write_imagefolder(root, CIFAR10_CLASSES, n_train=2, n_test=1)
    os.symlink(root / "train" / "cat", root / "train" / "cat" / "loop")  # cat/loop -> cat
    cfg = load_config(REPO / "configs/cifar10/vgg16.yaml", {"data.path": str(root)}).data
    data = build_datasets(cfg, progress=False)
    assert len(data.train) == 2 * len(CIFAR10_CLASSES)


@pytest.mark.parametrize("config,size", [("cifar10/vgg16", 64), ("cifar10/shakeshake26_2x64d", 40)])
def test_images_of_another_size_than_the_row_takes_are_refused(tmp_path, config, size):
    root = tmp_path / "folder"
    write_imagefolder(root, CIFAR10_CLASSES, n_train=1, n_test=1, size=size)
    out = tmp_path / "out"
    result = cli(
        "train",
        "--config",
        REPO / f"configs/{config}.yaml",
        "--method",
        "sgd",
        "--data-path",
        root,
        "--out",
        out,
        "--budget-scale",
        "0.005",
        "--quiet",
    )
    assert_one_line_error(result, str(root), f"{size}x{size}", "takes 32x32")
    assert nothing_left(out)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads unreadable directories")
def test_an_unreadable_data_directory_is_one_line(tmp_path):
    root = tmp_path / "folder"
    write_imagefolder(root, CIFAR10_CLASSES, n_train=1, n_test=1)
    (root / "train").chmod(0)
    try:
        result = cli(
            "train",
            "--config",
            REPO / "configs/cifar10/vgg16.yaml",
            "--method",
            "sgd",
            "--data-path",
            root,
            "--out",
            tmp_path / "out",
            "--budget-scale",
            "0.005",
            "--quiet",
        )
    finally:
        (root / "train").chmod(0o755)
    assert_one_line_error(result, "cannot read")


# --------------------------------------------------------------------------------------------------
# Damaged run directories


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished SWA demo run, to copy and damage."""
    out = tmp_path_factory.mktemp("finished")
    assert train_demo(out, "--budget-scale", "0.25", method="swa").exit_code == 0
    return next(out.rglob("summary.json")).parent


def _copy(finished, tmp_path) -> Path:
    """A copy of the finished run under tmp_path/out, at the same place in the tree."""
    target = tmp_path / "out" / finished.relative_to(finished.parents[3])
    target.parent.mkdir(parents=True)
    subprocess.run(["cp", "-r", str(finished), str(target)], check=True)
    return target


def test_a_damaged_metrics_row_is_never_dropped_silently(finished, tmp_path):
    run = _copy(finished, tmp_path)
    (run / "summary.json").unlink()
    lines = (run / "metrics.jsonl").read_text().splitlines(keepends=True)
    lines[4] = lines[4].replace('"epoch"', '"epo#ch"', 1)  # one damaged row in the middle
    (run / "metrics.jsonl").write_text("".join(lines))
    before = (run / "metrics.jsonl").read_bytes()
    status = cli("status", tmp_path / "out")
    assert status.exit_code == 0 and "metrics.jsonl: line 5 is damaged" in status.output, status.output
    result = train_demo(tmp_path / "out", "--budget-scale", "0.25", method="swa")
    assert_one_line_error(result, "metrics.jsonl: line 5 is damaged")
    assert (run / "metrics.jsonl").read_bytes() == before  # nothing rewritten from a partial read


def test_summary_results_come_from_the_run_state(finished):
    state = read_checkpoint(finished / "checkpoints" / "last.pt")
    summary = json.loads((finished / "summary.json").read_text())
    assert {c: v["acc"] for c, v in state["reported"].items()} == summary["results"]
    assert {c: v["nll"] for c, v in state["reported"].items()} == summary["results_nll"]


SUMMARY_DAMAGE = {
    "binary": b"\x00\xff\xfe",
    "a list": b"[1, 2]",
    "null": b"null",
    "no dataset": None,
    "a string result": None,
}


@pytest.mark.parametrize("damage", sorted(SUMMARY_DAMAGE))
def test_table_and_status_skip_a_foreign_summary(finished, tmp_path, damage):
    run = _copy(finished, tmp_path)
    summary = json.loads((run / "summary.json").read_text())
    if damage == "no dataset":
        del summary["dataset"]
        (run / "summary.json").write_text(json.dumps(summary))
    elif damage == "a string result":
        summary["results"]["swa_1"] = "high"
        (run / "summary.json").write_text(json.dumps(summary))
    else:
        (run / "summary.json").write_bytes(SUMMARY_DAMAGE[damage])
    table = cli("table", tmp_path / "out")  # the only run is skipped: "no finished runs yet", status 1
    assert table.exit_code == 1 and "skipped" in table.output and "Traceback" not in table.output, table.output
    status = cli("status", tmp_path / "out")
    assert status.exit_code == 0 and "damaged" in status.output and "Traceback" not in status.output, status.output


@pytest.mark.parametrize(
    "file,content",
    [
        ("config.yaml", "- a\n- b\n"),
        ("config.yaml", "\x00garbage: ["),
        ("metrics.jsonl", '[1, 2]\n{"epoch": 1, "seconds": "x"}\n'),
        ("failure.json", "[1]"),
        ("../../../../grid.json", "[1, 2]"),
        ("../../../../grid.json", '{"runs": [], "unplanned": [{"method": "sgd"}]}'),
    ],
)
def test_status_reads_damaged_records_without_a_traceback(finished, tmp_path, file, content):
    run = _copy(finished, tmp_path)
    (run / "summary.json").unlink()
    (run / file).write_text(content)
    status = cli("status", tmp_path / "out")
    assert status.exit_code == 0 and "Traceback" not in status.output, status.output


def test_a_finished_run_without_its_weights_is_flagged(finished, tmp_path):
    run = _copy(finished, tmp_path)
    (run / "checkpoints" / "swa_1.pt").unlink()
    status = cli("status", tmp_path / "out")
    assert "damaged" in status.output and "swa_1" in status.output, status.output
    table = cli("table", tmp_path / "out")
    assert table.exit_code == 0 and "the weights behind swa_1 are missing" in table.output, table.output


@pytest.mark.parametrize("damage", ["a list", "no model", "an empty sidecar"])
def test_landscape_refuses_a_damaged_weights_file_in_one_line(finished, tmp_path, damage):
    run = _copy(finished, tmp_path)
    weights = run / "checkpoints" / "swa_1.5.pt"
    if damage == "an empty sidecar":
        (run / "checkpoints" / "swa_1.5.pt.sha256").write_text("")
    else:
        torch.save([1, 2] if damage == "a list" else {"epoch": 1}, weights)
        (run / "checkpoints" / "swa_1.5.pt.sha256").unlink()
    sgd = run.parent.parent / "sgd" / run.name  # an undamaged stand-in for the SGD run
    sgd.parent.mkdir()
    subprocess.run(["cp", "-r", str(finished), str(sgd)], check=True)
    config = yaml.safe_load((sgd / "config.yaml").read_text())
    config["config"]["run"]["method"] = "sgd"
    (sgd / "config.yaml").write_text(yaml.safe_dump(config))
    result = cli("landscape", "line", "--swa", run, "--sgd", sgd, "--points", "2", "--out", tmp_path / "fig", "--quiet")
    assert_one_line_error(result, str(run), "swa_1.5.pt")


def test_weights_option_pointing_to_a_saved_list_is_one_line(tmp_path):
    from conftest import write_imagenet

    data = write_imagenet(tmp_path / "imagenet")
    path = tmp_path / "list.pth"
    torch.save([1, 2, 3], path)
    result = cli(
        "train",
        "--config",
        REPO / "configs/imagenet/resnet50.yaml",
        "--method",
        "sgd",
        "--data-path",
        data,
        "--weights",
        path,
        "--out",
        tmp_path / "out",
        "--set",
        "model.name=resnet18",
        "--set",
        "data.num_classes=4",
        "--set",
        "model.verify_weights=false",
        "--quiet",
    )
    assert_one_line_error(result, "list.pth", "not a state_dict")


# --------------------------------------------------------------------------------------------------
# Kills inside each kind of write


def _command(out, *extra):
    return [sys.executable, "-m", "swa_bench", *digits_args(out, "swa", *extra)]


def _assert_complete(run: Path, reference: Path):
    """Every file the summary implies exists and verifies, and the results are the uninterrupted run's."""
    summary = json.loads((run / "summary.json").read_text())
    for column in summary["results"]:
        state = read_checkpoint(run / "checkpoints" / f"{column}.pt")
        assert state["column"] == column
    assert summary["results"] == json.loads((reference / "summary.json").read_text())["results"]
    rows = [{k: v for k, v in r.items() if k != "seconds"} for r in RunRecords(run).read_metrics()]
    assert rows == [{k: v for k, v in r.items() if k != "seconds"} for r in RunRecords(reference).read_metrics()]


@pytest.mark.parametrize("target", [".swa_1.pt.", ".sgd.pt.", ".summary.json.", ".last.pt."])
def test_a_kill_inside_a_write_resumes_to_complete_records(finished, tmp_path, target):
    method_swa = target != ".sgd.pt."
    out = tmp_path / "killed"
    command = _command(out) if method_swa else [c if c != "swa" else "sgd" for c in _command(out)]
    env = {**os.environ, "SWA_BENCH_WRITE_PAUSE": "0.3"}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, hit = time.time() + 180, False
    while proc.poll() is None and time.time() < deadline and not hit:
        hit = any(p.name.startswith(target) and p.name.endswith(".tmp") for p in out.rglob(".*.tmp"))
        time.sleep(0.005)
    assert hit, f"no {target} write was seen"
    proc.kill()
    proc.wait()
    subprocess.run(command, check=True, capture_output=True)
    run = next(out.rglob("summary.json")).parent
    if method_swa:
        _assert_complete(run, finished)
    else:
        summary = json.loads((run / "summary.json").read_text())
        assert read_checkpoint(run / "checkpoints" / "sgd.pt")["column"] == "sgd" and "sgd" in summary["results"]


def test_a_killed_run_with_loader_workers_can_be_rerun_at_once(tmp_path):
    """DataLoader workers outlive a SIGKILLed run for a moment; they must not hold its lock."""
    out = tmp_path / "out"
    command = _command(out, "--set", "data.loader=torch", "--set", "data.workers=2")
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while (
        proc.poll() is None
        and time.time() < deadline
        and not any(p.read_text().count("\n") >= 1 for p in out.rglob("metrics.jsonl"))
    ):
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)  # the main process only: its workers live on for a moment
    proc.wait()
    again = subprocess.run(command, capture_output=True, text=True)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "in use by" not in again.stdout + again.stderr


@pytest.mark.parametrize(
    "content,needle",
    [
        (b"\x00\xffgarbage,,\n1,2\n", "not a readable paper CSV"),
        (b"a,b\n1,2\n", "no column 'dataset'"),
        (
            b"dataset,model,budget,column,mean,std\ncifar10,vgg16,200,sgd,high,0\n",
            "'mean' holds values that are not numbers",
        ),
    ],
)
def test_a_garbage_paper_csv_is_one_line(finished, tmp_path, content, needle):
    papers = tmp_path / "paper"
    papers.mkdir()
    (papers / "cifar.csv").write_bytes(content)
    assert_one_line_error(cli("table", finished.parents[3], "--paper-dir", papers), "cifar.csv", needle)
