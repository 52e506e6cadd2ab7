"""Learning-rate schedules (SPEC §2)."""


def piecewise_linear_lr(epoch: int, lr_init: float, length: int, final_ratio: float) -> float:
    """The reference schedule, set once per epoch from the 0-based `epoch`.

    Flat at lr_init for the first half of `length`, linear down to final_ratio * lr_init by 90%,
    flat after. The SGD baseline uses length = epochs, final_ratio = 0.01; an SWA run uses
    length = swa_start, final_ratio = swa_lr / lr_init, so its schedule ignores the total epochs.
    """
    t = epoch / length
    if t <= 0.5:
        factor = 1.0
    elif t <= 0.9:
        factor = 1.0 - (1.0 - final_ratio) * (t - 0.5) / 0.4
    else:
        factor = final_ratio
    return lr_init * factor
