"""The one settings object, built once from the environment (and ``.env``) and passed down.

Nothing else in the project reads ``os.environ``. A missing or malformed value fails at
start with :class:`gateway.errors.ConfigError` naming the variable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

from gateway.errors import ConfigError

_SOURCE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_QUIET = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")
_KNOWN_SMS_PROVIDERS = frozenset({"esms", "speedsms", "log"})
ESMS_DEFAULT_BASE = "https://rest.esms.vn"
SPEEDSMS_DEFAULT_BASE = "https://api.speedsms.vn"
ZALO_OAUTH_DEFAULT_BASE = "https://oauth.zaloapp.com"
ZALO_OA_DEFAULT_BASE = "https://openapi.zalo.me"
ZALO_ZNS_DEFAULT_BASE = "https://business.openapi.zalo.me"
_ZNS_TEMPLATE_PREFIX = "ZNS_TEMPLATE_"
_ZNS_PARAMS_PREFIX = "ZNS_PARAMS_"
# A ZNS template parameter name as Zalo shows it in listParams (ten, ma_ho_so, ...).
_ZNS_PARAM_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")
DEFAULT_TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
DEFAULT_LADDER_FILE = Path(__file__).resolve().parent / "data" / "sanction_ladder.toml"
# The hotline's internal target per report kind, in working days (REPORT_SLA_WORKING_DAYS);
# the kinds are those of gateway.domain.reports.KINDS (a test keeps the two equal).
REPORT_SLA_DEFAULTS: Mapping[str, int] = {"false_closure": 3, "problem": 5}
_SLA_DAYS_MAX = 60
# Secrets the gateway itself relies on (not vendor-issued credentials) must be at least
# this long and must not be a value copied from the documentation (check_secrets()).
MIN_SECRET_LENGTH = 32
EXAMPLE_SECRETS = frozenset({"change-me-to-a-long-random-secret"})
# CHAT_HOTLINE: up to 20 characters, digits separated by dots, spaces or hyphens.
_HOTLINE = re.compile(r"\+?[0-9](?:[0-9]|[ .-](?=[0-9])){1,19}")
_OA_NAME_MAX = 60
# What citizens are told when CHAT_HOTLINE / OA_NAME are not set (gateway.texts uses them too).
DEFAULT_HOTLINE = "1022"
DEFAULT_OA_NAME = "Trung tâm Phục vụ hành chính công"


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A nightly window during which notices wait; may wrap midnight."""

    start: time
    end: time

    def contains(self, moment: time) -> bool:
        if self.start <= self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end


@dataclass(frozen=True, slots=True)
class EsmsSettings:
    """eSMS.vn brandname account (``ESMS_*``)."""

    base_url: str = ESMS_DEFAULT_BASE
    api_key: str = ""
    secret_key: str = ""
    brandname: str = ""
    sms_type: str = "2"
    accents: bool = False
    sandbox: bool = False


@dataclass(frozen=True, slots=True)
class SpeedSmsSettings:
    """SpeedSMS account (``SPEEDSMS_*``)."""

    base_url: str = SPEEDSMS_DEFAULT_BASE
    token: str = ""
    sender: str = ""
    sms_type: int = 3
    accents: bool = False


