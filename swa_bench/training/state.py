"""A run's state: the model, its optimizer, what its method keeps beside them (an average of the
weights, an ensemble), where the run started from and the results it has reported. It saves itself
into a checkpoint (and a table cell's weights file) and restores itself from one."""

from __future__ import annotations

from swa_bench.columns import Column
from swa_bench.continuation import load_start_point
from swa_bench.errors import ConfigError
from swa_bench.methods import checkpoint_keys
from swa_bench.training.vetting import Expected, checkpoint_problem


class RunState:
    def __init__(self, ctx, method, tracker):
        self.ctx, self.method, self.tracker = ctx, method, tracker
        self.model, self.optimizer = ctx.model, ctx.optimizer
        self.start_point = ctx.pretrained  # where the weights came from (pretrained weights, the SGD run)
        # column -> {"acc", "nll"} of each budget point passed: kept in the checkpoints, so the
        # summary does not depend on metrics.jsonl being intact.
        self.reported: dict[str, dict] = {}

    def checkpoint(self, done_epochs: int, partial: dict | None = None) -> dict:
        """Everything a resume needs after `done_epochs` epochs (and `partial` steps of the next)."""
        return {
            "epoch": done_epochs,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            # each method's key: the run's own method's state under its own, None under the others'
            **{k: self.tracker.state_dict() if k == self.method.checkpoint_key else None for k in checkpoint_keys()},
            "start_point": self.start_point,
            "partial": partial,
            "reported": dict(self.reported),
            "identity": self.ctx.identity,
        }

    def resume(self, sgd_run_dir, say) -> tuple[int, dict | None, bool]:
        """From this run's newest checkpoint (vetted first: vetting.py), else the SGD run it continues,
        else the beginning: the epoch to start from, a signal's partial epoch, and whether it resumed."""
        ctx, proto, records = self.ctx, self.ctx.proto, self.ctx.records
        expected = Expected(
            ctx.identity,
            proto,
            {k: v.shape for k, v in self.model.state_dict().items()},
            self.method.checkpoint_key,
            checkpoint_keys(),
            self.tracker.implied_files,
        )
        # Read on the host: load_state_dict copies each part to where its module lives, and the RNG
        # states of a mid-epoch stop must stay CPU byte tensors (torch refuses them anywhere else).
        checkpoint = records.load_checkpoint(
            "last", map_location="cpu", accept=lambda state: checkpoint_problem(state, expected, records)
        )
        if checkpoint is not None:
            start, partial = self.restore(checkpoint)
            if partial is not None and len(partial["rng"]) != ctx.world.size:
                raise ConfigError(
                    f"{records.dir}: stopped within an epoch with {len(partial['rng'])} process(es); "
                    f"resume it with as many (its data were split that way)"
                )
            within = f" and {partial['step']} steps" if partial else ""
            say(f"{records.dir}: resuming after epoch {start}{within} of {proto.epochs}")
            return start, partial, True
        if proto.start_from == "sgd_run":
            # The SGD run's state after B epochs (an SWA continuation) or after fge.start x B (FGE).
            self.continue_from(
                *load_start_point(ctx.cfg, sgd_run_dir, map_location="cpu", model=self.model.state_dict())
            )
            say(f"{records.dir}: continuing from {self.start_point['run']} after its epoch {self.start_point['epoch']}")
        self.tracker.start()
        return proto.first_epoch, None, False

    def restore(self, checkpoint: dict) -> tuple[int, dict | None]:
        """Back to a checkpoint of this run (vetted: swa_bench/training/vetting.py); returns its epoch and
        the partial epoch a signal interrupted (None if it ended an epoch)."""
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        if self.method.checkpoint_key is not None:
            self.tracker.load_state_dict(checkpoint[self.method.checkpoint_key])
        self.start_point = checkpoint.get("start_point")
        self.reported = dict(checkpoint.get("reported") or {})
        return checkpoint["epoch"], checkpoint.get("partial")

    def continue_from(self, initial: dict, start_point: dict) -> None:
        """The SGD run's weights and momentum buffers; the rates come from this run's schedule."""
        self.model.load_state_dict(initial["model"])
        self.optimizer.load_state_dict(initial["optimizer"])
        self.start_point = start_point

    def report(self, column: Column, row: dict) -> None:
        """A table cell reached: its model's test accuracy and loss, from the epoch's metrics row."""
        self.reported[column.name] = {
            "acc": row[column.metrics_prefix + "acc"],
            "nll": row[column.metrics_prefix + "loss"],
        }

    def cell_weights(self, column: Column, done: int) -> dict:
        """The weights file of a table cell: the model it reports (the SGD iterate, or the method's)."""
        if column.reports == "iterate":
            return {
                "epoch": done,
                "column": column.name,
                "model": self.model.state_dict(),
                "identity": self.ctx.identity,
            }
        return self.tracker.cell_weights(column, done)
