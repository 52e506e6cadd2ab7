"""What swa-bench needs of this python beside torch, said before the stages run; where tqdm (which
only draws progress bars) is missing, the runs get a stand-in (stand_ins/tqdm.py: no bars, lines
still printed), as the GPU machine's python3 was described without it."""

from __future__ import annotations

import importlib.util

from .paths import STAND_INS

NEEDED = ("torchvision", "numpy", "PIL", "click", "yaml", "pandas", "tabulate", "tqdm")


def check_modules(check) -> None:
    """Say what this python lacks of what swa-bench imports; stand in for tqdm if it is missing
    (check.stand_ins: the folder put first on the children's path, see Check.env)."""
    missing = [m for m in NEEDED if importlib.util.find_spec(m) is None]
    if "tqdm" in missing:
        check.stand_ins = STAND_INS
        check.say(f"note: tqdm is not installed: the runs use a stand-in without progress bars ({STAND_INS})")
    if set(missing) - {"tqdm"}:
        check.say(f"error: this python lacks {', '.join(sorted(set(missing) - {'tqdm'}))}: the stages will fail")