@dataclass(frozen=True, slots=True)
class ZaloSettings:
    """The Zalo app and Official Account (``ZALO_*``) and ZNS templates (``ZNS_TEMPLATE_*``)."""

    app_id: str = ""
    app_secret: str = ""
    # Key of the webhook signature: the OA Secret Key on the OA's webhook settings page.
    oa_secret_key: str = ""
    # Seeds the rotating token pair the first time; later pairs are stored by the gateway.
    refresh_token: str = ""
    oauth_base_url: str = ZALO_OAUTH_DEFAULT_BASE
    oa_base_url: str = ZALO_OA_DEFAULT_BASE
    zns_base_url: str = ZALO_ZNS_DEFAULT_BASE
    # Notice kind (lower case, e.g. "invitation") -> approved ZNS template id.
    zns_templates: Mapping[str, str] = field(default_factory=dict)
    # Notice kind -> {template parameter: fact} (ZNS_PARAMS_<KIND>); a parameter not
    # listed is filled by the fact of the same name, if there is one.
    zns_params: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # No ZNS delivery receipt by then: ask Zalo once, then fall back to SMS.
    zns_receipt_deadline_seconds: int = 900
    # "development" sends ZNS to the OA's admins only (Zalo's test mode).
    zns_development: bool = False
    timeout_seconds: float = 10.0
    # Refresh the access token this long before it expires.
    refresh_ahead_seconds: int = 3600
    # The OA may write (``cs``) within this many days of the user's last interaction.
    window_days: int = 7

    @property
    def enabled(self) -> bool:
        """Zalo is in use once the app id and a way to get a token are configured."""
        return bool(self.app_id and self.app_secret)


@dataclass(frozen=True, slots=True)
class ChatSettings:
    """The OA chatbot's rules (``CHAT_*``, ``LOOKUP_*``, ``RESULT_CHECK_*``, ``REPORT_*``)."""

    # Conversation state (menus, half-finished reports) expires after this much silence.
    state_ttl_seconds: int = 86_400
    # Wrong ownership proofs allowed per user per window before lookups are locked.
    lookup_max_failures: int = 5
    lookup_window_seconds: int = 3_600
    # Distinct dossier codes one user may ask about per window (code enumeration guard).
    lookup_max_codes: int = 10
    # Ask whether the result was received this many working days after the invitation.
    result_check_working_days: int = 3
    # A report is answered within this many working days (its expected date): what the
    # citizen is promised.
    report_answer_working_days: int = 5
    # The hotline's internal target per kind (the queue's SLA clock), in working days from
    # the report's creation; the queue never counts it later than the promised date.
    report_sla_working_days: Mapping[str, int] = field(
        default_factory=lambda: dict(REPORT_SLA_DEFAULTS)
    )
    # Shown to citizens as the number to call in every SMS, OA and web text (CHAT_HOTLINE,
    # e.g. Đồng Nai's "0251.1022"): digits with dots, spaces or hyphens, GSM-7 safe.
    hotline: str = DEFAULT_HOTLINE
    # The OA's display name on Zalo, as citizens search for it (OA_NAME): "Zalo OA <name>".
    oa_name: str = DEFAULT_OA_NAME


@dataclass(frozen=True, slots=True)
class TrustSettings:
    """Citizens' proofs of ownership, one-time codes and the citizen web page
    (``CITIZEN_*``, ``OTP_*``, ``LOOKUP_DOSSIER_*``)."""

    # The key of the HMACs over one-time codes, the links in SMS and the web page's
    # cookies (CITIZEN_SECRET, at least 32 characters when serving).
    secret: str = ""
    # Where citizens reach /tra-cuu and the links in SMS (CITIZEN_BASE_URL; default
    # PUBLIC_BASE_URL). Kept short: it is in SMS.
    base_url: str = "http://127.0.0.1:8080"
    # A link in an SMS opens the page for this many days after the notice was created.
    link_days: int = 30
    # One-time codes: 6 digits, valid 5 minutes, 3 tries each.
    otp_ttl_seconds: int = 300
    otp_max_attempts: int = 3
    # Codes sent to one phone per hour and per day, and asked by one requester (an OA
    # user, a web visitor) per hour.
    otp_per_phone_hour: int = 3
    otp_per_phone_day: int = 10
    otp_per_requester_hour: int = 5
    # Wrong last-four proofs of one dossier (by anyone) or of one phone in the window,
    # past which that dossier needs a one-time code.
    dossier_max_failures: int = 5
    dossier_window_seconds: int = 86_400
    # Requests to the citizen web page per client address per minute.
    web_requests_per_minute: int = 30
    # Read the client address from X-Forwarded-For (only behind a proxy that sets it).
    trust_forwarded_for: bool = False


