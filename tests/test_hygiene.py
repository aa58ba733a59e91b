"""The repository's hygiene hooks (pre-commit, `make test` runs them): they catch what they
are for."""

import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]


def hook(name: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / name), *arguments], capture_output=True, text=True, check=False, cwd=REPO
    )


def test_the_secret_scanner_refuses_a_new_secret(tmp_path: Path) -> None:
    leaked = tmp_path / "settings.py"
    # AWS's documentation example, put together here so that this file holds no secret.
    example = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY"
    leaked.write_text(f'AWS_SECRET_ACCESS_KEY = "{example}"\n')
    result = hook("detect-secrets-hook", "--baseline", ".secrets.baseline", str(leaked))
    assert result.returncode == 1, result.stdout
    assert "Secret" in result.stdout


def test_whitespace_and_newline_fixers_fail_on_what_they_fix(tmp_path: Path) -> None:
    untidy = tmp_path / "notes.md"
    untidy.write_text("trailing   \nno newline at the end")
    assert hook("trailing-whitespace-fixer", str(untidy)).returncode == 1
    assert hook("end-of-file-fixer", str(untidy)).returncode == 1
    assert untidy.read_text() == "trailing\nno newline at the end\n"
