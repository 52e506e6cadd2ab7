"""One run of a method, resumable, on one process or many:

    run.py      train_run and the loop: set up, resume, every epoch (train, collect, evaluate, record), finish
    setup.py    what the steps share: device, execution, data, model, optimizer, loaders
    state.py    what a checkpoint holds (model, optimizer, the method's average or ensemble, reported
                results): it saves and restores itself
    vetting.py  whether a checkpoint found in a run's folder is that run's state

What a method does beside the SGD iterate is its tracker's (swa_bench/methods/tracking.py)."""

from swa_bench.training.run import RunOutcome, resolved_config, train_run

__all__ = ["RunOutcome", "resolved_config", "train_run"]
