"""The packaging promises: pins agree, and dependencies flow one way."""

import ast
import os
import tomllib
from importlib import metadata
from pathlib import Path

import yaml
from packaging.requirements import Requirement

from pipelines.cli import EXTRA_MODULES

REPO = Path(__file__).resolve().parents[1]


def test_bentofile_pins_match_the_serving_dependencies() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    bentofile = yaml.safe_load((REPO / "bentofile.yaml").read_text())
    assert sorted(bentofile["python"]["packages"]) == sorted(project["dependencies"])
    assert all("==" in pin for pin in project["dependencies"])


def test_training_tools_stay_out_of_serving() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    serving = " ".join(project["dependencies"])
    assert "zenml" not in serving
    assert "mlflow" not in serving


def _imported_packages(package: str) -> set[str]:
    found = set()
    for path in (REPO / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found


def test_model_imports_neither_service_nor_pipelines() -> None:
    assert _imported_packages("model").isdisjoint({"service", "pipelines", "bentoml"})


def test_service_never_imports_pipelines() -> None:
    assert "pipelines" not in _imported_packages("service")


def test_the_cli_names_the_extra_of_each_extras_package() -> None:
    """`pokewatch` says which extra a missing module needs (pipelines/cli.py)."""
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    providers = metadata.packages_distributions()
    expected = {}
    for extra in ("train", "pipelines"):
        for requirement in extras[extra]:
            name = Requirement(requirement).name
            modules = {
                module
                for module, distributions in providers.items()
                if name in (distribution.lower() for distribution in distributions)
            }
            own = name.replace("-", "_")
            expected[own if own in modules else modules.pop()] = extra
    assert expected == EXTRA_MODULES


def test_the_bento_has_the_pokewatch_command() -> None:
    """The API image's `pokewatch` runs the Bento's copy of the CLI (deploy/bento/)."""
    bentofile = yaml.safe_load((REPO / "bentofile.yaml").read_text())
    assert {"service/*.py", "model/*.py", "pipelines/**/*.py"} <= set(bentofile["include"])
    script = REPO / bentofile["docker"]["setup_script"]
    assert os.access(script, os.X_OK)
    assert "exec python -m pipelines.cli" in script.read_text()
