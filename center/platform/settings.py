"""Center settings: from the environment (``GRIDWATCH_*``, nested with ``__``) or a .env file.

Built once in ``main()`` and passed down, never read at import time, so tests and the demo can
run several centers with different settings in one process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from wire.mqtt_tls import MqttTls
from wire.paths import DEFAULTS_DIR, data_dir


class DatabaseSettings(BaseModel):
    dsn: str = "postgresql://postgres@127.0.0.1:5432/gridwatch"
    pool_min: int = Field(default=2, ge=1)
    pool_max: int = Field(default=10, ge=1)
    #: ``GRIDWATCH_DB__READ_DSN``: a read replica (or a SELECT-only role) for the indicator,
    #: KPI, hotspot and ranking reads, so their scans stay off the primary that ingests;
    #: empty = those reads use the main pool (docs/scaling.md, "A read-only DSN").
    read_dsn: str = ""


class MqttTlsSettings(MqttTls):
    """TLS to the broker (``GRIDWATCH_MQTT__TLS__*``): the edge's model (``wire.mqtt_tls``)
    plus ``enabled``, since an environment cannot say "present" the way ``tls: {}`` in the
    edge's YAML does."""

    enabled: bool = False


class MqttSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: str | None = None
    #: A file holding the password (``gridwatch mqtt gen-auth`` writes ``center.secret``); read
    #: at startup into ``password``, so the secret need not sit in the environment.
    password_file: Path | None = None
    #: Fixed client id + persistent session: the broker keeps QoS 1 alerts while we are down.
    #: A broker with accounts replaces it with ``username`` (``use_username_as_clientid``,
    #: docs/security.md), so the center's account keeps a single connection.
    client_id: str = "gridwatch-center"
    #: Run as one of N center replicas (docs/scaling.md "Replicas"): the topics that must be
    #: handled once are subscribed as ``$share/<share_group>/...``, so the broker hands each
    #: message to one replica; ``client_id`` (unique per replica) then also names the replica
    #: in the cross-replica ticket push. Empty (default): one center, plain subscriptions.
    share_group: str = Field(default="", pattern=r"^[A-Za-z0-9_.-]{0,64}$")
    tls: MqttTlsSettings = MqttTlsSettings()

    @model_validator(mode="after")
    def _read_password_file(self) -> MqttSettings:
        if self.password_file is not None and self.password is None:
            try:
                self.password = self.password_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ValueError(f"mqtt.password_file {self.password_file}: cannot read: "
                                 f"{exc.strerror or exc}") from None
        return self

    def client_kwargs(self) -> dict[str, Any]:
        """Connection arguments for ``aiomqtt.Client(host, port, **client_kwargs())``: the
        credentials and, when enabled, TLS."""
        kwargs: dict[str, Any] = {"username": self.username, "password": self.password}
        if self.tls.enabled:
            kwargs.update(self.tls.aiomqtt_kwargs())
        return kwargs


class HttpSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    #: Reverse proxies whose ``X-Forwarded-For`` / ``X-Forwarded-Proto`` are believed (IPs or
    #: CIDR networks, uvicorn's ``forwarded_allow_ips``). Empty (default): the client address
    #: is the TCP peer, whatever headers it sends (docs/security.md "Client addresses").
    forwarded_allow_ips: list[str] = []
    #: Extra picture sources the pages' Content-Security-Policy allows, e.g. the origin of the
    #: map tile server named in phone.html's ``gridwatch-tiles`` (default: the center only).
    csp_img_sources: list[str] = []


#: What outbound notifiers can subscribe to: the reasons a ticket change notifies people for
#: (``center/services/tickets.py``), one word each ("escalated (level 1)" is ``escalated``).
NotifyEvent = Literal["new", "reassigned", "reassigned_away", "rework", "returned",
                      "extension_requested", "extension_approved", "escalated"]


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


#: Secrets that are public knowledge (framework templates, tutorials): refused even when long.
WEAK_SECRETS = frozenset({
    "changethis", "changeme", "secret", "secret_key", "secretkey", "your-secret-key",
    "your_secret_key", "supersecret", "password", "gridwatch", "development", "dev",
    "09d25e094faa6ca2556c818166b7a9563b93f7099f6f0f4caa6cf63b88e8d3e7",  # FastAPI's docs
})
MIN_SECRET_BYTES = 32


