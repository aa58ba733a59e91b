"""The PokeWatch BentoML service (`bentoml serve service:PokeWatch`)."""

from service.app import PokeWatch

__all__ = ["PokeWatch"]
