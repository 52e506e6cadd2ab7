"""One look for every figure, and one way to write it: PNG and PDF, with the numbers behind it."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd

LR_COLOR = "#555555"


def colors() -> dict[str, str]:
    """Each curve series' colour (swa_bench/methods), and the learning rate's."""
    from swa_bench.methods import methods

    return {"lr": LR_COLOR, **{s.key: s.color for m in methods() for s in m.series}}


def shades() -> dict[str, tuple[str, ...]]:
    """Distinct shades of each series, for figures with several settings of one method (SWA variants)."""
    from swa_bench.methods import methods

    return {s.key: s.shades or (s.color,) for m in methods() for s in m.series}


def pyplot():
    """matplotlib, headless, with the house style."""
    try:
        import matplotlib
    except ImportError:
        raise RuntimeError("figures need matplotlib: pip install 'swa-bench[figures]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "figure.dpi": 120,
            "savefig.dpi": 150,
            "font.size": 10,
            "axes.titlesize": 11,
            "axes.labelsize": 10,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "legend.frameon": False,
            "lines.linewidth": 1.6,
        }
    )
    return plt


def save_figure(fig, out: Path, name: str, data: pd.DataFrame | dict) -> list[Path]:
    """OUT/NAME.png, OUT/NAME.pdf and the data: NAME.csv (a table) or NAME.json, each written
    atomically (a kill leaves the previous file or the new one, never a torn one)."""
    from swa_bench.record_files import atomic_write_bytes, atomic_write_text

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix in ("png", "pdf"):
        path = out / f"{name}.{suffix}"
        image = io.BytesIO()
        fig.savefig(image, format=suffix, bbox_inches="tight")
        atomic_write_bytes(path, image.getvalue())
        written.append(path)
    if isinstance(data, pd.DataFrame):
        path = out / f"{name}.csv"
        atomic_write_text(path, data.to_csv(index=False, float_format="%.6g"))
    else:
        path = out / f"{name}.json"
        atomic_write_text(path, json.dumps(data, indent=1) + "\n")
    written.append(path)
    import matplotlib.pyplot as plt

    plt.close(fig)  # pyplot keeps every figure it made until closed: a long experiment draws dozens
    return written
