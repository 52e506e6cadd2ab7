"""Config loading: the shipped YAML files, overrides, and one-line errors for malformed configs."""

from __future__ import annotations

import copy
import math
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from swa_bench.cli import main
from swa_bench.config import Config, ConfigError, load_config, parse_set_option

REPO = Path(__file__).resolve().parent.parent
CONFIG_DIR = REPO / "configs"
ALL_CONFIGS = sorted(CONFIG_DIR.rglob("*.yaml"))
BASE_CONFIG = CONFIG_DIR / "cifar10" / "vgg16.yaml"

VGG_MEAN = (0.485, 0.456, 0.406)
VGG_STD = (0.229, 0.224, 0.225)
RES_MEAN = (0.4914, 0.4822, 0.4465)
RES_STD = (0.2023, 0.1994, 0.2010)

# docs/PROTOCOL.md §2, per-row settings: budget, lr_init, swa_lr, swa_start, weight decay, augment order, mean, std.
PROTOCOL_ROWS = {
    "cifar10/vgg16": (200, 0.05, 0.01, 161, 5e-4, ("flip", "crop"), VGG_MEAN, VGG_STD),
    "cifar100/vgg16": (200, 0.05, 0.01, 161, 5e-4, ("flip", "crop"), VGG_MEAN, VGG_STD),
    "cifar10/preresnet164": (150, 0.1, 0.01, 126, 3e-4, ("crop", "flip"), RES_MEAN, RES_STD),
    "cifar100/preresnet164": (150, 0.1, 0.05, 126, 3e-4, ("crop", "flip"), RES_MEAN, RES_STD),
    # PreResNet-110: the reference README's row, same settings as PreResNet-164.
    "cifar10/preresnet110": (150, 0.1, 0.01, 126, 3e-4, ("crop", "flip"), RES_MEAN, RES_STD),
    "cifar100/preresnet110": (150, 0.1, 0.05, 126, 3e-4, ("crop", "flip"), RES_MEAN, RES_STD),
    "cifar10/wrn28x10": (200, 0.1, 0.05, 161, 5e-4, ("crop", "flip"), RES_MEAN, RES_STD),
    "cifar100/wrn28x10": (200, 0.1, 0.05, 161, 5e-4, ("crop", "flip"), RES_MEAN, RES_STD),
}


def _rel(path: Path) -> str:
    return path.relative_to(CONFIG_DIR).with_suffix("").as_posix()


# --------------------------------------------------------------------------------------------------
# The shipped configs


def test_config_dir_has_every_row():
    names = {_rel(p) for p in ALL_CONFIGS}
    assert set(PROTOCOL_ROWS) <= names
    assert "demo/digits" in names


@pytest.mark.parametrize("path", ALL_CONFIGS, ids=_rel)
def test_shipped_config_loads(path):
    cfg = load_config(path)
    assert isinstance(cfg, Config)
    mini = path.parent.name.startswith("mini")  # the miniature and the experiments beside it
    reduced = mini or path.parent.name.startswith("cpu")  # ... and the full-size CPU experiment: not paper rows
    expected_dataset = {
        "demo": "digits",
        "mini": "cifar10",
        "mini-experiments": "cifar10",
        "cpu": "cifar10",
        "cpu-experiments": "cifar10",
    }.get(path.parent.name, path.parent.name)
    assert cfg.data.dataset == expected_dataset
    assert cfg.optim.momentum == 0.9
    # One model collected per epoch, except the paper's cycles of the PyramidNet (3) and Shake-Shake (100) rows.
    assert cfg.swa.c_epochs == {"pyramidnet272": 3, "shakeshake26_2x64d": 100}.get(cfg.model.name, 1)
    assert cfg.schedule.eval_every == (30 if mini else 5)  # the miniature evaluates less often, for time
    if cfg.swa.start_from == "scratch":  # the common reference protocol of docs/PROTOCOL.md §2
        assert cfg.optim.nesterov is False
        assert cfg.swa.budgets == (1.0, 1.25, 1.5)
        assert cfg.schedule.type == "linear" and cfg.schedule.sgd_final_ratio == 0.01
        assert cfg.swa.lr_schedule == "constant" and (cfg.swa.note is None) != reduced
    # The resolved config is plain data (lists, not tuples).
    plain = cfg.to_dict()
    assert plain["swa"]["budgets"] == list(cfg.swa.budgets)
    assert isinstance(plain["data"]["mean"], list)


