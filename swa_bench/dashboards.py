"""Metrics rows mirrored to the dashboards people already use: TensorBoard and Weights & Biases
(`log.to`, or `train --log`). metrics.jsonl stays the record; a dashboard is a view of it, fed the
same rows as they are appended, so a dashboard that fails to start costs the run nothing but a
warning.

A resumed run re-runs the epochs after its checkpoint, and their rows again. TensorBoard is told to
purge the events of those epochs (`purge_step`), so its curves continue without doubled steps.
Weights & Biases resumes the same run id (kept in `<run>/wandb.json`) and is sent only epochs it
has not had yet: the rows re-run after a resume are the same numbers.
"""

from __future__ import annotations

import json
import secrets
import warnings
from pathlib import Path

from swa_bench.config import LogConfig
from swa_bench.records import atomic_write_text


def _scalars(row: dict) -> dict[str, float]:
    """Numeric fields of a metrics row under dashboard tags: train_loss -> train/loss, lr -> lr."""
    tags = {}
    for key, value in row.items():
        if key == "epoch" or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        group, _, name = key.rpartition("_")
        tags[f"{group}/{name}" if group else name] = float(value)
    return tags


class Dashboards:
    """The dashboards of one run; `open` once the first epoch to run is known, `log` each row."""

    def __init__(self, log: LogConfig, run_dir: Path, name: str):
        self.log_config, self.run_dir, self.name = log, Path(run_dir), name
        self._tensorboard = None
        self._wandb = None
        self._wandb_through = 0  # the last epoch Weights & Biases has

    def open(self, resumes_after: int | None, config: dict) -> None:
        """`resumes_after`: the epoch a resumed run continues after (None: a fresh run)."""
        if "tensorboard" in self.log_config.to:
            self._tensorboard = self._start("TensorBoard", self._open_tensorboard, resumes_after, config)
        if "wandb" in self.log_config.to:
            self._wandb = self._start("Weights & Biases", self._open_wandb, config)

    def _start(self, what: str, opener, *args):
        try:
            return opener(*args)
        except ImportError as e:
            extra = "tensorboard" if what == "TensorBoard" else "wandb"
            warnings.warn(
                f"log.to: {what} is not installed ({e.name}); pip install 'swa-bench[{extra}]'. "
                f"metrics.jsonl is written as always"
            )
        except Exception as e:  # a dashboard never stops a run
            warnings.warn(
                f"log.to: {what} did not start ({e.__class__.__name__}: {e}); metrics.jsonl is written as always"
            )
        return None

    def _open_tensorboard(self, resumes_after: int | None, config: dict):
        import yaml
        from torch.utils.tensorboard import SummaryWriter

        purge = None if resumes_after is None else resumes_after + 1
        writer = SummaryWriter(log_dir=str(self.run_dir / "tensorboard"), purge_step=purge)
        if resumes_after is None:
            # Four spaces: TensorBoard renders its text as markdown, and this keeps the YAML verbatim.
            text = "\n".join("    " + line for line in yaml.safe_dump(config, sort_keys=False).splitlines())
            writer.add_text("config", text, global_step=0)
        return writer

    def _open_wandb(self, config: dict):
        import wandb

        state_path = self.run_dir / "wandb.json"
        state = (
            json.loads(state_path.read_text()) if state_path.exists() else {"id": secrets.token_hex(8), "through": 0}
        )
        self._wandb_state_path, self._wandb_through, run_id = state_path, int(state["through"]), state["id"]
        atomic_write_text(state_path, json.dumps({"id": run_id, "through": self._wandb_through}))
        c = self.log_config
        # Unset keys leave wandb's own settings in charge (WANDB_PROJECT, WANDB_ENTITY, WANDB_MODE, login).
        return wandb.init(
            project=c.wandb_project,
            entity=c.wandb_entity,
            mode=c.wandb_mode,
            dir=str(self.run_dir),
            id=run_id,
            resume="allow",
            name=self.name,
            config=config,
            reinit="create_new",
        )

    def log(self, row: dict) -> None:
        epoch, scalars = int(row["epoch"]), _scalars(row)
        if self._tensorboard is not None:
            for tag, value in scalars.items():
                self._tensorboard.add_scalar(tag, value, global_step=epoch)
            self._tensorboard.flush()  # a kill loses no epoch that metrics.jsonl has
        if self._wandb is not None and epoch > self._wandb_through:
            self._wandb.log({**scalars, "epoch": epoch}, step=epoch)
            self._wandb_through = epoch
            atomic_write_text(self._wandb_state_path, json.dumps({"id": self._wandb.id, "through": epoch}))

    def close(self) -> None:
        if self._tensorboard is not None:
            self._tensorboard.close()
        if self._wandb is not None:
            self._wandb.finish()
        self._tensorboard = self._wandb = None

    def __enter__(self) -> "Dashboards":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
