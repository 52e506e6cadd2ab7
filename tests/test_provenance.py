"""A run's record names the commit that reproduces it: '-dirty' only when the package (code, configs,
experiment files, the paper's numbers) differs from the commit, with the files that differ; changes
elsewhere in the checkout (results being written while later runs start, a README) leave it clean."""

import subprocess

import pytest

from swa_bench.provenance import source_revision


@pytest.fixture
def checkout(tmp_path):
    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    (tmp_path / "swa_bench" / "configs").mkdir(parents=True)
    (tmp_path / "swa_bench" / "trainer.py").write_text("x = 1\n")
    (tmp_path / "swa_bench" / "configs" / "row.yaml").write_text("a: 1\n")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "table.md").write_text("old\n")
    git("init", "-q")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "start")
    return tmp_path


def test_changes_outside_the_package_leave_the_commit_clean(checkout):
    (checkout / "results" / "table.md").write_text("new\n")  # a make target rewriting its results
    (checkout / "results" / "new.csv").write_text("1\n")
    (checkout / "README.md").write_text("more\n")
    commit, changed = source_revision(checkout)
    assert commit is not None and not commit.endswith("-dirty") and changed == []


@pytest.mark.parametrize("change", ["code", "config", "new file"])
def test_a_changed_package_is_dirty_and_names_its_files(checkout, change):
    path = {"code": "swa_bench/trainer.py", "config": "swa_bench/configs/row.yaml", "new file": "swa_bench/extra.py"}[
        change
    ]
    (checkout / path).write_text("changed\n")
    commit, changed = source_revision(checkout)
    assert commit.endswith("-dirty") and changed == [path]


def test_outside_a_checkout_there_is_no_revision(tmp_path):
    assert source_revision(tmp_path) == (None, [])