PYRAMID_MEAN = tuple(v / 255 for v in (125.3, 123.0, 113.9))
PYRAMID_STD = tuple(v / 255 for v in (63.0, 62.1, 66.7))


@pytest.mark.parametrize(
    "row",
    ["cifar100/pyramidnet272", "cifar10/pyramidnet272", "cifar10/shakeshake26_2x64d", "cifar100/shakeshake26_2x64d"],
)
def test_continuation_rows_follow_spec(row):
    """docs/PROTOCOL.md §2: the original authors' SGD recipes, then SWA continued with a cyclical rate for 0.25 B
    and 0.5 B more epochs, at the SWA paper's cyclical settings (arXiv v1), the notes citing it."""
    cfg = load_config(CONFIG_DIR / f"{row}.yaml")
    o, s, w = cfg.optim, cfg.schedule, cfg.swa
    assert (o.momentum, o.nesterov, o.weight_decay, o.batch_size) == (0.9, True, 1e-4, 128)
    assert cfg.data.mean == pytest.approx(PYRAMID_MEAN, abs=1e-8) and cfg.data.std == pytest.approx(
        PYRAMID_STD, abs=1e-8
    )
    if "pyramidnet" in row:
        assert s.budget == 300 and s.type == "step" and s.milestones == (150, 225) and s.gamma == 0.1
        assert o.lr_init == (0.5 if row.startswith("cifar100") else 0.1)
        assert cfg.model.options == {}  # alpha 200, depth 272, ShakeDrop off by default
    else:
        assert s.budget == 1800 and s.type == "cosine" and s.final_lr == 0.0 and o.lr_init == 0.2
    assert w.start_from == "sgd_run" and w.lr_schedule == "cyclical" and w.budgets == (1.25, 1.5)
    if row == "cifar100/pyramidnet272":
        assert (w.alpha1, w.alpha2, w.c_epochs) == (0.05, 0.001, 3)  # the paper's
    elif "pyramidnet" in row:  # the CIFAR-10 row: the paper's, scaled from lr_init 0.5 to its 0.1
        assert (w.alpha1, w.alpha2, w.c_epochs) == (pytest.approx(0.05 / 5), pytest.approx(0.001 / 5), 3)
    else:  # the SGD cosine's rates at epochs 1600 and 1700, a cycle of 100 epochs (linear in between)
        rates = tuple(0.1 * (1 + math.cos(math.pi * epoch / 1800)) for epoch in (1600, 1700))
        assert (w.alpha1, w.alpha2) == pytest.approx(rates, rel=1e-4) and w.c_epochs == 100
    assert "SWA paper" in w.note and "arXiv v1" in w.note and "chosen here, not taken" not in w.note


def test_include_start_is_refused_from_scratch_only(tmp_path):
    """From scratch the start point is the random initial weights: averaging them in is refused, naming
    the key. A continuation's start point (the SGD run's end, pretrained weights) may join the average."""
    with pytest.raises(ConfigError) as refused:
        load_config(BASE_CONFIG, {"swa.include_start": True})
    _assert_one_line_error(str(refused.value), BASE_CONFIG, "swa.include_start")
    assert "random initial weights" in str(refused.value)
    assert load_config(CONFIG_DIR / "cifar100/pyramidnet272.yaml", {"swa.include_start": True}).swa.include_start


@pytest.mark.parametrize("row", sorted(PROTOCOL_ROWS))
def test_shipped_config_matches_spec_row(row):
    budget, lr_init, swa_lr, swa_start, wd, augment, mean, std = PROTOCOL_ROWS[row]
    cfg = load_config(CONFIG_DIR / f"{row}.yaml")
    assert cfg.model.name == row.split("/")[1]
    assert cfg.schedule.budget == budget
    assert cfg.optim.lr_init == pytest.approx(lr_init)
    assert cfg.swa.lr == pytest.approx(swa_lr)
    assert cfg.swa.start == swa_start
    assert cfg.optim.weight_decay == pytest.approx(wd)
    assert cfg.optim.batch_size == 128
    assert cfg.data.augment == augment
    assert cfg.data.crop_padding == 4
    assert cfg.data.mean == pytest.approx(mean)
    assert cfg.data.std == pytest.approx(std)