def check_secret(value: str) -> str:
    """The secret when it is strong enough to sign tokens, else ValueError (STYLE.md 2)."""
    if value.strip().lower() in WEAK_SECRETS:
        raise ValueError("secret_key is a well-known example value; generate one with"
                         " `python -c 'import secrets; print(secrets.token_urlsafe(48))'`")
    if len(value.encode("utf-8")) < MIN_SECRET_BYTES:
        raise ValueError(f"secret_key must be at least {MIN_SECRET_BYTES} bytes"
                         f" (got {len(value.encode('utf-8'))})")
    if len(set(value)) < 8:
        raise ValueError("secret_key repeats too few characters to be random")
    return value


class AuthSettings(BaseModel):
    """Logins and tokens (``GRIDWATCH_AUTH__*``); docs/security.md."""

    model_config = ConfigDict(extra="forbid")

    #: How long a login's bearer token is valid.
    token_ttl_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    #: Login attempts (``limits`` notation: "5/minute") for one person from one client address
    #: (an attacker elsewhere cannot lock the person out), and from one address in all.
    login_rate_person: str = "5/minute"
    login_rate_ip: str = "30/minute"
    #: Public forms (resident requests, ratings, Open311 POST) per client address.
    public_rate_ip: str = "20/minute"
    #: Password hashes computed at once, each in a worker thread (argon2 is slow on purpose);
    #: None: half the CPUs, at least one, so the event loop always keeps a core.
    hash_concurrency: int | None = Field(default=None, ge=1)
    #: Logins waiting for a hashing slot; beyond this a login is answered 503 + Retry-After.
    hash_queue: int = Field(default=32, ge=0)

    @model_validator(mode="after")
    def _rates_parse(self) -> AuthSettings:
        from limits import parse

        for name in ("login_rate_person", "login_rate_ip", "public_rate_ip"):
            try:
                parse(getattr(self, name))
            except ValueError:
                raise ValueError(f"auth.{name}: {getattr(self, name)!r} is not a rate limit"
                                 " such as '5/minute'") from None
        return self


class LiveSettings(BaseModel):
    """Live view limits and timers (``GRIDWATCH_LIVE__*``); docs/video.md "Live view"."""

    model_config = ConfigDict(extra="forbid")

    #: People watching one camera at once; one more is answered 429.
    viewers_per_camera: int = Field(default=8, ge=1, le=1000)
    #: Cameras one edge streams at once (the edge's uplink); one more is answered 429. The
    #: edge has its own bound too (``live.max_streams`` in its YAML).
    streams_per_edge: int = Field(default=4, ge=1, le=100)
    #: A viewer who has neither fetched the playlist nor re-asked for this long has left; a
    #: stream with no viewer left is stopped (the center tells the edge).
    idle_s: float = Field(default=20.0, gt=0, le=600)
    #: How often the center renews a wanted stream with the edge, and the time-to-live each
    #: renewal gives (the edge stops on its own when it runs out: a dead center never leaves
    #: a stream running).
    keepalive_s: float = Field(default=10.0, gt=0, le=300)
    edge_ttl_s: float = Field(default=30.0, gt=0, le=300)
    #: A stream that has sent no segment this long after the ask is given up as offline.
    start_timeout_s: float = Field(default=20.0, gt=0, le=300)
    #: Segments kept per stream in memory (the live playlist's length).
    segments_kept: int = Field(default=6, ge=2, le=60)

    @model_validator(mode="after")
    def _renewed_in_time(self) -> LiveSettings:
        if self.keepalive_s >= self.edge_ttl_s:
            raise ValueError("live.keepalive_s must be shorter than live.edge_ttl_s, or a "
                             "watched stream would stop between two renewals")
        return self


