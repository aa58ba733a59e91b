"""Running the CLI as the API image has it: the serving packages alone.

The API image (the Bento) installs pyproject.toml's dependencies, and whatever they require,
and nothing else. `not_in_the_api_image()` is what the train and pipelines extras add to
that (mlflow, zenml, scikit-learn, ... but not httpx or rich, which bentoml and typer
require); `serving_only_env()` gives a subprocess a sitecustomize that makes those modules
unimportable, the way a missing package is.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterable
from functools import cache
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]

_SITECUSTOMIZE = '''\
"""Written by tests/serving_only.py: the extras' modules, as if not installed."""

import os
import sys

BLOCKED = frozenset(os.environ["POKEWATCH_TEST_NOT_INSTALLED"].split(","))


class NotInstalled:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, NotInstalled())
if os.environ.get("POKEWATCH_TEST_NO_CHECKOUT"):
    # No editable install of this checkout either: the code is the Bento's copy alone.
    sys.meta_path[:] = [
        finder
        for finder in sys.meta_path
        if not getattr(finder, "__module__", "").startswith("__editable__")
    ]
'''


def _key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _closure(requirements: Iterable[str]) -> set[str]:
    """The installed distributions these requirements bring, transitively."""
    found: set[str] = set()
    pending = [Requirement(text) for text in requirements]
    while pending:
        requirement = pending.pop()
        if _key(requirement.name) in found:
            continue
        try:
            distribution = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            continue  # an optional dependency of another platform
        found.add(_key(requirement.name))
        extras = ["", *sorted(requirement.extras)]
        for text in distribution.requires or []:
            needed = Requirement(text)
            if needed.marker is None or any(
                needed.marker.evaluate({"extra": extra}) for extra in extras
            ):
                pending.append(needed)
    return found


@cache
def not_in_the_api_image() -> frozenset[str]:
    """Top-level modules the extras install and the serving packages do not."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    serving = _closure(project["dependencies"])
    extras = project["optional-dependencies"]
    absent = _closure(extras["train"] + extras["pipelines"]) - serving
    providers = metadata.packages_distributions()
    return frozenset(
        module
        for module, distributions in providers.items()
        if {_key(name) for name in distributions} <= absent and module.isidentifier()
    )


def serving_only_env(directory: Path, checkout: bool = True) -> dict[str, str]:
    """os.environ, with a sitecustomize in `directory` that makes the modules of
    `not_in_the_api_image()` unimportable; without `checkout`, the editable install of this
    repository is gone too (the code must come from the working directory, as in a Bento)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "sitecustomize.py").write_text(_SITECUSTOMIZE)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(directory), os.environ.get("PYTHONPATH")])),
        "POKEWATCH_TEST_NOT_INSTALLED": ",".join(sorted(not_in_the_api_image())),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    if not checkout:
        env["POKEWATCH_TEST_NO_CHECKOUT"] = "1"
    return env
