"""The paper's figures from a tiny pair of runs (digits demo, CPU): the geometry, BN at every point,
the cache, and files a person can read."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import digits_args

from swa_bench.averaging import recompute_bn
from swa_bench.cli import main
from swa_bench.figures.evaluator import PointEvaluator
from swa_bench.figures.weights import Plane, grid_axis, load_state, random_directions, solution_file


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    out = tmp_path_factory.mktemp("pair")
    for method in ("sgd", "swa"):
        result = CliRunner().invoke(
            main,
            digits_args(out, method),
        )
        assert result.exit_code == 0, result.output
    return (
        out / "digits/digits_cnn/swa/seed0-scale0.25-subset300",
        out / "digits/digits_cnn/sgd/seed0-scale0.25-subset300",
    )


@pytest.fixture(scope="module")
def evaluator(pair):
    return PointEvaluator(pair[0], progress=False)


def assert_readable_png(path):
    import matplotlib.image

    assert path.stat().st_size > 10_000
    pixels = matplotlib.image.imread(path)
    assert pixels.shape[0] > 300 and pixels.shape[1] > 400
    assert pixels[..., :3].std() > 0.05  # not blank


def test_curves_write_png_pdf_and_data(pair, tmp_path):
    import pandas as pd

    result = CliRunner().invoke(main, ["plot", "curves", str(pair[0]), str(pair[1]), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert_readable_png(tmp_path / "curves.png")
    assert (tmp_path / "curves.pdf").read_bytes().startswith(b"%PDF")
    data = (tmp_path / "curves.csv").read_text()
    assert "swa_sgd" in data and ",swa," in data and ",sgd," in data

    zoomed = CliRunner().invoke(
        main,
        [
            "plot",
            "curves",
            str(pair[0]),
            str(pair[1]),
            "--out",
            str(tmp_path),
            "--name",
            "late",
            "--zoom-from",
            "2",
            "--series",
            "sgd",
            "--series",
            "swa",
        ],
    )
    assert zoomed.exit_code == 0, zoomed.output
    assert_readable_png(tmp_path / "late.png")
    assert set(pd.read_csv(tmp_path / "late.csv").series) == {"sgd", "swa"}  # the iterate left out
    beyond = CliRunner().invoke(main, ["plot", "curves", str(pair[0]), "--out", str(tmp_path), "--zoom-from", "9999"])
    assert beyond.exit_code != 0 and "no evaluation at or after that epoch" in beyond.output
    bad = CliRunner().invoke(main, ["plot", "curves", str(pair[0]), "--out", str(tmp_path), "--name", "../x"])
    assert bad.exit_code != 0 and "--name" in bad.output


def test_schedules_figure_names_each_average_by_its_rates(pair, tmp_path):
    import pandas as pd

    from swa_bench.figures.curves import plot_curves

    plot_curves(list(pair), tmp_path, "schedules", zoom_from=2, series=("sgd", "swa"), by_rates=True)
    assert_readable_png(tmp_path / "schedules.png")
    labels = set(pd.read_csv(tmp_path / "schedules.csv").label)
    assert any(label.endswith("[constant 0.02]") for label in labels), labels  # the config's swa.lr


def test_schedules_figure_says_when_a_constant_rate_collects_within_epochs(pair, tmp_path):
    """Two averages at one rate, one collecting every epoch and one every 26 steps: two curves, told apart."""
    import shutil

    import pandas as pd
    import yaml

    from swa_bench.figures.curves import plot_curves

    often = tmp_path / "often"
    shutil.copytree(pair[0], often, ignore=shutil.ignore_patterns("checkpoints"))
    stored = yaml.safe_load((often / "config.yaml").read_text())
    stored["config"]["swa"].update(cycle_steps=26, variant="often")
    (often / "config.yaml").write_text(yaml.safe_dump(stored))
    plot_curves([pair[1], pair[0], often], tmp_path, "schedules", series=("sgd", "swa"), by_rates=True)
    labels = set(pd.read_csv(tmp_path / "schedules.csv").label)
    assert any(label.endswith("[constant 0.02]") for label in labels), labels
    assert any(label.endswith("[constant 0.02, every 26 steps]") for label in labels), labels


def test_curves_average_seeds_only_where_every_seed_was_evaluated(pair, tmp_path):
    """One seed evaluated more often than the others (the miniature's seed 0) adds no epochs of its own
    to a mean over seeds."""
    import shutil

    import pandas as pd
    import yaml

    sgd = pair[1]
    other = tmp_path / "seed1"
    shutil.copytree(sgd, other, ignore=shutil.ignore_patterns("checkpoints"))
    config = yaml.safe_load((other / "config.yaml").read_text())
    config["config"]["run"]["seed"] = 1
    (other / "config.yaml").write_text(yaml.safe_dump(config))
    rows = [json.loads(line) for line in (other / "metrics.jsonl").read_text().splitlines()]
    evaluated = [r["epoch"] for r in rows if "test_acc" in r]
    assert len(evaluated) >= 3
    dropped = evaluated[1]
    for r in rows:
        if r["epoch"] == dropped:
            r.pop("test_acc"), r.pop("test_loss", None)
    (other / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    result = CliRunner().invoke(main, ["plot", "curves", str(sgd), str(other), "--out", str(tmp_path / "fig")])
    assert result.exit_code == 0, result.output
    drawn = pd.read_csv(tmp_path / "fig" / "curves.csv")
    sgd_epochs = sorted(drawn[drawn.series == "sgd"].epoch)
    assert sgd_epochs == [e for e in evaluated if e != dropped]
    assert set(drawn[drawn.series == "sgd"].seeds) == {2}


def test_a_rate_that_changes_within_an_epoch_is_drawn_from_its_start_to_its_end():
    import pandas as pd

    from swa_bench.figures.curves import _rate_path

    rates = pd.DataFrame({"epoch": [1, 2, 3], "lr": [0.1, 0.1, 0.05], "lr_end": [float("nan"), 0.01, 0.001]})
    assert _rate_path(rates) == ([1, 1, 2, 2, 3], [0.1, 0.1, 0.01, 0.05, 0.001])


def test_line_ends_are_the_two_solutions(pair, evaluator, tmp_path):
    result = CliRunner().invoke(
        main,
        [
            "landscape",
            "line",
            "--swa",
            str(pair[0]),
            "--sgd",
            str(pair[1]),
            "--points",
            "4",
            "--out",
            str(tmp_path),
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    quick = CliRunner().invoke(
        main,
        [
            "landscape",
            "line",
            "--swa",
            str(pair[0]),
            "--sgd",
            str(pair[1]),
            "--points",
            "2",
            "--train-images",
            "100",
            "--test-images",
            "50",
            "--out",
            str(tmp_path / "q"),
            "--quiet",
        ],
    )
    assert quick.exit_code == 0, quick.output  # evaluation subsets of a run trained on a subset
    assert_readable_png(tmp_path / "line.png")
    import pandas as pd

    rows = pd.read_csv(tmp_path / "line.csv").set_index("t")
    for t, run in ((0.0, pair[0]), (1.0, pair[1])):
        direct = evaluator.metrics(evaluator.vector(load_state(solution_file(run))))
        assert rows.loc[t, "test_error"] == pytest.approx(direct["test_error"], abs=1e-4)  # CSV keeps 6 digits
        assert rows.loc[t, "train_loss_l2"] == pytest.approx(direct["train_loss_l2"], rel=1e-5)
    summary = json.loads((pair[0] / "summary.json").read_text())
    assert 100 - rows.loc[0.0, "test_error"] == pytest.approx(summary["results"]["swa_1.5"], abs=3.0)
    gap = float(
        (
            evaluator.vector(load_state(solution_file(pair[1]))) - evaluator.vector(load_state(solution_file(pair[0])))
        ).norm()
    )
    assert rows.loc[1.0, "distance"] == pytest.approx(gap)


def test_rays_are_unit_and_start_at_the_solutions(pair, evaluator, tmp_path):
    directions = random_directions(1000, 4, seed=3)
    assert all(float(d.norm()) == pytest.approx(1.0) for d in directions)
    assert not torch.allclose(directions[0], directions[1])
    assert torch.equal(random_directions(1000, 4, seed=3)[2], directions[2])  # reproducible
    rays = ["landscape", "rays", "--swa", str(pair[0]), "--sgd", str(pair[1]), "--rays", "2", "--points", "3"]
    rays += ["--max-distance", "10", "--out", str(tmp_path), "--quiet"]
    result = CliRunner().invoke(main, rays)
    assert result.exit_code == 0, result.output
    assert_readable_png(tmp_path / "rays.png")
    import pandas as pd

    width = pd.read_csv(tmp_path / "rays_width.csv")
    assert set(width.solution) == {"swa", "sgd"} and set(width.metric) == {"test_error", "train_loss_l2"}
    assert set(width[width.metric == "test_error"].rise) == {1.0, 2.0, 5.0}

    rows = pd.read_csv(tmp_path / "rays.csv")
    for solution, run in (("swa", pair[0]), ("sgd", pair[1])):
        at_zero = rows[(rows.solution == solution) & (rows.distance == 0)]
        direct = evaluator.metrics(evaluator.vector(load_state(solution_file(run))))
        assert len(at_zero) == 2 and np.allclose(at_zero.test_error, direct["test_error"], atol=1e-4)
    far = rows[rows.distance == 10].test_error.mean()
    assert far > rows[rows.distance == 0].test_error.mean()  # moving away costs accuracy

    # Run again: every point comes from the cache, none is computed.
    from swa_bench.figures import evaluator as ev

    def fail(self, vector):
        raise AssertionError("recomputed a cached point")

    original = ev.PointEvaluator.metrics
    ev.PointEvaluator.metrics = fail
    try:
        again = CliRunner().invoke(main, rays)
    finally:
        ev.PointEvaluator.metrics = original
    assert again.exit_code == 0, again.output


def test_plane_maps_the_three_points_as_constructed(pair, tmp_path):
    w1, w2, w3 = (torch.tensor(v, dtype=torch.float64) for v in ([0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [1.0, 3.0, 4.0]))
    plane = Plane.through(w1, w2, w3)
    assert plane.coordinates(w1) == (0.0, 0.0)
    assert plane.coordinates(w2) == pytest.approx((2.0, 0.0))
    assert plane.coordinates(w3) == pytest.approx((1.0, 5.0))  # |v| = |(0, 3, 4)|
    assert torch.allclose(plane.point(*plane.coordinates(w3)), w3)
    axis = grid_axis([0.0, 2.0, 1.0], 0.2, 21)
    assert axis[0] == pytest.approx(-0.4) and axis[-1] == pytest.approx(2.4) and len(axis) == 21

    ckpts = [pair[1] / "checkpoints/sgd.pt", pair[0] / "checkpoints/swa_1.pt", pair[0] / "checkpoints/swa_1.5.pt"]
    result = CliRunner().invoke(
        main,
        [
            "landscape",
            "plane",
            *map(str, ckpts),
            "--grid",
            "3",
            "--out",
            str(tmp_path),
            "--extra",
            str(pair[0] / "checkpoints/swa_1.25.pt"),
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    assert_readable_png(tmp_path / "plane.png")
    data = json.loads((tmp_path / "plane.json").read_text())
    points = data["points"]
    assert (points[0]["x"], points[0]["y"]) == (0.0, 0.0) and points[1]["y"] == pytest.approx(0.0, abs=1e-9)
    assert len(points) == 4 and len(data["test_error"]) == 3 and len(data["x"]) == 3
    assert all(p["distance_from_plane"] == pytest.approx(0.0, abs=1e-4) for p in points[:3])
    assert all("test_error" in p and "train_loss_l2" in p for p in points)  # each marked point measured

    # The average of weight files marked (an FGE run's models: its SWA solution), measured at that point.
    result = CliRunner().invoke(
        main,
        [
            "landscape",
            "plane",
            *map(str, ckpts),
            "--grid",
            "3",
            "--out",
            str(tmp_path),
            "--mean-of",
            str(ckpts[1]),
            "--mean-of",
            str(ckpts[2]),
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    mean = json.loads((tmp_path / "plane.json").read_text())["points"][-1]
    assert mean["name"] == "average of 2"
    # The midpoint of w2 and w3 lies in the plane, halfway between them.
    w = json.loads((tmp_path / "plane.json").read_text())["points"]
    assert (mean["x"], mean["y"]) == pytest.approx(((w[1]["x"] + w[2]["x"]) / 2, (w[1]["y"] + w[2]["y"]) / 2))
    assert mean["distance_from_plane"] == pytest.approx(0.0, abs=1e-4)
    one = CliRunner().invoke(
        main,
        [
            "landscape",
            "plane",
            *map(str, ckpts),
            "--grid",
            "3",
            "--out",
            str(tmp_path),
            "--mean-of",
            str(ckpts[1]),
            "--quiet",
        ],
    )
    assert one.exit_code != 0 and "an average needs at least two weight files" in one.output


def test_ray_widths_interpolate_the_first_rise():
    import pandas as pd

    from swa_bench.figures.landscape import ray_widths

    data = pd.DataFrame(
        {
            "solution": ["swa"] * 4 + ["sgd"] * 4,
            "ray": [0] * 8,
            "distance": [0.0, 1.0, 2.0, 3.0] * 2,
            "test_error": [10.0, 10.5, 12.0, 20.0, 10.0, 13.0, 9.0, 30.0],
            "train_loss_l2": [0.3, 0.3, 0.4, 0.5, 0.2, 0.3, 0.3, 0.3],
        }
    )
    width = ray_widths(data, rises={"test_error": (1.0, 50.0), "train_loss_l2": (0.15,)})
    width = width.set_index(["metric", "solution", "rise"])
    assert width.loc[("test_error", "swa", 1.0), "mean_distance"] == pytest.approx(1 + 0.5 / 1.5)  # between 10.5 and 12
    assert width.loc[("test_error", "sgd", 1.0), "mean_distance"] == pytest.approx(1 / 3)  # the first crossing counts
    assert width.loc[("test_error", "swa", 50.0), "rays_reaching"] == 0
    assert np.isnan(width.loc[("test_error", "swa", 50.0), "mean_distance"])
    assert width.loc[("train_loss_l2", "swa", 0.15), "mean_distance"] == pytest.approx(2.5)  # 0.45 between 0.4 and 0.5
    assert width.loc[("train_loss_l2", "sgd", 0.15), "rays_reaching"] == 0
    assert width.loc[("train_loss_l2", "swa", 0.15), "value_at_0"] == pytest.approx(0.3)


def test_test_error_contours_step_by_about_one_standard_error():
    from swa_bench.figures.landscape import _contour_levels

    field = np.array([[41.6, 44.0], [45.0, 47.55]])  # median 44.5 %: one s.e. on 2,000 images is 1.11 points
    steps = np.diff(_contour_levels(field, "test_error", 2000))
    assert len(steps) == 5 and steps[0] == pytest.approx(5.95 / 5)
    assert len(np.diff(_contour_levels(field, "test_error", 10))) == 3  # never fewer than 3 bands
    assert len(np.diff(_contour_levels(field, "train_loss_l2", 2000))) == 12


def test_bn_statistics_are_recomputed_at_every_point(pair, evaluator):
    state = load_state(solution_file(pair[1]))  # the SGD solution, with its own running statistics
    vector = evaluator.vector(state)
    shifted = vector + 0.05 * random_directions(vector.numel(), 1, seed=1)[0]
    evaluator.metrics(shifted)
    recomputed = {k: v.clone() for k, v in evaluator.model.state_dict().items() if "running_mean" in k}
    # The statistics a direct pass gives for these weights, with the evaluator's BN pass.
    evaluator.load(shifted)
    evaluator.generator.manual_seed(evaluator.seed)
    recompute_bn(evaluator.model, evaluator.execution.batches(evaluator.bn_loader), evaluator.device)
    direct = {k: v for k, v in evaluator.model.state_dict().items() if "running_mean" in k}
    assert recomputed and all(torch.allclose(recomputed[k], direct[k]) for k in direct)
    assert not all(torch.allclose(recomputed[k], state[k]) for k in direct)  # not the checkpoint's


def test_missing_run_is_one_line_error(tmp_path):
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(
        main,
        [
            "landscape",
            "line",
            "--swa",
            str(tmp_path / "empty"),
            "--sgd",
            str(tmp_path / "empty"),
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 2 and result.output.startswith("error: ") and "Traceback" not in result.output


def test_evaluator_applies_the_runs_numeric_settings(pair, monkeypatch):
    """Landscapes use the run's backend switches (fp32 means no TF32 convolutions on CUDA), as training does."""
    from swa_bench.execution import Execution

    configured = []
    monkeypatch.setattr(Execution, "configure_backends", lambda self: configured.append(self.precision))
    PointEvaluator(pair[0], progress=False)
    assert configured == ["fp32"]


def test_the_landscapes_test_subset_holds_every_class_equally():
    """A subset drawn uniformly can hold a class mix harder than the whole test set (the miniature's
    2,000 images read about 3 points worse than all 10,000); each class equally, as the whole set has it."""
    from swa_bench.figures.evaluator import stratified_pick

    targets = torch.tensor([c for c in range(10) for _ in range(1000)])[
        torch.randperm(10_000, generator=torch.Generator().manual_seed(3))
    ]
    pick = stratified_pick(targets, 2000, seed=1)
    assert pick == sorted(set(pick)) and len(pick) == 2000
    assert torch.bincount(targets[pick], minlength=10).tolist() == [200] * 10
    assert pick == stratified_pick(targets, 2000, seed=1) and pick != stratified_pick(targets, 2000, seed=2)
    assert torch.bincount(targets[stratified_pick(targets, 25, seed=0)], minlength=10).tolist() == [3] * 5 + [2] * 5


def test_a_saved_figure_is_closed(tmp_path):
    """pyplot keeps each figure until it is closed: an experiment drawing dozens must not hold them all."""
    from swa_bench.figures.output import pyplot, save_figure

    plt = pyplot()
    fig = plt.figure()
    save_figure(fig, tmp_path, "closed", {"a": 1})
    assert fig.number not in plt.get_fignums()
    assert (tmp_path / "closed.png").exists() and (tmp_path / "closed.json").exists()
