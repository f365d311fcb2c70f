"""Center settings: from the environment (``GRIDWATCH_*``, nested with ``__``) or a .env file.

Built once in ``main()`` and passed down, never read at import time, so tests and the demo can
run several centers with different settings in one process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, TypeAdapter, model_validator
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


#: What outbound notifiers can subscribe to: the reasons a ticket change notifies people for
#: (``center/tickets/service.py``), one word each ("escalated (level 1)" is ``escalated``).
NotifyEvent = Literal["new", "reassigned", "rework", "returned", "extension_requested",
                      "extension_approved", "escalated"]


class _Target(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: Names the notifier in logs and in ``notification_attempts``; defaults to its type.
    name: str = Field(default="", pattern=r"^[A-Za-z0-9_.-]{0,64}$")
    url: str = Field(pattern=r"^https?://")
    #: Which events it gets; empty means all of them.
    events: list[NotifyEvent] = []
    timeout_s: float = Field(default=5.0, gt=0)

    @model_validator(mode="after")
    def _default_name(self) -> _Target:
        if not self.name:
            self.name = self.type  # type: ignore[attr-defined]
        return self


class WebhookTarget(_Target):
    """Generic JSON webhook: POSTs the event, the reason, who was notified and the ticket view.
    With ``secret``, the body is signed: ``X-Gridwatch-Signature: sha256=<hex HMAC>``."""

    type: Literal["webhook"]
    headers: dict[str, str] = {}
    secret: SecretStr | None = None


class WeComTarget(_Target):
    """WeCom (企业微信) group robot: ``https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…``."""

    type: Literal["wecom"]


class DingTalkTarget(_Target):
    """DingTalk (钉钉) group robot: ``https://oapi.dingtalk.com/robot/send?access_token=…``;
    ``secret`` (the ``SEC…`` string) turns on signing (``timestamp`` + ``sign``)."""

    type: Literal["dingtalk"]
    secret: SecretStr | None = None
    at_mobiles: list[str] = []


NotifierTarget = Annotated[WebhookTarget | WeComTarget | DingTalkTarget,
                           Field(discriminator="type")]
_TARGETS = TypeAdapter(list[NotifierTarget])


class NotifierSettings(BaseModel):
    """Phone delivery receipts and outbound notifiers (webhook, WeCom, DingTalk robots).

    ``targets`` comes from ``GRIDWATCH_NOTIFIERS__TARGETS`` (JSON list) and/or ``file`` (a YAML
    list, or a mapping with a ``notifiers:`` list). An attempt that fails is retried after
    ``backoff_s``, ``backoff_s * backoff_factor``, … until ``max_attempts`` attempts were made.
    """

    model_config = ConfigDict(extra="forbid")

    targets: list[NotifierTarget] = []
    file: Path | None = None
    max_attempts: int = Field(default=4, ge=1, le=20)
    backoff_s: float = Field(default=1.0, ge=0)
    backoff_factor: float = Field(default=4.0, ge=1)
    #: Outbound requests in flight at once, across all notifiers.
    concurrency: int = Field(default=8, ge=1)
    #: Ticket changes waiting to be written as notifications; beyond this, phones still get the
    #: push but without a receipt row (logged).
    queue_size: int = Field(default=10_000, ge=10)
    #: Undelivered phone notifications re-sent when a phone (re)connects, newest first.
    catch_up_limit: int = Field(default=100, ge=0)

    def all_targets(self) -> list[WebhookTarget | WeComTarget | DingTalkTarget]:
        """``targets`` plus those in ``file``; names must be unique (raises ValueError)."""
        found = list(self.targets)
        if self.file is not None:
            doc = yaml.safe_load(self.file.read_text(encoding="utf-8")) or []
            if isinstance(doc, dict):
                doc = doc.get("notifiers", [])
            try:
                found += _TARGETS.validate_python(doc)
            except ValueError as exc:
                raise ValueError(f"{self.file}: {exc}") from None
        names = [t.name for t in found]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"notifier names must be unique (set `name`): {', '.join(dupes)}")
        return found


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
    #: Retention in days (None: keep forever). Tickets and their ledger are always kept.
    alert_retention_days: int | None = Field(default=400, ge=1)
    snapshot_retention_days: int | None = Field(default=180, ge=1)
    #: Per-websocket-client queue length; a client that falls this far behind is dropped.
    ws_queue: int = Field(default=256, ge=8)
    notifiers: NotifierSettings = NotifierSettings()
