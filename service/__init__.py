"""The PokeWatch BentoML service (`bentoml serve service:PokeWatch`).

`PokeWatch` is imported on first access, so that `service.keys` and the other modules
can be used (by the CLI, by tests) without building the service.
"""

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "PokeWatch":
        from service.app import PokeWatch

        return PokeWatch
    raise AttributeError(f"module 'service' has no attribute {name!r}")
