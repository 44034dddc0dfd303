"""Typed settings read from `MAILBOX_*` environment variables.

Each group is a small Struct; a field `port` in group `smtp` is read from `MAILBOX_SMTP_PORT`.
Top-level fields (`portal_url`, `demo_portal`) are read from `MAILBOX_<FIELD>`. A malformed
value fails at start-up with one line naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar

import msgspec

from mailbox_service.errors import ConfigurationError

PREFIX = "MAILBOX_"


class MongoSettings(msgspec.Struct, frozen=True):
    url: str = "mongodb://127.0.0.1:27017/"
    """Connection string of the MongoDB-protocol server (MongoDB, or FerretDB locally)."""
    database: str = "mailbox"
    """Database that holds documents, accounts, api_keys and _migrations."""
    timeout_ms: int = 5000
    """Server selection and socket timeout; a dead server fails fast instead of hanging."""


class S3Settings(msgspec.Struct, frozen=True):
    endpoint: str = "127.0.0.1:9000"
    """host:port of the S3 server (MinIO)."""
    access_key: str = ""
    """Access key id."""
    secret_key: str = ""
    """Secret key; never logged."""
    bucket: str = "documents"
    """Bucket that holds document files."""
    secure: bool = False
    """Use HTTPS to reach the S3 server."""
    region: str = "us-east-1"
    """Region sent with signed requests."""
    lock_mode: Literal["GOVERNANCE", "COMPLIANCE"] = "GOVERNANCE"
    """S3 Object Lock retention mode of write-once files (types with `immutable_files`):
    GOVERNANCE lets a user with s3:BypassGovernanceRetention remove a lock, COMPLIANCE lets
    nobody, not even the root user, until `retain_until` (docs/operations.md)."""


class RedisSettings(msgspec.Struct, frozen=True):
    url: str = "redis://127.0.0.1:6379/0"
    """Redis for the dramatiq queue and the Socket.IO message bus."""


class SmtpSettings(msgspec.Struct, frozen=True):
    host: str = "127.0.0.1"
    """SMTP relay host."""
    port: int = 25
    """SMTP relay port."""
    username: str = ""
    """Login name; empty means no authentication."""
    password: str = ""
    """Password; never logged."""
    starttls: bool = False
    """Upgrade the connection with STARTTLS before sending."""
    sender: str = "Mailbox <no-reply@mailbox.invalid>"
    """From address of notification emails."""
    timeout_s: float = 10.0
    """Socket timeout for the SMTP conversation."""


class AuthSettings(msgspec.Struct, frozen=True):
    jwt_secret: str = ""
    """HS256 secret for portal tokens (development); empty disables HS256."""
    jwks_url: str = ""
    """JWKS URL of the OIDC provider whose RS256/ES256 tokens the portal sends."""
    audience: str = "mailbox"
    """Required `aud` claim of portal tokens."""
    issuer: str = "mailbox-dev"
    """Required `iss` claim of portal tokens."""
    cursor_secret: str = ""
    """Key that signs pagination cursors; derived from jwt_secret when empty."""
    api_key_cache_s: float = 5.0
    """How long an API process trusts a key it has checked; a revocation takes effect on every
    node within this time. 0 checks MongoDB on every request."""
    max_token_lifetime_s: int = 43200
    """Longest portal token lifetime accepted (`exp - iat`, or `exp - now` without `iat`);
    longer-lived tokens are refused, and `tokens mint --ttl` refuses more."""
    step_up_acr: str = "mfa"
    """Comma list of `acr` values that count as a step-up sign-in (a one-time code, say); the
    content of a sensitive document type needs a token with one of them."""

    @property
    def step_up_acr_values(self) -> frozenset[str]:
        return frozenset(v.strip() for v in self.step_up_acr.split(",") if v.strip())


class LimitsSettings(msgspec.Struct, frozen=True):
    max_upload_bytes: int = 50 * 1024 * 1024
    """Largest accepted document file."""
    max_metadata_bytes: int = 256 * 1024
    """Largest accepted `metadata` part."""
    max_json_bytes: int = 64 * 1024
    """Largest accepted JSON request body (portal and admin API)."""


class NotifySettings(msgspec.Struct, frozen=True):
    max_attempts: int = 6
    """Delivery attempts per channel before the status turns `failed`."""
    min_backoff_ms: int = 1000
    """First retry delay; doubles per attempt."""
    max_backoff_ms: int = 300_000
    """Longest retry delay."""
    sweep_interval_s: float = 30.0
    """How often the worker looks for notifications still pending."""
    sweep_grace_s: float = 60.0
    """Age after which a pending notification counts as lost and is re-enqueued."""
    lease_s: float = 120.0
    """How long a worker's claim on one delivery lasts; a crashed worker's claim is handed on
    after it. Keep it well above the longest SMTP conversation (smtp.timeout_s)."""
    default_locale: str = "en"
    """Email locale when neither the recipient nor the account names one we have templates for."""


class AuditSettings(msgspec.Struct, frozen=True):
    enabled: bool = True
    """Write the audit trail (`audit` collection). Off only for measurements."""
    flush_interval_s: float = 1.0
    """How often buffered audit entries are written; a crash loses at most this much."""
    batch_size: int = 500
    """Entries written per chain extension; a fuller buffer is flushed at once."""
    max_buffer: int = 100_000
    """Entries kept in memory while MongoDB is unreachable; beyond it the oldest are dropped
    (logged as `audit.dropped`)."""


class AlertSettings(msgspec.Struct, frozen=True):
    window_s: int = 300
    """Length of the counting window; at most one `security.alert` per kind and key per window."""
    auth_failed: int = 20
    """401s from one client address within a window that raise an alert."""
    rate_limited: int = 20
    """429s to one subject (or address, when anonymous) within a window that raise an alert."""
    not_found: int = 20
    """Portal 404s (a document or account that is not the caller's) for one token subject
    within a window that raise an alert."""


class MetricsSettings(msgspec.Struct, frozen=True):
    enabled: bool = True
    """Count and time (Prometheus); off only to measure what counting costs."""
    token: str = ""
    """Bearer token the API's /metrics requires; empty leaves /metrics open (it holds no ids,
    emails or secrets, but keep it off the public internet: see docs/operations.md)."""
    worker_port: int = 9102
    """Port of the worker's /metrics (one per `mailbox-service worker`); 0 serves none."""
    worker_host: str = "127.0.0.1"
    """Interface the worker's metrics port binds; 0.0.0.0 in a container Prometheus scrapes."""
    outbox_refresh_s: float = 15.0
    """The worker's outbox gauges are counted in MongoDB at most this often (on scrape)."""


