"""docs/API.md's example runs as written."""

import re

from conftest import REPO


def test_the_swa_example_runs():
    text = (REPO / "docs/API.md").read_text()
    example = re.search(r"## SWA in your own loop.*?```python\n(.*?)```", text, re.S).group(1)
    scope: dict = {}
    exec(compile(example, "docs/API.md", "exec"), scope)
    assert scope["swa"].count == scope["epochs"] - scope["swa_start"] + 1
    assert scope["ema"].count == scope["epochs"] * len(scope["loader"])
    assert not scope["swa"].module.training
