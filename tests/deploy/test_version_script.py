"""scripts/version.sh in a throwaway git repository."""

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy.conftest import REPO

SCRIPT = REPO / "scripts" / "version.sh"


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()


def _version(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(repo / "scripts" / "version.sh"), *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """The project's pyproject.toml, bentofile.yaml and script, committed, at 1.4.2."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(SCRIPT, tmp_path / "scripts" / "version.sh")
    for name in ("pyproject.toml", "bentofile.yaml"):
        text = (REPO / name).read_text()
        (tmp_path / name).write_text(text)
    pyproject = tmp_path / "pyproject.toml"
    current = _version_of(pyproject)
    pyproject.write_text(
        pyproject.read_text().replace(f'version = "{current}"', 'version = "1.4.2"')
    )
    bentofile = tmp_path / "bentofile.yaml"
    bentofile.write_text(bentofile.read_text().replace(f'version: "{current}"', 'version: "1.4.2"'))
    _git(tmp_path, "init", "-q", "-b", "main")
    _git(tmp_path, "config", "user.email", "test@example.org")
    _git(tmp_path, "config", "user.name", "Test")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "Start")
    return tmp_path


def _version_of(pyproject: Path) -> str:
    for line in pyproject.read_text().splitlines():
        if line.startswith("version = "):
            return line.split('"')[1]
    raise AssertionError("no version")


def _label(repo: Path) -> str:
    import yaml

    return str(yaml.safe_load((repo / "bentofile.yaml").read_text())["labels"]["version"])


def test_the_project_files_agree() -> None:
    assert _label(REPO) == _version_of(REPO / "pyproject.toml")
    result = subprocess.run(
        ["bash", str(SCRIPT), "current"], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == _version_of(REPO / "pyproject.toml")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("bump", "patch"), "1.4.3"),
        (("bump", "minor"), "1.5.0"),
        (("bump", "major"), "2.0.0"),
        (("set", "1.10.0"), "1.10.0"),
    ],
)
def test_a_new_version_updates_both_files_commits_and_tags(
    repo: Path, args: tuple[str, ...], expected: str
) -> None:
    result = _version(repo, *args)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"v{expected}"
    assert _version(repo, "current").stdout.strip() == expected
    assert _label(repo) == expected
    assert _git(repo, "status", "--porcelain") == ""
    assert _git(repo, "log", "-1", "--format=%s") == f"Release v{expected}"
    assert _git(repo, "cat-file", "-t", f"v{expected}") == "tag"  # annotated
    assert _git(repo, "rev-parse", f"v{expected}^{{commit}}") == _git(repo, "rev-parse", "HEAD")
    # Only the two version lines changed.
    diff = _git(repo, "diff", "--numstat", "HEAD~1", "HEAD")
    assert sorted(line.split("\t")[2] for line in diff.splitlines()) == [
        "bentofile.yaml",
        "pyproject.toml",
    ]
    assert all(line.split("\t")[:2] == ["1", "1"] for line in diff.splitlines())


def test_a_dirty_tree_is_refused(repo: Path) -> None:
    (repo / "pyproject.toml").write_text((repo / "pyproject.toml").read_text() + "\n# edit\n")
    result = _version(repo, "bump", "patch")
    assert result.returncode == 1
    assert "uncommitted" in result.stderr
    assert _git(repo, "tag") == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("set", "1.4"), "not a version"),
        (("set", "v1.5.0"), "not a version"),
        (("set", "1.4.2"), "already"),
        (("bump", "huge"), "major, minor or patch"),
    ],
)
def test_bad_requests_are_refused(repo: Path, args: tuple[str, ...], message: str) -> None:
    result = _version(repo, *args)
    assert result.returncode == 1
    assert message in result.stderr
    assert _git(repo, "tag") == ""


def test_an_existing_tag_is_refused(repo: Path) -> None:
    _git(repo, "tag", "v1.4.3")
    result = _version(repo, "bump", "patch")
    assert result.returncode == 1
    assert "already exists" in result.stderr
    assert _version(repo, "current").stdout.strip() == "1.4.2"


def test_no_command_prints_usage(repo: Path) -> None:
    result = _version(repo)
    assert result.returncode == 2
    assert "bump major|minor|patch" in result.stderr


def test_changelog_lists_the_commits_since_the_previous_tag(repo: Path) -> None:
    assert _version(repo, "bump", "minor").returncode == 0  # v1.5.0
    for message in ("Add a feature", "Fix a bug"):
        (repo / "NOTES").write_text(message)
        _git(repo, "add", "NOTES")
        _git(repo, "commit", "-q", "-m", message)
    assert _version(repo, "bump", "patch").returncode == 0  # v1.5.1
    changelog = _version(repo, "changelog", "v1.5.1").stdout
    assert changelog.startswith("## Changes since v1.5.0\n")
    titles = [line.split(" (")[0] for line in changelog.splitlines() if line.startswith("- ")]
    assert titles == ["- Release v1.5.1", "- Fix a bug", "- Add a feature"]
    first = _version(repo, "changelog", "v1.5.0").stdout
    assert first.startswith("## Changes\n")  # no earlier tag: the whole history
    assert "- Start (" in first