class ClipS3Settings(BaseModel):
    """An S3-compatible bucket for the clips' videos (``GRIDWATCH_CLIPS__S3__*``; docs/video.md
    "Object storage"). Credentials left unset come from boto3's standard chain (the
    ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` environment, ``~/.aws``, an instance or
    container role), so a production secret need not sit in gridwatch's own settings."""

    bucket: str = Field(min_length=3, max_length=63)
    #: The store's URL (MinIO, Ceph RGW: ``http://minio:9000``); unset: AWS S3 of ``region``.
    endpoint_url: str | None = None
    region: str | None = None
    #: Prepended to every clip's key (``gridwatch/clips/``): one bucket shared with others.
    prefix: str = ""
    #: Path-style addressing (``endpoint/bucket/key``): what MinIO and Ceph usually need, since
    #: their buckets have no DNS names of their own.
    path_style: bool = False
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None

    @model_validator(mode="after")
    def _both_keys_or_neither(self) -> ClipS3Settings:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("clips.s3: set both access_key_id and secret_access_key, or "
                             "neither (boto3's credential chain)")
        return self


class ClipSettings(BaseModel):
    """Alert clips (docs/video.md "Alert clips"): where their videos are kept and how long."""

    #: Where the videos go: ``filesystem`` (``dir``/store) or ``s3`` (``s3``: the bucket).
    storage: Literal["filesystem", "s3"] = "filesystem"
    s3: ClipS3Settings | None = None
    #: The clip storage folder (and, in ``partial/``, chunks of clips still arriving). Unset:
    #: ``clips/`` in the data folder (``GRIDWATCH_DATA_DIR``, ``.gridwatch`` by default).
    #: With ``s3`` storage only the staging is kept here.
    dir: Path | None = None
    #: Days a clip is kept after it arrived (None: forever); swept hourly with the alerts'.
    retention_days: int | None = Field(default=30, ge=1)
    #: Hours the chunks of a clip that never completes are kept.
    partial_max_age_h: float = Field(default=24.0, gt=0)

    @model_validator(mode="after")
    def _s3_has_a_bucket(self) -> ClipSettings:
        if self.storage == "s3" and self.s3 is None:
            raise ValueError("clips.storage is s3 but clips.s3 is not set (at least "
                             "GRIDWATCH_CLIPS__S3__BUCKET)")
        return self

    def folder(self) -> Path:
        return self.dir if self.dir is not None else data_dir() / "clips"


class PresenceSettings(BaseModel):
    """Worker presence (docs/presence.md): how positions are thinned, kept and judged."""

    #: A person's positions are stored at most once per this many seconds (a phone sending
    #: more often is thinned, not stored; the phone asks for no more than this either).
    min_interval_s: float = Field(default=5.0, ge=0.5, le=3600)
    #: Days positions are kept (None: forever); swept hourly with the alerts'.
    retention_days: int | None = Field(default=30, ge=1)
    #: A last position older than this shows as stale on the wall.
    stale_after_s: float = Field(default=120.0, gt=0)
    #: Fixes less accurate than this (metres) are kept but not counted in patrol distance.
    max_accuracy_m: float = Field(default=50.0, gt=0)
    #: A step faster than this (m/s) is a jump of the fix, not a walk: not counted.
    max_speed_mps: float = Field(default=15.0, gt=0)
    #: Routing suggestion: the A post counts as far beyond this many metres from the case,
    #: and busy from this many open cases on.
    far_m: float = Field(default=800.0, gt=0)
    busy_open_cases: int = Field(default=3, ge=1)
    #: Routing chooses that worker itself (off: it only suggests): a new case goes to the
    #: nearest on-duty, free worker of its micro-grid when the A post is off duty, busy or
    #: far; the ledger's dispatch row is the system's, like every automatic routing.
    auto_assign_nearest: bool = False


