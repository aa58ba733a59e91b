"""Service settings: the `service` section of configuration.yaml plus the model section."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from model.artifact import MODEL_NAME
from model.settings import ConfigFileSettings, ModelSettings


class ServiceConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    model_tag: str = f"{MODEL_NAME}:latest"
    workers: int = Field(default=1, ge=1, le=64)
    timeout_seconds: int = Field(default=10, ge=1, le=600)
    max_batch_size: int = Field(default=1000, ge=1, le=100_000)
    max_page_size: int = Field(default=500, ge=1, le=10_000)


class ServiceSettings(ConfigFileSettings):
    model: ModelSettings = ModelSettings()
    service: ServiceConfig = ServiceConfig()
