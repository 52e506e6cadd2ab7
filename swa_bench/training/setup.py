"""What the steps of a run share, built before its first step: the device and execution, the data, the
model and optimizer, the loaders. A method's tracker reads it too (swa_bench/methods/tracking.py)."""

from __future__ import annotations

import warnings

import torch

from swa_bench.averaging import has_batchnorm
from swa_bench.config import Config
from swa_bench.data import build_datasets, make_loader, resolve_loader_kind
from swa_bench.distributed import World
from swa_bench.engine import resolve_device
from swa_bench.errors import ConfigError
from swa_bench.execution import Execution
from swa_bench.models import create_model
from swa_bench.models.pretrained import load_pretrained
from swa_bench.models.registry import check_input_size
from swa_bench.protocol import Protocol
from swa_bench.records import RunRecords
from swa_bench.stopping import StopSignals


class RunContext:
    """The run's config, protocol, records, processes and identity, then (set_up) its device, data,
    model and optimizer, then (make_loaders) its loaders and compiled callables."""

    def __init__(
        self,
        cfg: Config,
        proto: Protocol,
        records: RunRecords,
        world: World,
        signals: StopSignals,
        identity: dict,
        progress: bool,
    ):
        self.cfg, self.proto, self.records, self.world = cfg, proto, records, world
        self.signals, self.identity, self.progress = signals, identity, progress

    def set_up(self) -> None:
        """Device, data, model (its initial weights from the seed, or pretrained ones) and optimizer."""
        cfg, world = self.cfg, self.world
        self.device = resolve_device(cfg.run.device, world)
        self.execution = Execution.from_config(cfg.run, self.device)
        self.execution.configure_backends()
        if cfg.optim.batch_size % world.size:
            raise ConfigError(f"optim.batch_size: {cfg.optim.batch_size} does not split over {world.size} processes")
        self.batch = cfg.optim.batch_size // world.size  # the config's batch is the global one
        self.data = build_datasets(cfg.data, progress=self.progress)
        for split, size in zip(("training", "test"), self.data.input_sizes or ()):
            try:
                check_input_size(cfg.model.name, split, size)
            except ValueError as e:
                raise ConfigError(f"{self.data.source['path']}: {e}") from None

        torch.manual_seed(cfg.run.seed)  # the initial weights depend on the seed only
        try:
            module = create_model(cfg.model.name, self.data.num_classes, **cfg.model.options)
        except ValueError as e:  # an option value the builder cannot build, e.g. a depth not 9n+2
            raise ConfigError(f"model.options: {e}") from None
        self.pretrained = load_pretrained(module, cfg.model) if cfg.model.weights else None
        self.model = self.execution.place(module)
        o = cfg.optim
        self.optimizer = torch.optim.SGD(
            self.model.parameters(), lr=o.lr_init, momentum=o.momentum, nesterov=o.nesterov, weight_decay=o.weight_decay
        )

    def make_loaders(self) -> None:
        # Training runs through DDP (gradients averaged over processes); everything else through the
        # plain modules, identical in every process. Compiled callables share the modules' parameters.
        cfg, world, device, execution = self.cfg, self.world, self.device, self.execution
        train_module = self.model
        if world.distributed:
            from torch.nn.parallel import DistributedDataParallel

            # No buffer broadcast before every forward: it is a collective per step and, compiled, keeps
            # CUDA graphs from applying (mutated inputs). The BN statistics are averaged once per epoch instead.
            # (Newer torch names it forward_sync_buffers and warns; older ones know only broadcast_buffers.)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*broadcast_buffers", category=FutureWarning)
                train_module = DistributedDataParallel(
                    self.model, device_ids=[device.index] if device.type == "cuda" else None, broadcast_buffers=False
                )
        self.run_train, self.run_model = execution.compiled(train_module), execution.compiled(self.model)

        self.loader_kind = resolve_loader_kind(cfg.data.loader, device, self.data.in_memory)
        args = dict(workers=cfg.data.workers, device=device, kind=self.loader_kind, rank=world.rank, world=world.size)
        self.generator = torch.Generator(device=device if self.loader_kind == "device" else torch.device("cpu"))
        # Training pads its pass so every process takes as many steps; BN recomputation and evaluation
        # see each image exactly once.
        self.train_loader = make_loader(
            self.data.train, self.batch, shuffle=True, generator=self.generator, pad=True, **args
        )
        self.bn_loader = make_loader(self.data.train, self.batch, shuffle=True, generator=self.generator, **args)
        self.test_loader = make_loader(self.data.test, self.batch, shuffle=False, **args)
        self.steps = len(self.train_loader)

    def announcement(self) -> list[str]:
        """What the run says before its first step: what it trains, on what, how."""
        proto, data, world, execution = self.proto, self.data, self.world, self.execution
        lines = []
        if world.distributed and has_batchnorm(self.model):
            lines.append(
                f"{self.records.dir}: BatchNorm normalises each process's own batch of {self.batch} "
                f"({self.cfg.optim.batch_size} / {world.size} processes), not the whole batch of "
                f"{self.cfg.optim.batch_size}: with BN, a run on {world.size} processes is not the "
                "single-device protocol"
            )
        lines.append(
            f"{self.records.dir}: {proto.method.upper()} {self.cfg.model.name} on {data.source['description']}, "
            f"{len(data.train)} train / {len(data.test)} test images, "
            + (f"{proto.epochs} epochs" if proto.epochs else "evaluation only")
            + f" on {self.device}{f' x {world.size} processes' if world.distributed else ''} "
            f"({self.loader_kind} loader, {execution.precision}, compile {execution.compile})"
        )
        return lines