class OtelSettings(msgspec.Struct, frozen=True):
    endpoint: str = ""
    """OTLP/HTTP endpoint of the trace collector (e.g. http://otel-collector:4318); empty: no
    tracing at all."""
    service_name: str = "mailbox-service"
    """`service.name` of the spans; `-api` or `-worker` is appended."""
    export_timeout_s: float = 2.0
    """How long one export may take before its spans are dropped."""


class RateSettings(msgspec.Struct, frozen=True):
    ingest_per_minute: int = 6000
    """Requests per minute per API key (ingestion and admin routes); 0 = unlimited."""
    portal_per_minute: int = 600
    """Requests per minute per portal token subject (`sub`); 0 = unlimited."""
    anonymous_per_minute: int = 120
    """Requests per minute per client address on routes without credentials, and for requests
    whose credentials fail (a stream of guessed keys or tokens); 0 = unlimited."""
    trusted_proxies: str = ""
    """Comma-separated addresses or networks (CIDR) of reverse proxies whose `X-Forwarded-For`
    names the client; empty: the socket peer is the client."""
    socket_auth_timeout_s: float = 10.0
    """An Engine.IO session that has not authenticated within this time is closed."""
    sockets_per_address: int = 50
    """Unauthenticated Socket.IO sessions per client address, across all nodes; 0 = unlimited."""
    sockets_per_user: int = 20
    """Socket.IO sessions per token subject, across all nodes; 0 = unlimited."""