def test_spec_values_named_in_brief():
    assert load_config(CONFIG_DIR / "cifar10/preresnet164.yaml").swa.lr == 0.01
    assert load_config(CONFIG_DIR / "cifar100/preresnet164.yaml").swa.lr == 0.05
    vgg = load_config(CONFIG_DIR / "cifar10/vgg16.yaml")
    assert (vgg.optim.lr_init, vgg.optim.weight_decay, vgg.swa.start, vgg.schedule.budget) == (0.05, 5e-4, 161, 200)
    assert isinstance(vgg.optim.weight_decay, float)
    assert vgg.data.augment == ("flip", "crop")


def test_config_round_trips_through_yaml(tmp_path):
    cfg = load_config(BASE_CONFIG)
    path = tmp_path / "resolved.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    assert load_config(path) == cfg


def test_float_written_without_dot_is_a_number(tmp_path):
    raw = _base_raw()
    raw_text = yaml.safe_dump(raw).replace("weight_decay: 0.0005", "weight_decay: 5e-4")
    assert "weight_decay: 5e-4" in raw_text
    path = tmp_path / "c.yaml"
    path.write_text(raw_text)
    assert load_config(path).optim.weight_decay == 5e-4


def test_config_is_frozen():
    cfg = load_config(BASE_CONFIG)
    with pytest.raises(AttributeError):
        cfg.optim.lr_init = 1.0  # type: ignore[misc]


# --------------------------------------------------------------------------------------------------
# Overrides


def test_overrides_apply_dotted_keys():
    cfg = load_config(
        BASE_CONFIG,
        {"optim.lr_init": 0.1, "run.method": "swa", "run.seed": 3, "data.train_subset": 5000, "data.path": "/x"},
    )
    assert cfg.optim.lr_init == 0.1
    assert cfg.run.method == "swa"
    assert cfg.run.seed == 3
    assert cfg.data.train_subset == 5000
    assert cfg.data.path == "/x"
    # Untouched keys keep the file's values.
    assert cfg.swa.lr == 0.01 and cfg.schedule.budget == 200


def test_override_into_model_options():
    cfg = load_config(CONFIG_DIR / "cifar10/wrn28x10.yaml", {"model.options.final_bn_momentum": 0.1})
    assert cfg.model.options == {"final_bn_momentum": 0.1}


def test_overrides_are_validated():
    with pytest.raises(ConfigError, match=r"optim\.lr_init"):
        load_config(BASE_CONFIG, {"optim.lr_init": -1.0})
    with pytest.raises(ConfigError, match=r"optim\.lrr"):
        load_config(BASE_CONFIG, {"optim.lrr": 0.1})


def test_override_inside_a_scalar_is_an_error():
    with pytest.raises(ConfigError) as info:
        load_config(BASE_CONFIG, {"optim.lr_init.x": 1})
    assert "optim.lr_init.x" in str(info.value)
    assert str(info.value).startswith(str(BASE_CONFIG))


@pytest.mark.parametrize(
    "item, key, value",
    [
        ("a.b=0.1", "a.b", 0.1),
        ("optim.lr_init=1e-3", "optim.lr_init", "1e-3"),  # YAML 1.1: a string, accepted later as a float
        ("data.train_subset=5000", "data.train_subset", 5000),
        ("data.train_subset=null", "data.train_subset", None),
        ("data.train_subset=", "data.train_subset", None),
        ("optim.nesterov=true", "optim.nesterov", True),
        ("data.download=false", "data.download", False),
        ("run.device=cpu", "run.device", "cpu"),
        ("swa.budgets=[1.0, 2.0]", "swa.budgets", [1.0, 2.0]),
        (" run.seed = 7", "run.seed", 7),
    ],
)
def test_parse_set_option(item, key, value):
    got_key, got_value = parse_set_option(item)
    assert got_key == key
    assert got_value == value
    assert type(got_value) is type(value)


def test_parse_set_option_without_equals():
    with pytest.raises(ConfigError, match="expected dotted.key=value"):
        parse_set_option("optim.lr_init")


def test_set_option_float_text_reaches_config():
    key, value = parse_set_option("optim.lr_init=1e-3")
    assert load_config(BASE_CONFIG, {key: value}).optim.lr_init == pytest.approx(1e-3)


# --------------------------------------------------------------------------------------------------
# Malformed configs: one ConfigError line, starting with the file path, naming the dotted key.


def _base_raw() -> dict:
    return yaml.safe_load(BASE_CONFIG.read_text())