class MapSettings(BaseModel):
    """The wall's map (docs/map.md): an optional tile server under the district's own vectors.

    Off by default: wall screens often run on isolated networks, and the district's polygons
    with the GeoJSON layers below still read as a town."""

    #: Tile URL template with ``{z}``/``{x}``/``{y}`` (and ``{s}`` for ``subdomains``): an XYZ
    #: server, or a WMTS GetTile URL in Web Mercator (TILEMATRIX={z}&TILEROW={y}&TILECOL={x}).
    #: Empty (default): no tiles. Its origin is added to the pages' CSP ``img-src``.
    tiles: str = ""
    subdomains: str = ""
    attribution: str = ""
    max_zoom: int = Field(default=19, ge=1, le=23)
    #: The tile source's datum: ``wgs84`` (OSM, Tianditu's CGCS2000, most own GIS servers) or
    #: ``gcj02`` (AMap/Gaode, Tencent): everything stored stays WGS-84, the page shifts it.
    datum: Literal["wgs84", "gcj02"] = "wgs84"
    #: A folder of ``*.geojson`` files (roads, buildings, POIs) drawn under the areas. None
    #: (default): the ``layers/`` folder next to the district file, if there is one.
    layers_dir: Path | None = None

    @field_validator("tiles")
    @classmethod
    def _template(cls, value: str) -> str:
        if value and not all(k in value for k in ("{z}", "{x}", "{y}")):
            raise ValueError(f"map.tiles {value!r} needs {{z}}, {{x}} and {{y}} placeholders")
        if value and urlsplit(value).scheme not in ("http", "https"):
            raise ValueError(f"map.tiles {value!r} is not an http(s) URL")
        return value

    def tile_origins(self) -> list[str]:
        """The origins the tiles come from, for the CSP (one per subdomain)."""
        if not self.tiles:
            return []
        url = urlsplit(self.tiles)
        hosts = ({url.netloc.replace("{s}", s) for s in self.subdomains}
                 if "{s}" in url.netloc and self.subdomains else {url.netloc})
        return sorted(f"{url.scheme}://{h}" for h in hosts)


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
    #: Kept full frames (training data, docs/models.md): a month, enough for operators'
    #: verdicts and a monthly export; personal data is kept no longer than its purpose needs.
    frame_retention_days: int | None = Field(default=30, ge=1)
    #: Refused MQTT messages are kept this long (docs/reliability.md, "Dead letters").
    dead_letter_retention_days: int | None = Field(default=30, ge=1)
    #: The ingest counts as stalled (``/healthz`` 503) when it has held one batch, or left
    #: waiting messages unacknowledged, this long (docs/reliability.md, "Stall detection").
    ingest_stall_after_s: float = Field(default=60.0, gt=0)
    #: On SIGTERM the center drains (not ready, unsubscribes, stores and acknowledges what it
    #: holds, closes websockets with 1012) and exits within this many seconds; keep it below
    #: Kubernetes' terminationGracePeriodSeconds (docs/deployment.md, "Removing a replica").
    drain_s: float = Field(default=20.0, ge=1)
    #: Per-websocket-client outbox length: at half of it a client coalesces state events (latest
    #: per ticket / camera, a ``summary`` with counts); it is dropped only when messages that
    #: may not be merged fill it (center/transport/push.py).
    ws_queue: int = Field(default=256, ge=8)
    #: A websocket client that takes no message for this long while messages wait is dropped.
    ws_stall_after_s: float = Field(default=20.0, gt=0)
    notifiers: NotifierSettings = NotifierSettings()
    #: Signs the bearer tokens (HS256), ``GRIDWATCH_SECRET_KEY`` or a file
    #: (``GRIDWATCH_SECRET_KEY_FILE``). Unset: a random secret generated once and kept in the
    #: database. Short or well-known values are refused at startup.
    secret_key: SecretStr | None = None
    secret_key_file: Path | None = None
    auth: AuthSettings = AuthSettings()
    clips: ClipSettings = ClipSettings()
    live: LiveSettings = LiveSettings()
    presence: PresenceSettings = PresenceSettings()
    map: MapSettings = MapSettings()
    #: Origins allowed to call the API from another site's pages; empty (default): no CORS at
    #: all, only the center's own pages.
    cors_origins: list[str] = []

    @model_validator(mode="after")
    def _secret(self) -> CenterSettings:
        if self.secret_key is None and self.secret_key_file is not None:
            try:
                text = self.secret_key_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ValueError(f"secret_key_file {self.secret_key_file}: cannot read: "
                                 f"{exc.strerror or exc}") from None
            self.secret_key = SecretStr(text)
        if self.secret_key is not None:
            check_secret(self.secret_key.get_secret_value())
        return self