class EvidenceSettings(msgspec.Struct, frozen=True):
    key_file: str = ""
    """Ed25519 private key that signs evidence bundles (PEM or 32 raw bytes; make one with
    `mailbox-service evidence keygen PATH`). Empty: the evidence routes answer 503."""


class RetentionSettings(msgspec.Struct, frozen=True):
    purge_interval_s: float = 86_400.0
    """How often the worker purges documents past `retain_until` (0 turns the run off)."""
    batch_size: int = 500
    """Documents deleted per page of a purge (one read, one bulk write, one delete)."""
    lease_s: float = 600.0
    """How long a worker's claim on the purge run lasts without renewal (another worker may
    take over after a crash)."""


class WebhookSettings(msgspec.Struct, frozen=True):
    timeout_s: float = 5.0
    """How long one delivery attempt may take (connect and answer) before it counts as failed."""
    max_attempts: int = 12
    """Attempts per delivery before it is `failed` (the default schedule spans about 20 h)."""
    min_backoff_s: float = 60.0
    """Delay after the first failed attempt; doubles per attempt."""
    max_backoff_s: float = 21_600.0
    """Longest delay between two attempts."""
    threads: int = 4
    """Worker threads per worker process for webhook jobs only, apart from the email and
    real-time threads, so a slow receiver never holds up a notification."""
    sweep_interval_s: float = 30.0
    """How often the worker looks for deliveries and events whose job was lost."""
    sweep_grace_s: float = 60.0
    """Age after which a due delivery or an undispatched event counts as lost."""
    allow_private: bool = True
    """Allow endpoints on loopback and private addresses (10/8, 172.16/12, 192.168/16, fc00::/7,
    127/8, ::1). Link-local, metadata and unspecified addresses are refused either way."""


class ReminderSettings(msgspec.Struct, frozen=True):
    days_before_due: Annotated[int, msgspec.Meta(ge=0)] = 3
    """A document with a due date (an open invoice) gets its one reminder email from this many
    days before the due date until the due date itself (UTC dates)."""
    interval_s: float = 3600.0
    """How often the worker runs the reminder pass (0 turns it off; `reminders run` still
    works)."""
    max_attempts: Annotated[int, msgspec.Meta(ge=1)] = 3
    """Passes that try one document's reminder before it is recorded `failed`."""
    batch_size: Annotated[int, msgspec.Meta(ge=1)] = 200
    """Documents read per page of a pass."""
    lease_s: float = 1800.0
    """How long a worker's claim on a pass lasts (another worker may run it after a crash)."""


class AcknowledgementSettings(msgspec.Struct, frozen=True):
    interval_s: float = 3600.0
    """How often the worker runs the acknowledgement pass (documents that had to be read and
    were not go to print); 0 turns it off (`acknowledgements run` still works)."""