def _edit(fn):
    def make() -> str:
        raw = copy.deepcopy(_base_raw())
        fn(raw)
        return yaml.safe_dump(raw, sort_keys=False)

    return make


def _set(key, value):
    def fn(raw):
        node = raw
        *parents, last = key.split(".")
        for part in parents:
            node = node[part]
        node[last] = value

    return _edit(fn)


def _delete(key):
    def fn(raw):
        node = raw
        *parents, last = key.split(".")
        for part in parents:
            node = node[part]
        del node[last]

    return _edit(fn)


def _text(text):
    return lambda: text


# (id, file text maker, the dotted key the message must name or None)
MALFORMED = [
    ("unknown-top-level-key", _set("trainer", {"epochs": 3}), "trainer"),
    ("unknown-nested-key", _set("optim.lr", 0.1), "optim.lr"),
    ("unknown-run-key", _set("run", {"seeds": 3}), "run.seeds"),
    ("string-lr", _set("optim.lr_init", "fast"), "optim.lr_init"),
    ("list-budget", _set("schedule.budget", [200, 300]), "schedule.budget"),
    ("float-batch-size", _set("optim.batch_size", 128.0), "optim.batch_size"),
    ("bool-for-int", _set("schedule.eval_every", True), "schedule.eval_every"),
    ("int-for-bool", _set("optim.nesterov", 1), "optim.nesterov"),
    ("string-for-list", _set("swa.budgets", "1.0"), "swa.budgets"),
    ("section-not-mapping", _set("optim", [0.05, 5e-4]), "optim"),
    ("missing-model-name", _delete("model.name"), "model.name"),
    ("missing-lr-init", _delete("optim.lr_init"), "optim.lr_init"),
    ("missing-budget", _delete("schedule.budget"), "schedule.budget"),
    ("missing-section", _delete("swa"), "swa"),
    ("negative-lr", _set("optim.lr_init", -0.1), "optim.lr_init"),
    ("zero-lr-swa", _set("swa.lr", 0.0), "swa.lr"),
    ("zero-budget", _set("schedule.budget", 0), "schedule.budget"),
    ("swa-start-beyond-budget", _set("swa.start", 201), "swa.start"),
    ("budgets-not-increasing", _set("swa.budgets", [1.0, 1.5, 1.25]), "swa.budgets"),
    ("budgets-repeated", _set("swa.budgets", [1.0, 1.0]), "swa.budgets"),
    ("budgets-empty", _set("swa.budgets", []), "swa.budgets"),
    ("misspelt-model", _set("model.name", "vgg61"), "model.name"),
    ("misspelt-dataset", _set("data.dataset", "cifar-10"), "data.dataset"),
    ("misspelt-augment", _set("data.augment", ["flip", "crpo"]), "data.augment"),
    ("repeated-augment", _set("data.augment", ["flip", "flip"]), "data.augment"),
    ("wrong-mean-length", _set("data.mean", [0.5, 0.5]), "data.mean"),
    ("zero-std", _set("data.std", [0.2, 0.0, 0.2]), "data.std"),
    ("unknown-model-option", _set("model.options", {"depth": 19}), "model.options.depth"),
    ("model-for-other-dataset", _set("model.name", "digits_cnn"), "model.name"),
    ("huge-budget", _set("schedule.budget", 1_000_000_000), "schedule.budget"),
    ("huge-budget-float-text", _text(_set("schedule.budget", "@")().replace("'@'", "1e9")), "schedule.budget"),
    ("momentum-one", _set("optim.momentum", 1.0), "optim.momentum"),
    ("momentum-above-one", _set("optim.momentum", 1.5), "optim.momentum"),
    ("nesterov-without-momentum", _edit(lambda r: r["optim"].update(nesterov=True, momentum=0.0)), "optim.nesterov"),
    ("negative-weight-decay", _set("optim.weight_decay", -5e-4), "optim.weight_decay"),
    ("sgd-final-ratio-zero", _set("schedule.sgd_final_ratio", 0.0), "schedule.sgd_final_ratio"),
    ("zero-train-subset", _set("data.train_subset", 0), "data.train_subset"),
    ("bad-method", _set("run", {"method": "adam"}), "run.method"),
    ("bad-budget-scale", _set("run", {"budget_scale": 0.0}), "run.budget_scale"),
    ("nan-lr", _text(_set("optim.lr_init", "@")().replace("'@'", ".nan")), "optim.lr_init"),
    ("inf-swa-lr", _text(_set("swa.lr", "@")().replace("'@'", ".inf")), "swa.lr"),
    ("missing-swa-lr", _delete("swa.lr"), "swa.lr"),
    ("bad-schedule-type", _set("schedule.type", "exponential"), "schedule.type"),
    ("step-without-milestones", _set("schedule.type", "step"), "schedule.milestones"),
    (
        "milestone-beyond-budget",
        _edit(lambda r: r["schedule"].update(type="step", milestones=[100, 250])),
        "schedule.milestones",
    ),
    (
        "milestones-decreasing",
        _edit(lambda r: r["schedule"].update(type="step", milestones=[150, 100])),
        "schedule.milestones",
    ),
    ("gamma-above-one", _set("schedule.gamma", 2.0), "schedule.gamma"),
    ("cosine-floor-above-lr", _edit(lambda r: r["schedule"].update(type="cosine", final_lr=1.0)), "schedule.final_lr"),
    ("bad-swa-schedule", _set("swa.lr_schedule", "triangular"), "swa.lr_schedule"),
    ("cyclical-without-alphas", _set("swa.lr_schedule", "cyclical"), "swa.alpha1"),
    (
        "alpha2-above-alpha1",
        _edit(lambda r: r["swa"].update(lr_schedule="cyclical", alpha1=0.01, alpha2=0.05)),
        "swa.alpha2",
    ),
    (
        "cycle-longer-than-start",
        _edit(lambda r: r["swa"].update(lr_schedule="cyclical", alpha1=0.05, alpha2=0.01, c_epochs=200)),
        "swa.c_epochs",
    ),
    ("bad-start-from", _set("swa.start_from", "checkpoint"), "swa.start_from"),
    ("include-start-from-scratch", _set("swa.include_start", True), "swa.include_start"),
    ("continuation-with-start", _set("swa.start_from", "sgd_run"), "swa.start"),
    (
        "continuation-reporting-at-one-budget",
        _edit(lambda r: (r["swa"].pop("start"), r["swa"].update(start_from="sgd_run"))),
        "swa.budgets",
    ),
    ("empty-file", _text(""), None),
    ("only-comments", _text("# nothing here\n"), None),
    ("not-yaml", _text("data: [1, 2\nmodel: {name: vgg16\n"), None),
    ("mapping-values-not-allowed", _text("data: dataset: cifar10\n"), None),
    ("top-level-list", _text("- data\n- model\n"), None),
    ("top-level-scalar", _text("just some words\n"), None),
]
MALFORMED_IDS = [m[0] for m in MALFORMED]


