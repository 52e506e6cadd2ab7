"""What a run was made with: versions, device and source revision, for summary.json."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

import torch

import swa_bench

# What makes a run's numbers: the package (its code, configs, experiment files and the paper's numbers).
# Changes elsewhere in the checkout (results being written, a README) do not.
SOURCE = "swa_bench"


def source_revision(root: Path | None = None) -> tuple[str | None, list[str]]:
    """(HEAD of the checkout swa_bench runs from, with '-dirty' if the package differs from it; the
    package's files that differ, tracked or new). (None, []) outside a git checkout."""
    root = root or Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None, []
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=all", "--", SOURCE],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None, []
    changed = sorted(line[3:] for line in status.stdout.splitlines() if line.strip())
    return head.stdout.strip() + ("-dirty" if changed else ""), changed


def git_commit() -> str | None:
    """HEAD of the source tree swa_bench runs from, with '-dirty' if the package has local changes."""
    return source_revision()[0]


def process_seconds() -> float | None:
    """Seconds since this process started (Linux: from /proc; elsewhere None)."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def environment(device: torch.device) -> dict:
    return {
        "device": device_name(device),
        "versions": {
            "swa_bench": swa_bench.__version__,
            "python": platform.python_version(),
            "torch": torch.__version__,
            # From its metadata: importing torchvision costs ~1.5 s that runs without it need not pay.
            "torchvision": importlib.metadata.version("torchvision"),
            "cuda": torch.version.cuda,
        },
        **_revision(),
    }


def _revision() -> dict:
    commit, changed = source_revision()
    # The changed files, when there are any: which of the package's files the commit does not hold.
    return {"git_commit": commit, **({"source_changes": changed[:50]} if changed else {})}