class Settings(msgspec.Struct, frozen=True):
    mongo: MongoSettings = msgspec.field(default_factory=MongoSettings)
    s3: S3Settings = msgspec.field(default_factory=S3Settings)
    redis: RedisSettings = msgspec.field(default_factory=RedisSettings)
    smtp: SmtpSettings = msgspec.field(default_factory=SmtpSettings)
    auth: AuthSettings = msgspec.field(default_factory=AuthSettings)
    limits: LimitsSettings = msgspec.field(default_factory=LimitsSettings)
    notify: NotifySettings = msgspec.field(default_factory=NotifySettings)
    rate: RateSettings = msgspec.field(default_factory=RateSettings)
    metrics: MetricsSettings = msgspec.field(default_factory=MetricsSettings)
    otel: OtelSettings = msgspec.field(default_factory=OtelSettings)
    audit: AuditSettings = msgspec.field(default_factory=AuditSettings)
    alert: AlertSettings = msgspec.field(default_factory=AlertSettings)
    evidence: EvidenceSettings = msgspec.field(default_factory=EvidenceSettings)
    retention: RetentionSettings = msgspec.field(default_factory=RetentionSettings)
    webhook: WebhookSettings = msgspec.field(default_factory=WebhookSettings)
    reminder: ReminderSettings = msgspec.field(default_factory=ReminderSettings)
    acknowledgement: AcknowledgementSettings = msgspec.field(
        default_factory=AcknowledgementSettings
    )
    portal_url: str = "http://127.0.0.1:8000/portal"
    """Base URL of the customer portal; email links point below it."""
    demo_portal: bool = False
    """Serve the reference inbox and its development sign-in page."""
    log_format: str = "auto"
    """`json`, `console`, or `auto` (console on a terminal, JSON otherwise)."""


_Group = TypeVar("_Group", bound=msgspec.Struct)


def _read_group(cls: type[_Group], prefix: str, env: Mapping[str, str]) -> _Group:
    values: dict[str, Any] = {}
    for name in cls.__struct_fields__:
        var = f"{prefix}{name.upper()}"
        if var in env:
            values[name] = env[var]
    try:
        return msgspec.convert(values, cls, strict=False)
    except msgspec.ValidationError as exc:
        # msgspec says "... - at `$.port`"; map the path back to the variable's name.
        message = str(exc)
        field = message.rsplit("$.", 1)[-1].rstrip("`") if "$." in message else ""
        var = f"{prefix}{field.upper()}" if field else prefix.rstrip("_")
        raise ConfigurationError(
            f"{var}: {message.split(' - at')[0]} (got {env.get(var)!r})"
        ) from None


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read every group from the environment; raise ConfigurationError naming a bad variable."""
    env = os.environ if env is None else env
    groups: dict[str, Any] = {}
    top: dict[str, Any] = {}
    for name, field_type in Settings.__annotations__.items():
        if isinstance(field_type, str) and field_type.endswith("Settings"):
            cls = globals()[field_type]
            groups[name] = _read_group(cls, f"{PREFIX}{name.upper()}_", env)
    plain = msgspec.defstruct(
        "TopLevel",
        [
            (n, Settings.__annotations__[n], getattr(Settings(), n))
            for n in ("portal_url", "demo_portal", "log_format")
        ],
    )
    top = msgspec.structs.asdict(_read_group(plain, PREFIX, env))
    if top["log_format"] not in {"auto", "json", "console"}:
        raise ConfigurationError(
            f"MAILBOX_LOG_FORMAT: expected auto, json or console (got {top['log_format']!r})"
        )
    settings = Settings(**groups, **top)
    check_auth(settings.auth)
    return settings


MIN_HS256_SECRET_BYTES = 32
"""RFC 7518 3.2: an HS256 key must be at least as long as the hash output (256 bits)."""


def check_auth(auth: AuthSettings) -> None:
    """Refuse a guessable HS256 secret and a lifetime cap that is no cap."""
    secret_bytes = len(auth.jwt_secret.encode())
    if auth.jwt_secret and secret_bytes < MIN_HS256_SECRET_BYTES:
        raise ConfigurationError(
            f"MAILBOX_AUTH_JWT_SECRET: must be at least {MIN_HS256_SECRET_BYTES} bytes "
            f"(got {secret_bytes}); make one with `openssl rand -hex 32`"
        )
    if auth.max_token_lifetime_s < 1:
        raise ConfigurationError(
            "MAILBOX_AUTH_MAX_TOKEN_LIFETIME_S: must be at least 1 "
            f"(got {auth.max_token_lifetime_s})"
        )