def _write(tmp_path: Path, make) -> Path:
    path = tmp_path / "broken.yaml"
    path.write_text(make())
    return path


def _assert_one_line_error(message: str, path: Path, key: str | None) -> None:
    assert "\n" not in message.strip()
    assert message.startswith(f"{path}: ")
    if key is not None:
        # "<path>: <key>: ..." or, for a list item, "<path>: <key>[i]: ..."
        assert re.match(rf"{re.escape(str(path))}: {re.escape(key)}(\[\d+\])?: ", message), message
    assert "Traceback" not in message


def test_malformed_corpus_is_large_enough():
    assert len(MALFORMED) >= 20
    assert len(set(MALFORMED_IDS)) == len(MALFORMED_IDS)


@pytest.mark.parametrize("case", MALFORMED, ids=MALFORMED_IDS)
def test_malformed_config_raises_one_line(tmp_path, case):
    _, make, key = case
    path = _write(tmp_path, make)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    _assert_one_line_error(str(info.value), path, key)


ODD_KEYS = [
    pytest.param(_text(BASE_CONFIG.read_text() + "1: a\nfoo: b\n"), None, id="unknown-keys-of-mixed-types"),
    pytest.param(_text(BASE_CONFIG.read_text() + "null: a\nfoo: b\n"), None, id="null-key"),
    pytest.param(_set("model.options", {"dropout": "lots"}), "model.options.dropout", id="model-option-of-wrong-type"),
]


@pytest.mark.parametrize("make, key", ODD_KEYS)
def test_odd_keys_and_option_types_raise_one_line(tmp_path, make, key):
    path = _write(tmp_path, make)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    _assert_one_line_error(str(info.value), path, key)


