"""One look for every figure, and one way to write it: PNG and PDF, with the numbers behind it."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd

COLORS = {
    "sgd": "#c0392b",
    "swa": "#1f5fa8",
    "swa_sgd": "#7f8c8d",
    "ema": "#d6338a",
    "lr": "#555555",
    "fge": "#e67e22",
    "fge_member": "#f0b27a",
}
# Distinct shades of one series, for figures with several SWA settings.
SHADES = {
    "swa": ["#1f5fa8", "#27ae60", "#8e44ad", "#d68910", "#17a2b8", "#6d4c41", "#e84393", "#2c3e50"],
    "swa_sgd": ["#7f8c8d", "#a3c9a8", "#b9a3c9", "#e0c08a", "#9fd8e0", "#bcaaa4", "#f5a6c9", "#95a5a6"],
    "ema": ["#d6338a", "#f07cb8", "#9c1f5e", "#f5a9d0"],
    "fge": ["#e67e22"],
    "fge_member": ["#f0b27a"],
}


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
    fig.clf()
    return written
