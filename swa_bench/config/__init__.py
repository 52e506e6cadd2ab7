"""Run configuration: YAML files (one per paper row) loaded once into typed, frozen dataclasses.

    schema.py   the sections and their defaults; runtime keys and later keys marked on their fields
    loading.py  the file and its overrides into a Config, every key and type checked
    checks.py   the checks across keys; each method's own rules live in its module (swa_bench/methods)

Every problem is one `ConfigError` line naming the file (or `--set`) and the dotted key; the CLI
turns it into exit code 2. What only a run can know (the data's image size, the steps per epoch, the
processes) is checked when the run starts, and is a ConfigError too.
"""

from swa_bench.config.loading import config_from_dict, load_config, parse_set_option
from swa_bench.config.schema import (
    DATASETS,
    LATER_KEYS,
    RUNTIME_KEYS,
    Config,
    DataConfig,
    DatasetFacts,
    LogConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    ScheduleConfig,
    num_classes,
)
from swa_bench.errors import ConfigError
from swa_bench.methods.ema import EMAConfig
from swa_bench.methods.fge import FGEConfig
from swa_bench.methods.swa import SWAConfig

__all__ = [
    "DATASETS",
    "LATER_KEYS",
    "RUNTIME_KEYS",
    "Config",
    "ConfigError",
    "DataConfig",
    "DatasetFacts",
    "EMAConfig",
    "FGEConfig",
    "LogConfig",
    "ModelConfig",
    "OptimConfig",
    "RunConfig",
    "SWAConfig",
    "ScheduleConfig",
    "config_from_dict",
    "load_config",
    "num_classes",
    "parse_set_option",
]