def test_nan_lr_is_really_nan_in_yaml(tmp_path):
    # Guard the corpus: `.nan` must reach the loader as a float NaN, not as a string.
    text = MALFORMED[MALFORMED_IDS.index("nan-lr")][1]()
    assert math.isnan(yaml.safe_load(text)["optim"]["lr_init"])


def test_python_object_tag_is_rejected_and_not_executed(tmp_path):
    marker = tmp_path / "executed"
    path = tmp_path / "evil.yaml"
    path.write_text(f'!!python/object/apply:os.system ["touch {marker}"]\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    _assert_one_line_error(str(info.value), path, None)
    assert not marker.exists()


def test_python_object_tag_inside_a_section(tmp_path):
    text = yaml.safe_dump(_base_raw()).replace("lr_init: 0.05", 'lr_init: !!python/object/apply:os.system ["echo hi"]')
    assert "!!python" in text
    path = tmp_path / "evil.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    _assert_one_line_error(str(info.value), path, None)


def test_missing_config_file(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    _assert_one_line_error(str(info.value), path, None)
    assert "not found" in str(info.value)


def test_config_path_is_a_directory(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    _assert_one_line_error(str(info.value), tmp_path, None)


# --------------------------------------------------------------------------------------------------
# The same errors through the CLI: exit code 2, one "error: " line, no traceback.

CLI_CASES = [
    "unknown-nested-key",
    "string-lr",
    "missing-model-name",
    "swa-start-beyond-budget",
    "misspelt-dataset",
    "nan-lr",
    "empty-file",
    "not-yaml",
    "top-level-list",
]


def _run_train(tmp_path: Path, config: Path, *extra: str):
    runner = CliRunner()
    args = ["train", "--config", str(config), "--method", "sgd", "--out", str(tmp_path / "runs"), *extra]
    return runner.invoke(main, args)


def _assert_cli_error(result, *needles: str) -> str:
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0]
    return lines[0]


@pytest.mark.parametrize("case_id", CLI_CASES)
def test_cli_reports_malformed_config(tmp_path, case_id):
    _, make, key = MALFORMED[MALFORMED_IDS.index(case_id)]
    path = _write(tmp_path, make)
    result = _run_train(tmp_path, path)
    line = _assert_cli_error(result, str(path))
    assert line.startswith(f"error: {path}: ")
    if key is not None:
        assert key in line
    assert not (tmp_path / "runs").exists()


def test_cli_set_unknown_key(tmp_path):
    result = _run_train(tmp_path, BASE_CONFIG, "--set", "optim.lrr=0.1")
    _assert_cli_error(result, "optim.lrr", "unknown key")
    assert not (tmp_path / "runs").exists()


def test_cli_set_bad_value(tmp_path):
    result = _run_train(tmp_path, BASE_CONFIG, "--set", "optim.momentum=1")
    _assert_cli_error(result, "optim.momentum")


def test_cli_set_without_equals(tmp_path):
    result = _run_train(tmp_path, BASE_CONFIG, "--set", "optim.lr_init")
    _assert_cli_error(result, "optim.lr_init")


def test_cli_missing_config_file(tmp_path):
    path = tmp_path / "absent.yaml"
    result = _run_train(tmp_path, path)
    _assert_cli_error(result, str(path))


def test_miniature_keeps_the_papers_rules_at_a_smaller_scale():
    """configs/mini: the PreResNet-164 CIFAR-10 recipe, SWA from 126/150 of B, both swa_lr rules."""
    row = load_config(REPO / "configs/cifar10/preresnet164.yaml")
    minis = {p.stem: load_config(p) for p in sorted((REPO / "configs/mini").glob("*.yaml"))}
    assert set(minis) == {"preresnet20_ratio0.1", "preresnet20_ratio0.5"}
    for name, cfg in minis.items():
        assert cfg.optim == row.optim and cfg.data.augment == row.data.augment and cfg.data.mean == row.data.mean
        assert cfg.swa.start == round(cfg.schedule.budget * row.swa.start / row.schedule.budget)
        assert cfg.swa.lr / cfg.optim.lr_init == pytest.approx(float(name.removeprefix("preresnet20_ratio")))
        assert cfg.swa.variant == "lr-ratio-" + name.removeprefix("preresnet20_ratio")
        assert cfg.data.train_subset and cfg.data.subset_seed == 0 and cfg.model.name == "preresnet20"
    a, b = minis.values()
    assert a.to_dict()["data"] == b.to_dict()["data"] and a.schedule == b.schedule
