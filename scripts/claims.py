"""Print, from an experiment's results folder (make reproduce-mini, make reproduce-cpu), the measured
numbers behind each of the paper's claims, so that its README states what was measured, not what was
expected. Parts that have not run are said to be missing.

    python scripts/claims.py results/cifar10-jpg-mini
    python scripts/claims.py results/cifar10-jpg-full
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd


def _metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]


def _summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


def table_claims(results: Path) -> None:
    table = pd.read_csv(results / "table.csv")
    print("== 1, 2, 5: SWA, FGE and SWA-from-a-trained-network against SGD (paired by seed) ==")
    shown = set()  # a column repeated under each row variant (FGE, EMA) is one set of runs: shown once
    for _, r in table[table.column != "sgd"].iterrows():
        if not r.column.startswith("swa"):
            if r.column in shown:
                continue
            shown.add(r.column)
        label = f"[{r.variant}] " if r.column.startswith("swa") else ""  # FGE, EMA: not the row's variant
        print(
            f"  {label}{r.column}: {r['mean']:.2f} ± {r['std']:.2f} (n={r.n:.0f}); vs SGD "
            f"{r.vs_sgd_mean:+.2f} ± {r.vs_sgd_std:.2f} (s.e. {r.vs_sgd_se:.2f}, n={r.vs_sgd_n:.0f}"
            f"{_paired_t(r.vs_sgd_mean, r.vs_sgd_se, r.vs_sgd_n)}); NLL {r.nll_mean:.3f}"
        )
    sgd = table[table.column == "sgd"].iloc[0]
    print(f"  SGD: {sgd['mean']:.2f} ± {sgd['std']:.2f} (n={sgd.n:.0f}); NLL {sgd.nll_mean:.3f}")
    finetune = results / "cifar10" / "preresnet20" / "swa-finetune-cyclical"
    for run in sorted(finetune.glob("seed*")):
        s = _summary(run)
        sgd_s = _summary(results / "cifar10" / "preresnet20" / "sgd" / run.name)
        print(
            f"  finetune {run.name}: SGD {sgd_s['results']['sgd']:.2f} -> "
            + ", ".join(f"{c} {v:.2f} ({v - sgd_s['results']['sgd']:+.2f})" for c, v in s["results"].items())
        )


def _paired_t(mean: float, se: float, n: float) -> str:
    """', paired t = .., p = ..' of a mean difference over n pairs (two-sided, n - 1 degrees of freedom)."""
    if not n or n < 2 or not se or se != se:
        return ""
    from scipy import stats  # a dependency of scikit-learn, in the test extras

    t = mean / se
    return f", paired t = {t:.1f}, p = {2 * stats.t.sf(abs(t), int(n) - 1):.2g}"


def _seed0(method_dir: Path) -> Path:
    """The seed-0 run of a method folder (its name may carry a suffix: seed0-subset1000)."""
    found = sorted(p for p in method_dir.glob("seed0*") if p.name == "seed0" or p.name.startswith("seed0-"))
    return found[0] if found else method_dir / "seed0"


def _result(run: Path, column: str) -> float | None:
    return _summary(run)["results"].get(column) if (run / "summary.json").exists() else None


def per_seed(results: Path) -> None:
    """Each seed's numbers, and the differences the claims rest on, seed by seed."""
    row = results / "cifar10" / "preresnet20"
    print(
        "== per seed: SGD; SWA (0.5 x, 0.1 x) minus SGD at 1 / 1.25 / 1.5 B; FGE and EMA minus SGD; SWA "
        "0.5 x 1 B minus FGE =="
    )
    for sgd_run in sorted((row / "sgd").glob("seed*")):
        sgd = _result(sgd_run, "sgd")
        parts = [f"SGD {sgd:.2f}"]
        for variant in ("swa-lr-ratio-0.5", "swa-lr-ratio-0.1"):
            values = [_result(row / variant / sgd_run.name, c) for c in ("swa_1", "swa_1.25", "swa_1.5")]
            if values[0] is not None:
                parts.append(f"{variant[-3:]}x " + " / ".join(f"{v - sgd:+.2f}" for v in values))
        for method, column in (("fge", "fge_1"), ("ema", "ema_1")):
            value = _result(row / method / sgd_run.name, column)
            if value is not None:
                parts.append(f"{method.upper()} {value:.2f} ({value - sgd:+.2f})")
        fge, swa = (
            _result(row / "fge" / sgd_run.name, "fge_1"),
            _result(row / "swa-lr-ratio-0.5" / sgd_run.name, "swa_1"),
        )
        if fge is not None and swa is not None:
            parts.append(f"SWA-FGE {swa - fge:+.2f}")
        print(f"  {sgd_run.name}: " + "; ".join(parts))
    for fge_run in sorted((row / "fge").glob("seed*")):
        members = [r["fge_member_acc"] for r in _metrics(fge_run) if "fge_member_acc" in r]
        print(
            f"  FGE {fge_run.name}: the {len(members)} models evaluated at epoch ends, "
            f"mean {sum(members) / len(members):.2f} "
            f"(from {min(members):.2f} to {max(members):.2f})"
        )


