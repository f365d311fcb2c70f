"""Center settings: from the environment (``GRIDWATCH_*``, nested with ``__``) or a .env file.

Built once in ``main()`` and passed down, never read at import time, so tests and the demo can
run several centers with different settings in one process.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from center.paths import DEFAULTS_DIR


class DatabaseSettings(BaseModel):
    dsn: str = "postgresql://postgres@127.0.0.1:5432/gridwatch"
    pool_min: int = Field(default=2, ge=1)
    pool_max: int = Field(default=10, ge=1)


class MqttSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: str | None = None
    #: Fixed client id + persistent session: the broker keeps QoS 1 alerts while we are down.
    client_id: str = "gridwatch-center"


class HttpSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)


class CenterSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="GRIDWATCH_", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    db: DatabaseSettings = DatabaseSettings()
    mqtt: MqttSettings = MqttSettings()
    http: HttpSettings = HttpSettings()
    district: Path = DEFAULTS_DIR / "district" / "district.yaml"
    event_types: Path = DEFAULTS_DIR / "event_types.yaml"
    time_limits: Path = DEFAULTS_DIR / "time_limits.yaml"
    #: Per-websocket-client queue length; a client that falls this far behind is dropped.
    ws_queue: int = Field(default=256, ge=8)