@dataclass(frozen=True, slots=True)
class AuditSettings:
    """The accountability loop: sanction ladder, late-rate threshold, reminders, warnings."""

    # The sanction ladder (TOML); default: the one shipped in gateway/data/.
    ladder_file: Path = DEFAULT_LADDER_FILE
    # An agency or officer whose monthly late rate is above this is flagged.
    late_rate_threshold: float = 0.10
    # Working days after a consultation's due date before the second reminder (copied to
    # the Department of Home Affairs) and the consultation counts as unanswered.
    consultation_second_reminder_days: int = 3
    # Working days a finished dossier may wait for its result to be handed over before it
    # is listed as an early warning (a candidate for a call).
    undelivered_warning_days: int = 5


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting the gateway reads. Build with :meth:`from_env`."""

    database_url: str
    redis_url: str
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    http_workers: int = 1
    event_sources: Mapping[str, str] = field(default_factory=dict)
    sms_providers: tuple[str, ...] = ("log",)
    quiet_hours: QuietHours | None = None
    time_zone: str = "Asia/Ho_Chi_Minh"
    clock_skew_seconds: int = 300
    # The first signature form (sha256=, body only), for POST; on until integrators move to v2=.
    accept_v1_signatures: bool = True
    max_body_bytes: int = 1_048_576
    max_batch_events: int = 500
    holiday_overrides_file: Path | None = None
    templates_dir: Path = DEFAULT_TEMPLATES_DIR
    log_level: str = "INFO"
    log_format: str = "json"
    retention_days: int = 730
    redis_key_prefix: str = "tthc:"
    esms: EsmsSettings = field(default_factory=EsmsSettings)
    speedsms: SpeedSmsSettings = field(default_factory=SpeedSmsSettings)
    zalo: ZaloSettings = field(default_factory=ZaloSettings)
    chat: ChatSettings = field(default_factory=ChatSettings)
    audit: AuditSettings = field(default_factory=AuditSettings)
    trust: TrustSettings = field(default_factory=TrustSettings)
    # Where providers send delivery receipts: our public base URL and the unguessable
    # path secret of /webhooks/sms/{provider}/{secret}.
    public_base_url: str = "http://127.0.0.1:8080"
    sms_webhook_secret: str = ""
    sms_segment_budget: int = 2
    sms_unicode_segment_budget: int = 4
    sms_rate_per_second: int = 30
    sms_timeout_seconds: float = 10.0
    # A worker that claimed a notice and died gives it up after this; the relay, which
    # runs every few seconds, puts back notices older than the grace.
    delivery_lease_seconds: int = 120
    relay_grace_seconds: int = 30
    # Bearer token for /metrics and the detail of /readyz; empty: /metrics is off.
    ops_token: str = ""
    env: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def check_secrets(self) -> None:
        """Refuse weak secrets of our own: shorter than ``MIN_SECRET_LENGTH`` or an example.

        Called when ``tthc serve`` and ``tthc worker`` start, not when settings are read,
        so tools and tests may use short ones. Covers the secrets the gateway chooses
        (event sources, the receipt path, the ops token); vendor-issued credentials
        (eSMS, SpeedSMS, Zalo) are the vendor's to shape. The error names the variable
        (and the source id), never the value.
        """
        for source_id, secret in self.event_sources.items():
            _check_secret("EVENT_SOURCES", secret, f"the secret of source {source_id!r}")
        _check_secret("SMS_WEBHOOK_SECRET", self.sms_webhook_secret, "the receipt path secret")
        _check_secret("OPS_TOKEN", self.ops_token, "the operations token")
        _check_secret("CITIZEN_SECRET", self.trust.secret, "the citizens' proof and link key")

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        dotenv_path: str | Path | None = ".env",
        *,
        workdir: Path | None = None,
    ) -> Settings:
        """Read settings from ``environ`` (default ``os.environ``) over a ``.env`` file.

        Real environment variables win over ``.env`` so deployment scripts stay in charge.
        """
        values: dict[str, str] = {}
        if dotenv_path is not None and Path(dotenv_path).is_file():
            values.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
        values.update(os.environ if environ is None else environ)
        return cls.from_mapping(values, workdir=workdir)

    @classmethod
    def from_mapping(cls, env: Mapping[str, str], *, workdir: Path | None = None) -> Settings:
        """Build settings from a plain mapping (tests use this directly)."""
        workdir = workdir or Path.cwd()

        def get(name: str, default: str = "") -> str:
            return env.get(name, default).strip()

        database_url = get("DATABASE_URL") or f"sqlite:///{workdir / 'var' / 'tthc.sqlite3'}"
        _check_database_url(database_url)
        redis_url = get("REDIS_URL", "redis://127.0.0.1:6379/0")
        if not redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError("REDIS_URL", "must start with redis://, rediss:// or unix://")

        overrides = get("HOLIDAY_OVERRIDES_FILE")
        overrides_path = Path(overrides) if overrides else None
        if overrides_path is not None and not overrides_path.is_file():
            raise ConfigError("HOLIDAY_OVERRIDES_FILE", f"no such file: {overrides_path}")

        templates = get("TEMPLATES_DIR")
        templates_dir = Path(templates) if templates else DEFAULT_TEMPLATES_DIR
        if not templates_dir.is_dir():
            raise ConfigError("TEMPLATES_DIR", f"no such folder: {templates_dir}")

        time_zone = get("TIME_ZONE", "Asia/Ho_Chi_Minh")
        try:
            ZoneInfo(time_zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError("TIME_ZONE", f"unknown time zone {time_zone!r}") from exc

        log_format = get("LOG_FORMAT", "json").lower()
        if log_format not in {"json", "text"}:
            raise ConfigError("LOG_FORMAT", "must be 'json' or 'text'")
        log_level = get("LOG_LEVEL", "INFO").upper()
        if log_level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ConfigError("LOG_LEVEL", "must be DEBUG, INFO, WARNING or ERROR")

        return cls(
            database_url=database_url,
            redis_url=redis_url,
            http_host=get("HTTP_HOST", "127.0.0.1"),
            http_port=_int(env, "HTTP_PORT", 8080, low=1, high=65535),
            http_workers=_int(env, "HTTP_WORKERS", 1, low=1, high=64),
            event_sources=_event_sources(get("EVENT_SOURCES")),
            sms_providers=_sms_providers(get("SMS_PROVIDERS", "log")),
            quiet_hours=_quiet_hours(get("QUIET_HOURS", "21:00-07:00")),
            time_zone=time_zone,
            clock_skew_seconds=_int(env, "CLOCK_SKEW_SECONDS", 300, low=1, high=3600),
            accept_v1_signatures=_bool(env, "ACCEPT_V1_SIGNATURES", True),
            max_body_bytes=_int(env, "MAX_BODY_BYTES", 1_048_576, low=1024, high=64 << 20),
            max_batch_events=_int(env, "MAX_BATCH_EVENTS", 500, low=1, high=5000),
            holiday_overrides_file=overrides_path,
            templates_dir=templates_dir,
            log_level=log_level,
            log_format=log_format,
            retention_days=_int(env, "RETENTION_DAYS", 730, low=1, high=36500),
            redis_key_prefix=get("REDIS_KEY_PREFIX", "tthc:"),
            esms=EsmsSettings(
                base_url=get("ESMS_BASE_URL", ESMS_DEFAULT_BASE).rstrip("/"),
                api_key=get("ESMS_API_KEY"),
                secret_key=get("ESMS_SECRET_KEY"),
                brandname=get("ESMS_BRANDNAME"),
                sms_type=get("ESMS_SMS_TYPE", "2"),
                accents=_bool(env, "ESMS_ACCENTS", False),
                sandbox=_bool(env, "ESMS_SANDBOX", False),
            ),
            speedsms=SpeedSmsSettings(
                base_url=get("SPEEDSMS_BASE_URL", SPEEDSMS_DEFAULT_BASE).rstrip("/"),
                token=get("SPEEDSMS_TOKEN"),
                sender=get("SPEEDSMS_SENDER"),
                sms_type=_int(env, "SPEEDSMS_SMS_TYPE", 3, low=1, high=8),
                accents=_bool(env, "SPEEDSMS_ACCENTS", False),
            ),
            zalo=_zalo(env),
            chat=ChatSettings(
                state_ttl_seconds=_int(
                    env, "CHAT_STATE_TTL_SECONDS", 86_400, low=60, high=2_592_000
                ),
                lookup_max_failures=_int(env, "LOOKUP_MAX_FAILURES", 5, low=1, high=100),
                lookup_window_seconds=_int(env, "LOOKUP_WINDOW_SECONDS", 3600, low=60, high=86_400),
                lookup_max_codes=_int(env, "LOOKUP_MAX_CODES", 10, low=1, high=1000),
                result_check_working_days=_int(env, "RESULT_CHECK_WORKING_DAYS", 3, low=0, high=60),
                report_answer_working_days=_int(
                    env, "REPORT_ANSWER_WORKING_DAYS", 5, low=1, high=60
                ),
                report_sla_working_days=_sla_days(get("REPORT_SLA_WORKING_DAYS")),
                hotline=_hotline(get("CHAT_HOTLINE") or DEFAULT_HOTLINE),
                oa_name=_oa_name(get("OA_NAME") or DEFAULT_OA_NAME),
            ),
            public_base_url=get("PUBLIC_BASE_URL", "").rstrip("/")
            or f"http://{get('HTTP_HOST', '127.0.0.1')}:{get('HTTP_PORT', '8080')}",
            sms_webhook_secret=get("SMS_WEBHOOK_SECRET"),
            sms_segment_budget=_int(env, "SMS_SEGMENT_BUDGET", 2, low=1, high=6),
            sms_unicode_segment_budget=_int(env, "SMS_UNICODE_SEGMENT_BUDGET", 4, low=1, high=8),
            sms_rate_per_second=_int(env, "SMS_RATE_PER_SECOND", 30, low=1, high=10_000),
            sms_timeout_seconds=float(_int(env, "SMS_TIMEOUT_SECONDS", 10, low=1, high=120)),
            delivery_lease_seconds=_int(env, "DELIVERY_LEASE_SECONDS", 120, low=1, high=3600),
            relay_grace_seconds=_int(env, "RELAY_GRACE_SECONDS", 30, low=0, high=3600),
            audit=_audit(env),
            trust=_trust(env),
            ops_token=get("OPS_TOKEN"),
            env=dict(env),
        )


def _check_secret(variable: str, value: str, what: str) -> None:
    """Raise ConfigError for a set secret that is short or an example; unset passes."""
    if not value:
        return
    if value in EXAMPLE_SECRETS:
        raise ConfigError(variable, f"{what} is the example value; generate one (see README)")
    if len(value) < MIN_SECRET_LENGTH:
        raise ConfigError(
            variable, f"{what} is shorter than {MIN_SECRET_LENGTH} characters ({len(value)})"
        )


def _zalo(env: Mapping[str, str]) -> ZaloSettings:
    def get(name: str, default: str = "") -> str:
        return env.get(name, default).strip()

    templates: dict[str, str] = {}
    for name, value in env.items():
        if name.startswith(_ZNS_TEMPLATE_PREFIX) and value.strip():
            kind = name[len(_ZNS_TEMPLATE_PREFIX) :].lower()
            if not re.fullmatch(r"[a-z_]{1,32}", kind):
                raise ConfigError(name, "the part after ZNS_TEMPLATE_ must name a notice kind")
            if not value.strip().isdigit():
                raise ConfigError(name, f"a ZNS template id is a number, got {value.strip()!r}")
            templates[kind] = value.strip()
    zalo = ZaloSettings(
        app_id=get("ZALO_APP_ID"),
        app_secret=get("ZALO_APP_SECRET"),
        oa_secret_key=get("ZALO_OA_SECRET_KEY"),
        refresh_token=get("ZALO_REFRESH_TOKEN"),
        oauth_base_url=get("ZALO_OAUTH_BASE_URL", ZALO_OAUTH_DEFAULT_BASE).rstrip("/"),
        oa_base_url=get("ZALO_OA_BASE_URL", ZALO_OA_DEFAULT_BASE).rstrip("/"),
        zns_base_url=get("ZALO_ZNS_BASE_URL", ZALO_ZNS_DEFAULT_BASE).rstrip("/"),
        zns_templates=templates,
        zns_params=_zns_params(env, templates),
        zns_receipt_deadline_seconds=_int(
            env, "ZNS_RECEIPT_DEADLINE_SECONDS", 900, low=1, high=86_400
        ),
        zns_development=_bool(env, "ZNS_DEVELOPMENT", False),
        timeout_seconds=float(_int(env, "ZALO_TIMEOUT_SECONDS", 10, low=1, high=120)),
        refresh_ahead_seconds=_int(env, "ZALO_REFRESH_AHEAD_SECONDS", 3600, low=0, high=80_000),
        window_days=_int(env, "ZALO_WINDOW_DAYS", 7, low=1, high=7),
    )
    if zalo.app_id and not zalo.app_id.isdigit():
        raise ConfigError("ZALO_APP_ID", "a Zalo app id is a number")
    if zalo.enabled and not zalo.oa_secret_key:
        raise ConfigError("ZALO_OA_SECRET_KEY", "required when ZALO_APP_ID is set (webhooks)")
    return zalo


def _zns_params(env: Mapping[str, str], templates: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """``ZNS_PARAMS_<KIND>=ten=customer_name,ma_ho_so=dossier_code``: which notice fact
    fills which parameter of the kind's template (checked against the template itself
    when the gateway starts, see gateway.delivery.zns_params)."""
    # Imported here: gateway.texts imports these settings (the facts' one list is there).
    from gateway.texts.zalo import ZNS_FACTS

    mappings: dict[str, dict[str, str]] = {}
    for name, value in sorted(env.items()):
        if not name.startswith(_ZNS_PARAMS_PREFIX) or not value.strip():
            continue
        kind = name[len(_ZNS_PARAMS_PREFIX) :].lower()
        if not re.fullmatch(r"[a-z_]{1,32}", kind):
            raise ConfigError(name, "the part after ZNS_PARAMS_ must name a notice kind")
        if kind not in templates:
            raise ConfigError(
                name, f"no ZNS_TEMPLATE_{kind.upper()} is set: a mapping needs its template"
            )
        mapping: dict[str, str] = {}
        for index, pair in enumerate((p.strip() for p in value.split(",")), start=1):
            param, sep, fact = (part.strip() for part in pair.partition("="))
            if not sep or not param or not fact:
                raise ConfigError(
                    name, f"entry {index} must be 'template_param=fact', got {pair!r}"
                )
            if not _ZNS_PARAM_NAME.fullmatch(param):
                raise ConfigError(
                    name, f"entry {index} ({pair}): {param!r} is not a template parameter name"
                )
            if fact not in ZNS_FACTS:
                known = ", ".join(ZNS_FACTS)
                raise ConfigError(
                    name, f"entry {index} ({pair}): unknown fact {fact!r} (known: {known})"
                )
            if param in mapping:
                raise ConfigError(
                    name, f"entry {index} ({pair}): template parameter {param!r} is mapped twice"
                )
            mapping[param] = fact
        mappings[kind] = mapping
    return mappings


def _trust(env: Mapping[str, str]) -> TrustSettings:
    def get(name: str, default: str = "") -> str:
        return env.get(name, default).strip()

    public = get("PUBLIC_BASE_URL").rstrip("/") or (
        f"http://{get('HTTP_HOST', '127.0.0.1')}:{get('HTTP_PORT', '8080')}"
    )
    base_url = get("CITIZEN_BASE_URL").rstrip("/") or public
    if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", base_url):
        raise ConfigError("CITIZEN_BASE_URL", f"must be an http(s) URL, got {base_url!r}")
    return TrustSettings(
        secret=get("CITIZEN_SECRET"),
        base_url=base_url,
        link_days=_int(env, "CITIZEN_LINK_DAYS", 30, low=1, high=365),
        otp_per_phone_hour=_int(env, "OTP_MAX_PER_PHONE_HOUR", 3, low=1, high=100),
        otp_per_phone_day=_int(env, "OTP_MAX_PER_PHONE_DAY", 10, low=1, high=1000),
        otp_per_requester_hour=_int(env, "OTP_MAX_PER_REQUESTER_HOUR", 5, low=1, high=100),
        dossier_max_failures=_int(env, "LOOKUP_DOSSIER_MAX_FAILURES", 5, low=1, high=1000),
        dossier_window_seconds=_int(
            env, "LOOKUP_DOSSIER_WINDOW_SECONDS", 86_400, low=60, high=2_592_000
        ),
        web_requests_per_minute=_int(env, "CITIZEN_WEB_RATE_PER_MINUTE", 30, low=1, high=10_000),
        trust_forwarded_for=_bool(env, "CITIZEN_TRUST_FORWARDED_FOR", False),
    )


def _audit(env: Mapping[str, str]) -> AuditSettings:
    ladder = env.get("AUDIT_LADDER_FILE", "").strip()
    ladder_file = Path(ladder) if ladder else DEFAULT_LADDER_FILE
    if not ladder_file.is_file():
        raise ConfigError("AUDIT_LADDER_FILE", f"no such file: {ladder_file}")
    raw = env.get("LATE_RATE_THRESHOLD", "").strip()
    threshold = 0.10
    if raw:
        try:
            threshold = float(raw)
        except ValueError as exc:
            raise ConfigError("LATE_RATE_THRESHOLD", f"must be a number, got {raw!r}") from exc
        if not 0 <= threshold <= 1:
            raise ConfigError("LATE_RATE_THRESHOLD", f"must be between 0 and 1, got {raw}")
    return AuditSettings(
        ladder_file=ladder_file,
        late_rate_threshold=threshold,
        consultation_second_reminder_days=_int(
            env, "CONSULTATION_SECOND_REMINDER_DAYS", 3, low=1, high=60
        ),
        undelivered_warning_days=_int(env, "UNDELIVERED_WARNING_DAYS", 5, low=1, high=60),
    )


def _int(env: Mapping[str, str], name: str, default: int, *, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(name, f"must be a whole number, got {raw!r}") from exc
    if not low <= value <= high:
        raise ConfigError(name, f"must be between {low} and {high}, got {value}")
    return value


def _hotline(raw: str) -> str:
    """CHAT_HOTLINE as printed in SMS: a short number, so every text keeps its budget."""
    if not _HOTLINE.fullmatch(raw):
        raise ConfigError("CHAT_HOTLINE", f"must be a phone number like 0251.1022, got {raw!r}")
    return raw


def _oa_name(raw: str) -> str:
    """OA_NAME: one line of at most 60 characters (it is in every SMS's last sentence)."""
    name = " ".join(raw.split())
    if len(name) > _OA_NAME_MAX:
        raise ConfigError("OA_NAME", f"must be at most {_OA_NAME_MAX} characters")
    return name


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(name, f"must be true or false, got {raw!r}")


def _check_database_url(url: str) -> None:
    if not url.startswith(("sqlite://", "postgresql://", "postgresql+asyncpg://", "postgres://")):
        raise ConfigError(
            "DATABASE_URL",
            "must be sqlite:///path or postgresql://user@host/db, got another scheme",
        )


def _event_sources(raw: str) -> dict[str, str]:
    sources: dict[str, str] = {}
    if not raw:
        return sources
    for index, pair in enumerate(raw.split(","), start=1):
        source_id, sep, secret = pair.strip().partition(":")
        if not sep or not source_id or not secret:
            raise ConfigError("EVENT_SOURCES", f"entry {index} must be 'id:secret'")
        if not _SOURCE_ID.match(source_id):
            raise ConfigError(
                "EVENT_SOURCES", f"entry {index}: source id {source_id!r} is not valid"
            )
        if len(secret) < 8:
            raise ConfigError(
                "EVENT_SOURCES", f"entry {index}: secret of {source_id!r} is too short"
            )
        if source_id in sources:
            raise ConfigError("EVENT_SOURCES", f"entry {index}: source id {source_id!r} repeated")
        sources[source_id] = secret
    return sources


def _sla_days(raw: str) -> dict[str, int]:
    """``false_closure=3,problem=5``: working days per report kind; unlisted kinds keep
    their default, so ``problem=2`` alone is valid."""
    name = "REPORT_SLA_WORKING_DAYS"
    days = dict(REPORT_SLA_DEFAULTS)
    seen: set[str] = set()
    for index, pair in enumerate((p for p in raw.split(",") if p.strip()), start=1):
        kind, sep, value = (part.strip() for part in pair.partition("="))
        if not sep or not kind or not value:
            raise ConfigError(name, f"entry {index} must be 'kind=days', got {pair.strip()!r}")
        if kind not in REPORT_SLA_DEFAULTS:
            known = ", ".join(REPORT_SLA_DEFAULTS)
            raise ConfigError(name, f"entry {index}: unknown report kind {kind!r} (known: {known})")
        if kind in seen:
            raise ConfigError(name, f"entry {index}: kind {kind!r} is listed twice")
        if not value.isdigit():
            raise ConfigError(name, f"entry {index}: days of {kind!r} must be a whole number")
        if not 0 <= int(value) <= _SLA_DAYS_MAX:
            raise ConfigError(
                name, f"entry {index}: days of {kind!r} must be between 0 and {_SLA_DAYS_MAX}"
            )
        seen.add(kind)
        days[kind] = int(value)
    return days


def _sms_providers(raw: str) -> tuple[str, ...]:
    names = tuple(name.strip().lower() for name in raw.split(",") if name.strip())
    if not names:
        raise ConfigError("SMS_PROVIDERS", "must name at least one provider (use 'log' locally)")
    for name in names:
        if name not in _KNOWN_SMS_PROVIDERS:
            known = ", ".join(sorted(_KNOWN_SMS_PROVIDERS))
            raise ConfigError("SMS_PROVIDERS", f"unknown provider {name!r} (known: {known})")
    if len(set(names)) != len(names):
        raise ConfigError("SMS_PROVIDERS", "a provider is listed twice")
    return names


def _quiet_hours(raw: str) -> QuietHours | None:
    if not raw:
        return None
    match = _QUIET.match(raw)
    if not match:
        raise ConfigError("QUIET_HOURS", f"must look like 21:00-07:00, got {raw!r}")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    try:
        window = QuietHours(time(h1, m1), time(h2, m2))
    except ValueError as exc:
        raise ConfigError("QUIET_HOURS", f"not a real time of day: {raw!r}") from exc
    if window.start == window.end:
        raise ConfigError("QUIET_HOURS", "start and end are equal; leave it empty to disable")
    return window
