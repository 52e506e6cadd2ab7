"""Solutions as flat weight vectors, and the geometry of docs/PROTOCOL.md §6: random unit directions, the line
through two solutions, and the plane through three."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from swa_bench.errors import UserError
from swa_bench.identity import identity_problem, run_identity
from swa_bench.records import RunRecords, member_index, read_checkpoint


class FigureInputError(UserError, ValueError):
    """Weights or runs a figure cannot honestly be drawn from (another run's file, a pairing of
    different runs, a missing collected model), in one line naming the file."""


def solution_file(run_dir: str | Path, column: str | None = None) -> Path:
    """The weights behind a run's table cell: `column` (e.g. swa_1.5), else its last reported one."""
    records = RunRecords(run_dir)
    if column is None:
        rows = [r for r in records.read_metrics() if r.get("report")]
        if not rows:
            raise FileNotFoundError(f"{run_dir}: no reported weights yet (has the run finished?)")
        column = rows[-1]["report"][-1]
    path = records.checkpoint_path(column)
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing")
    return path


def run_dir_of(weights_file: str | Path) -> Path:
    """RUN/checkpoints/NAME.pt -> RUN."""
    return RunRecords.of_weights_file(weights_file).dir


def load_state(weights_file: str | Path) -> dict:
    """The model state of a weights file, after checking that it is the run's own where it lies
    (see weights_problem)."""
    state = read_checkpoint(weights_file)
    problem = weights_problem(weights_file, state)
    if problem:
        raise FigureInputError(f"{weights_file}: {problem}; a figure uses a run's own weights only")
    return state["model"]


def weights_problem(weights_file: str | Path, state: dict) -> str | None:
    """What makes `state`, read from RUN/checkpoints/NAME.pt, not RUN's own weights (None if
    nothing): an identity other than that of RUN's config.yaml, or for a collected model
    (fge_member<i>) another index than its name's. A file written before weights files carried an
    identity is an older file of the run, not a foreign one."""
    records = RunRecords.of_weights_file(weights_file)
    found = state.get("identity")
    if found is None or not records.config_path.is_file():
        return None
    problem = identity_problem(found, run_identity(records.stored_config()["config"]), "weights")
    if problem:
        return f"{problem} (whose folder it is in)"
    index = member_index(Path(weights_file).stem)
    if index is not None and state.get("index") is not None and state.get("index") != index:
        return f"collected model {state.get('index')} of its run, not model {index} as its name says"
    return None


def fge_member_files(run_dir: str | Path) -> list[Path]:
    """The weights files of the models an ended FGE run collected and kept (fge_member1.pt, ...), as
    its summary lists them: a missing one is refused in one line, never left out of an average."""
    records = RunRecords(run_dir)
    if not records.summary_path.is_file():
        raise FigureInputError(
            f"{records.dir}: no summary.json: the FGE run has not finished, so which models it "
            f"collected is not known yet"
        )
    names = records.kept_member_names()
    if not names:
        raise FigureInputError(f"{records.summary_path}: lists no collected models (fge_members): not an FGE run's")
    for name in names:
        if not records.checkpoint_path(name).is_file():
            raise FigureInputError(
                f"{records.checkpoint_path(name)}: missing, though {records.summary_path.name} "
                f"lists the collected model it holds; the run's models are not all there"
            )
    return [records.checkpoint_path(name) for name in names]


def flatten_parameters(state: dict, names: list[str]) -> torch.Tensor:
    """The parameters (not the BN statistics, which are recomputed at every point) as one vector."""
    return torch.cat([state[n].detach().reshape(-1).double().cpu() for n in names])


def random_directions(size: int, count: int, seed: int) -> list[torch.Tensor]:
    """`count` directions uniform on the unit sphere (normalised Gaussians), reproducible by seed."""
    out = []
    for i in range(count):
        gen = torch.Generator().manual_seed(seed * 100_003 + i)
        d = torch.randn(size, generator=gen, dtype=torch.float64)
        out.append(d / d.norm())
    return out


@dataclass(frozen=True)
class Plane:
    """w1 + x u_hat + y v_hat, with u = w2 - w1 and v = (w3 - w1) minus its projection on u."""

    origin: torch.Tensor
    u_hat: torch.Tensor
    v_hat: torch.Tensor

    @classmethod
    def through(cls, w1: torch.Tensor, w2: torch.Tensor, w3: torch.Tensor, names=("w1", "w2", "w3")) -> "Plane":
        u = w2 - w1
        if u.norm() == 0:
            raise ValueError(f"{names[0]} and {names[1]}: the same weights; a plane needs three different points")
        u_hat = u / u.norm()
        v = (w3 - w1) - torch.dot(w3 - w1, u_hat) * u_hat
        if v.norm() <= 1e-12 * max(float((w3 - w1).norm()), 1e-300):
            raise ValueError(f"{', '.join(names)}: the three weights lie on one line: no plane through them")
        return cls(w1, u_hat, v / v.norm())

    def coordinates(self, w: torch.Tensor) -> tuple[float, float]:
        """(x, y) of w's projection onto the plane."""
        d = w - self.origin
        return float(torch.dot(d, self.u_hat)), float(torch.dot(d, self.v_hat))

    def point(self, x: float, y: float) -> torch.Tensor:
        return self.origin + x * self.u_hat + y * self.v_hat


def grid_axis(values: list[float], margin: float, points: int) -> list[float]:
    """`points` values spanning from -margin to 1 + margin of the extent of `values`."""
    low, high = min(values), max(values)
    extent = high - low
    return torch.linspace(low - margin * extent, high + margin * extent, points, dtype=torch.float64).tolist()
