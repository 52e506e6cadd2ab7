"""The images: the smoke tree (a few hundred images of the JPEG copy of CIFAR-10, or synthetic ones
when no copy is found) and, on the GPU, the whole tree, extracted in the background while stage (a) runs."""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import time
from pathlib import Path

from .paths import REPO, TARBALLS, TREE


def prepare_data(check) -> None:
    """The smoke tree, and the extraction of the full tree started; check.data says where they are
    (and OUT/data.json)."""
    s = check.sizes
    tree, tarball = TREE, next((t for t in TARBALLS if t.is_file()), None)
    small = check.scratch / "data/small"
    began = time.monotonic()
    if (tree / "train").is_dir():
        source = f"real CIFAR-10 images ({tree.relative_to(REPO)})"
        _copy_first(tree, small, s.smoke_per_class)
    elif tarball:
        source = f"real CIFAR-10 images ({tarball.name})"
        _extract_first(tarball, small, s.smoke_per_class)
    else:
        from swa_bench.data.synthetic import CIFAR10_CLASSES, write_imagefolder

        source = "SYNTHETIC random images (no CIFAR-10 copy found): no accuracy means anything"
        write_imagefolder(small, CIFAR10_CLASSES, *s.smoke_per_class)
    n_train, n_test = (10 * n for n in s.smoke_per_class)
    check.data = {"smoke": str(small), "source": source, "smoke_images": [n_train, n_test], "full": str(small)}
    check.say(f"data: smoke tree of {n_train} train / {n_test} test {source}, {time.monotonic() - began:.1f} s")
    if s.full_data:
        check.data["full"] = str(tree)
        if not (tree / "test").is_dir():
            if tarball is None:
                check.data["full_error"] = f"no {tree} and no tarball ({', '.join(map(str, TARBALLS))})"
                check.say(f"data: {check.data['full_error']}: stages (b) grid and (c) will fail")
            else:
                # Into a folder of its own, renamed when complete: a cut-short extraction is redone
                # next time rather than taken for the whole set. (data/ is kept on a warm machine.)
                partial = tree.with_name(".cifar10-jpg.partial")
                shutil.rmtree(partial, ignore_errors=True)
                partial.mkdir(parents=True)
                check.extracting = subprocess.Popen(["tar", "xzf", str(tarball), "-C", str(partial)])
                check.say(f"data: extracting {tarball} into {tree}/ in the background")
    check.report.write_json("data.json", check.data)


def full_tree(check) -> str:
    """The tree of the grid and the pair, once extracted."""
    if check.extracting is not None:
        began = time.monotonic()
        try:
            rc = check.extracting.wait(timeout=check.timeout())
        except subprocess.TimeoutExpired:
            check.extracting.kill()
            rc = "a time-out"
        check.extracting, tree = None, Path(check.data["full"])
        if rc == 0:
            partial = tree.with_name(".cifar10-jpg.partial")
            (partial / tree.name).rename(tree)
            partial.rmdir()
            check.say(f"data: extracted ({time.monotonic() - began:.0f} s waited for it)")
        else:
            check.data["full_error"] = f"extracting the tarball failed: tar exited with {rc}"
    if "full_error" in check.data:
        raise RuntimeError(check.data["full_error"])
    return check.data["full"]


def _copy_first(tree: Path, dest: Path, per_class: tuple[int, int]) -> None:
    for split, n in zip(("train", "test"), per_class):
        for folder in sorted(p for p in (tree / split).iterdir() if p.is_dir()):
            (dest / split / folder.name).mkdir(parents=True, exist_ok=True)
            for image in sorted(folder.iterdir())[:n]:
                shutil.copyfile(image, dest / split / folder.name / image.name)


def _extract_first(tarball: Path, dest: Path, per_class: tuple[int, int]) -> None:
    """The first images of each class from the tarball (cifar10-jpg/<split>/<class>/NNNN.jpg), read as a
    stream: a second or two, where extracting all 60,000 files takes much longer."""
    wanted = dict(zip(("train", "test"), per_class))
    with tarfile.open(tarball) as archive:
        for member in archive:
            parts = member.name.split("/")
            if member.isfile() and len(parts) == 4 and parts[1] in wanted and int(parts[3][:4]) < wanted[parts[1]]:
                target = dest / parts[1] / parts[2] / parts[3]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.extractfile(member).read())
