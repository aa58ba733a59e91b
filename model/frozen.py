"""The base of every settings section: immutable once read, and a misspelt key is an error
(not silently ignored)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class FrozenSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


__all__ = ["FrozenSettings"]