def curve_claims(seed0: Path) -> None:
    """Seed 0's averaged model against its own iterate and SGD at every evaluation after averaging starts."""
    row = seed0 / "cifar10" / "preresnet20"
    swa_run = _seed0(row / "swa-lr-ratio-0.5")
    if not swa_run.exists():
        return
    sgd_rows = {r["epoch"]: r["test_acc"] for r in _metrics(_seed0(row / "sgd")) if "test_acc" in r}
    print("== curves, seed 0: epoch: SWA average / its iterate / SGD ==")
    gaps = []
    for r in _metrics(swa_run):
        if "swa_test_acc" in r:
            gaps.append(r["swa_test_acc"] - r["test_acc"])
            print(
                f"  {r['epoch']}: {r['swa_test_acc']:.2f} / {r['test_acc']:.2f} / "
                f"{sgd_rows.get(r['epoch'], float('nan')):.2f}"
            )
    print(f"  average minus iterate: from {min(gaps):+.2f} to {max(gaps):+.2f}")
    constant = _seed0(row / "swa-constant-0.05")
    if constant.exists():
        rows = [r for r in _metrics(constant) if "test_acc" in r]
        late = [r["test_acc"] for r in rows if r["epoch"] > 0.9 * rows[-1]["epoch"] / 1.5]
        print(f"  fixed rate 0.05 from scratch: iterate from 0.9 B on between {min(late):.2f} and {max(late):.2f}")


def wall_times(results: Path) -> None:
    path = results / "wall_times.csv"
    if path.exists():
        times = pd.read_csv(path)
        print("== wall times (first pass of each part: the one that trained) ==")
        for part, rows in times.groupby("part", sort=False):
            first = rows.iloc[0]
            print(f"  {part}: {first.seconds / 60:.1f} min, {first.runs_trained} runs trained ({first.started_utc})")
        print(f"  sum of first passes: {times.groupby('part').seconds.first().sum() / 60:.1f} min")


def width_claims(figures: Path) -> None:
    print("== 3: wider optima (seed 0) ==")
    width = pd.read_csv(figures / "rays_width.csv")
    for _, r in width.iterrows():
        print(
            f"  {r.solution}: {r.metric} {r.value_at_0:.4g} at the solution; +{r.rise:g} at distance "
            f"{r.mean_distance:.2f} (min {r.min_distance:.2f}, max {r.max_distance:.2f}; "
            f"{r.rays_reaching:.0f}/{r.rays:.0f} rays)"
        )
    line = pd.read_csv(figures / "line.csv")
    for t, name in ((0.0, "w_SWA"), (1.0, "w_SGD")):
        r = line[line.t == t].iloc[0]
        print(
            f"  line at {name}: test error {r.test_error:.2f}, train loss {r.train_loss:.4f} "
            f"(L2-regularised {r.train_loss_l2:.4f}), train error {r.train_error:.2f}"
        )
    best = line.loc[line.test_error.idxmin()]
    lowest = line.loc[line.train_loss.idxmin()]
    print(
        f"  line minima: test error {best.test_error:.2f} at t={best.t:.3g} (distance {best.distance:.2f} from w_SWA); "
        f"train loss {lowest.train_loss:.4f} at t={lowest.t:.3g}"
    )
    plane = json.loads((figures / "plane.json").read_text())
    for p in plane["points"]:
        print(
            f"  plane point {p['name']}: test error {p['test_error']:.2f}, train loss {p['train_loss']:.4f}, "
            f"({p['x']:.2f}, {p['y']:.2f}), {p['distance_from_plane']:.2f} from the plane"
        )


def schedule_claims(seed0: Path) -> None:
    print("== 4: schedules from the seed-0 SGD run at 0.8 B, and a constant rate from scratch ==")
    row = seed0 / "cifar10" / "preresnet20"
    sgd = _summary(_seed0(row / "sgd"))["results"]["sgd"]
    print(f"  SGD (usual schedule, B epochs): {sgd:.2f}")
    for run in sorted(_seed0(folder) for folder in row.glob("swa-*")):
        s = _summary(run)
        last = _metrics(run)[-1]
        points = ", ".join(f"{c} {v:.2f}" for c, v in s["results"].items())
        gains = ", ".join(f"{c} {v - sgd:+.2f}" for c, v in s["results"].items())
        print(f"  {run.parent.name}: {points} (against SGD: {gains}); its iterate at the end {last.get('test_acc')}")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    results = Path(argv[0])
    for what, call in (
        (results / "table.csv", lambda: table_claims(results)),
        (results / "cifar10", lambda: per_seed(results)),
        (results / "seed0", lambda: curve_claims(results / "seed0")),
        (results / "wall_times.csv", lambda: wall_times(results)),
        (results / "figures" / "rays_width.csv", lambda: width_claims(results / "figures")),
        (results / "seed0", lambda: schedule_claims(results / "seed0")),
    ):
        if what.exists():
            call()
        else:
            print(f"(no {what}: that part has not run)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
