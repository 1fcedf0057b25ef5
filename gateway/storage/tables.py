"""The relational schema (SQLAlchemy Core), shared by SQLite and PostgreSQL.

Migrations in ``gateway/storage/migrations`` create exactly these tables; a test checks
that the migrated database and this metadata agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on SQLite (naive storage) and PostgreSQL."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONType: Any = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("source_id", sa.String(64), nullable=False),
    sa.Column("event_id", sa.String(128), nullable=False),
    sa.Column("type", sa.String(48), nullable=False),
    sa.Column("dossier_code", sa.String(40), nullable=False),
    sa.Column("occurred_at", UTCDateTime(), nullable=False),
    sa.Column("recorded_at", UTCDateTime(), nullable=False),
    sa.Column("actor_id", sa.String(128)),
    sa.Column("actor_name", sa.String(200)),
    sa.Column("superseded", sa.Boolean(), nullable=False, default=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("body", JSONType, nullable=False),
    sa.Column("answer", JSONType, nullable=False),
    sa.UniqueConstraint("source_id", "event_id"),
    sa.Index("ix_events_dossier_timeline", "dossier_code", "occurred_at"),
)

dossiers = sa.Table(
    "dossiers",
    metadata,
    sa.Column("code", sa.String(40), primary_key=True),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("dvcqg_status", sa.SmallInteger(), nullable=False),
    sa.Column("state_at", UTCDateTime(), nullable=False),
    sa.Column("procedure_code", sa.String(64)),
    sa.Column("procedure_name", sa.String(500)),
    sa.Column("agency_code", sa.String(32)),
    sa.Column("agency_name", sa.String(300)),
    sa.Column("applicant_name", sa.String(200)),
    sa.Column("phone_raw", sa.String(200)),
    sa.Column("phone_e164", sa.String(16)),
    sa.Column("phone_problem", sa.String(32)),
    sa.Column("received_at", UTCDateTime()),
    sa.Column("received_by", sa.String(128)),
    sa.Column("due_at", UTCDateTime()),
    sa.Column("original_due_at", UTCDateTime()),
    sa.Column("finished_at", UTCDateTime()),
    sa.Column("finished_by_id", sa.String(128)),
    sa.Column("finished_by_name", sa.String(200)),
    sa.Column("reschedule_count", sa.Integer(), nullable=False, default=0),
    sa.Column("supplement_count", sa.Integer(), nullable=False, default=0),
    sa.Column("event_count", sa.Integer(), nullable=False, default=0),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    # NULL while the deadline sweep still watches the dossier; then "met" or "late".
    sa.Column("deadline_state", sa.String(8)),
    sa.Column("late_at", UTCDateTime()),
    sa.Index("ix_dossiers_phone", "phone_e164"),
    sa.Index("ix_dossiers_agency_received", "agency_code", "received_at"),
    # The audit sweep follows the dossiers that changed since its last run.
    sa.Index("ix_dossiers_updated", "updated_at"),
    # The deadline sweep walks only the dossiers it still watches, by due date.
    sa.Index(
        "ix_dossiers_watched_due",
        "due_at",
        sqlite_where=sa.text("deadline_state IS NULL"),
        postgresql_where=sa.text("deadline_state IS NULL"),
    ),
)

consultations = sa.Table(
    "consultations",
    metadata,
    sa.Column("dossier_code", sa.String(40), primary_key=True),
    sa.Column("consultation_id", sa.String(128), primary_key=True),
    sa.Column("agency_code", sa.String(32)),
    sa.Column("agency_name", sa.String(300)),
    sa.Column("requested_at", UTCDateTime()),
    sa.Column("due_at", UTCDateTime()),
    sa.Column("answered_at", UTCDateTime()),
)

flags = sa.Table(
    "flags",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("dossier_code", sa.String(40), nullable=False),
    sa.Column("source_id", sa.String(64), nullable=False),
    sa.Column("event_id", sa.String(128), nullable=False),
    sa.Column("rule", sa.String(48), nullable=False),
    sa.Column("detail", sa.String(500), nullable=False),
    sa.Column("occurred_at", UTCDateTime(), nullable=False),
    sa.Column("officer_id", sa.String(128)),
    sa.Column("officer_name", sa.String(200)),
    sa.Column("agency_code", sa.String(32)),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("source_id", "event_id", "rule"),
    sa.Index("ix_flags_dossier", "dossier_code"),
    sa.Index("ix_flags_rule_occurred", "rule", "occurred_at"),
    sa.Index("ix_flags_officer", "officer_id"),
)

notices = sa.Table(
    "notices",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("dossier_code", sa.String(40), nullable=False),
    sa.Column("source_id", sa.String(64), nullable=False),
    sa.Column("event_id", sa.String(128), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("dedupe_key", sa.String(200), nullable=False, unique=True),
    sa.Column("phone_e164", sa.String(16)),
    sa.Column("params", JSONType, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("channel", sa.String(16)),
    sa.Column("provider", sa.String(32)),
    sa.Column("attempts", sa.Integer(), nullable=False, default=0),
    sa.Column("last_error", sa.String(500)),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    # "urgent" (one-to-one, as events happen) or "bulk" (back-fills through the batch API).
    sa.Column("lane", sa.String(8), nullable=False, server_default="urgent"),
    # Not before this moment (quiet hours, retry back-off); NULL: as soon as possible.
    sa.Column("not_before", UTCDateTime()),
    sa.Column("text", sa.Text()),
    sa.Column("segments", sa.SmallInteger()),
    sa.Column("sent_at", UTCDateTime()),
    sa.Column("delivered_at", UTCDateTime()),
    # Why the channel was chosen or left ("follower in window", "ZNS -118: no Zalo account").
    sa.Column("route", sa.String(300)),
    # A ZNS notice with no receipt by then is checked with Zalo and falls back to SMS.
    sa.Column("receipt_due_at", UTCDateTime()),
    # Notices not tied to a one-stop event (report updates, result checks): the OA user.
    sa.Column("zalo_user_id", sa.String(32)),
    # The signed token of the link to the citizen page this notice carries (an SMS that
    # invites, asks about the result, or says notices moved to Zalo); NULL: no link.
    sa.Column("link_token", sa.String(24)),
    sa.Index("ix_notices_dossier", "dossier_code"),
    sa.Index(
        "ix_notices_link_token",
        "link_token",
        unique=True,
        sqlite_where=sa.text("link_token IS NOT NULL"),
        postgresql_where=sa.text("link_token IS NOT NULL"),
    ),
    # The relay finds rows stuck before sending without scanning delivered history.
    sa.Index("ix_notices_state_updated", "state", "updated_at"),
    sa.Index(
        "ix_notices_receipt_due",
        "receipt_due_at",
        sqlite_where=sa.text("receipt_due_at IS NOT NULL"),
        postgresql_where=sa.text("receipt_due_at IS NOT NULL"),
    ),
)

# One row per attempt to hand a notice to one provider on one channel. ``request_id`` is
# unique: it is checked before calling the provider and passed to providers that take an
# idempotency key, so a notice is never sent twice through the same provider.
deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("request_id", sa.String(48), primary_key=True),
    sa.Column("notice_id", sa.String(32), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("provider", sa.String(32), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("provider_message_id", sa.String(128)),
    sa.Column("error_code", sa.String(32)),
    sa.Column("error", sa.String(500)),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Index("ix_deliveries_notice", "notice_id"),
    sa.Index("ix_deliveries_provider_message", "provider", "provider_message_id"),
)

# --- Zalo Official Account, citizens' reports and ratings -------------------------------

# The rotating OA token pair: one row, replaced under a Redis lock at each refresh. It is
# kept here rather than only in Redis because losing it means an OA admin must re-consent.
zalo_tokens = sa.Table(
    "zalo_tokens",
    metadata,
    sa.Column("app_id", sa.String(32), primary_key=True),
    sa.Column("access_token", sa.Text(), nullable=False),
    sa.Column("refresh_token", sa.Text(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

# One row per OA user (the OA-scoped ``user_id``).
zalo_users = sa.Table(
    "zalo_users",
    metadata,
    sa.Column("user_id", sa.String(32), primary_key=True),
    sa.Column("display_name", sa.String(200)),
    sa.Column("follows", sa.Boolean(), nullable=False, default=False),
    sa.Column("last_interaction_at", UTCDateTime()),
    # The number the user proved to own with a one-time code sent to it (ZNS or SMS).
    sa.Column("phone_e164", sa.String(16)),
    sa.Column("verified_at", UTCDateTime()),
    # Set when the user asked for notices on Zalo instead of SMS for the proven number.
    sa.Column("subscribed_at", UTCDateTime()),
    # The number the user shared through request_user_info (its fields can be typed, so
    # it is only a claim until a one-time code sent to it comes back).
    sa.Column("claimed_phone_e164", sa.String(16)),
    sa.Column("claimed_at", UTCDateTime()),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Index("ix_zalo_users_phone_e164", "phone_e164"),
)

# Everything said on the OA, both ways, linked to what it concerns.
chat_messages = sa.Table(
    "chat_messages",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("user_id", sa.String(32), nullable=False),
    # "in" (citizen), "bot" (automatic reply), "staff" (hotline officer), "notice".
    sa.Column("direction", sa.String(8), nullable=False),
    # Inbound: the webhook's deduplication key; outbound: Zalo's message id.
    sa.Column("dedupe_key", sa.String(128), unique=True),
    sa.Column("event_name", sa.String(48)),
    sa.Column("text", sa.Text()),
    sa.Column("payload", JSONType),
    sa.Column("dossier_code", sa.String(40)),
    sa.Column("report_id", sa.BigInteger()),
    sa.Column("handoff_id", sa.BigInteger()),
    sa.Column("staff_id", sa.BigInteger()),
    # Inbound messages: when the bot finished with it (NULL: still to do after a crash).
    sa.Column("handled_at", UTCDateTime()),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Index("ix_chat_messages_user", "user_id", "id"),
    sa.Index("ix_chat_messages_dossier", "dossier_code"),
    sa.Index("ix_chat_messages_report", "report_id"),
    sa.Index("ix_chat_messages_handoff", "handoff_id"),
)

reports = sa.Table(
    "reports",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    # Shown to citizens: PA-<year>-<6 digits of id>.
    sa.Column("number", sa.String(24), unique=True),
    # "false_closure" or "problem".
    sa.Column("kind", sa.String(16), nullable=False),
    # "zalo", "result_check", "phone" (taken by the hotline), "web" (the citizen page).
    sa.Column("source", sa.String(16), nullable=False),
    # open -> in_progress -> resolved | rejected (Open311 words where they fit).
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("status_notes", sa.Text()),
    sa.Column("dossier_code", sa.String(40)),
    sa.Column("agency_code", sa.String(32)),
    sa.Column("agency_name", sa.String(300)),
    # The officer who closed the dossier (false closures are attributed to them).
    sa.Column("officer_id", sa.String(128)),
    sa.Column("officer_name", sa.String(200)),
    sa.Column("zalo_user_id", sa.String(32)),
    sa.Column("phone_e164", sa.String(16)),
    sa.Column("description", sa.Text(), nullable=False),
    sa.Column("expected_at", UTCDateTime()),
    # The hotline's finding on a false-closure report: "confirmed" or "not_confirmed".
    sa.Column("finding", sa.String(16)),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    # The staff user the report is assigned to at the console (NULL: nobody yet).
    sa.Column("assignee_id", sa.BigInteger()),
    sa.Column("assigned_at", UTCDateTime()),
    # How the citizen proved to own the dossier's phone: "otp" (a one-time code),
    # "proven_phone" (an OA user's proven number), "sms_link" (the signed link of an SMS
    # sent to that phone), "staff" (taken by the hotline); NULL before this was recorded.
    sa.Column("proof", sa.String(16)),
    sa.Index("ix_reports_status_created", "status", "created_at"),
    sa.Index("ix_reports_agency", "agency_code"),
    sa.Index("ix_reports_dossier", "dossier_code"),
)

report_transitions = sa.Table(
    "report_transitions",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("report_id", sa.BigInteger(), nullable=False),
    sa.Column("from_status", sa.String(16)),
    sa.Column("to_status", sa.String(16), nullable=False),
    sa.Column("note", sa.Text()),
    # "citizen", "system" or "staff:<id>".
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Index("ix_report_transitions_report", "report_id"),
)

ratings = sa.Table(
    "ratings",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("dossier_code", sa.String(40), nullable=False),
    sa.Column("agency_code", sa.String(32)),
    # The OA user who rated; NULL for ratings from the web page or a ZNS rating template.
    sa.Column("zalo_user_id", sa.String(32)),
    # One overall score: ratings recorded before the two scores were asked (NULL since).
    sa.Column("score", sa.SmallInteger()),
    # The two scores citizens give (1-5): the handling's progress (tiến độ) and quality
    # (chất lượng tiếp nhận, giải quyết).
    sa.Column("progress_score", sa.SmallInteger()),
    sa.Column("quality_score", sa.SmallInteger()),
    # "oa", "web" or "zns": where the rating came from.
    sa.Column("channel", sa.String(8), nullable=False, server_default="oa"),
    # Who rated, one rating each per dossier: "oa:<user id>", or "phone" for the
    # dossier's own phone (the web page and ZNS, where ownership was proven for it).
    sa.Column("rater", sa.String(48), nullable=False),
    sa.Column("comment", sa.Text()),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("dossier_code", "rater"),
    sa.Index("ix_ratings_agency_created", "agency_code", "created_at"),
)

# A citizen asked for a person: hotline staff answer through the OA.
handoffs = sa.Table(
    "handoffs",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("user_id", sa.String(32), nullable=False),
    sa.Column("dossier_code", sa.String(40)),
    # "open" or "closed".
    sa.Column("status", sa.String(8), nullable=False),
    sa.Column("opened_at", UTCDateTime(), nullable=False),
    sa.Column("closed_at", UTCDateTime()),
    sa.Column("last_message_at", UTCDateTime(), nullable=False),
    # When staff last opened the conversation: later citizen messages are "unread".
    sa.Column("staff_read_at", UTCDateTime()),
    sa.Index("ix_handoffs_status_last", "status", "last_message_at"),
    sa.Index("ix_handoffs_user", "user_id"),
)

# Asked some working days after an invitation: did the citizen get the result?
result_checks = sa.Table(
    "result_checks",
    metadata,
    sa.Column("dossier_code", sa.String(40), primary_key=True),
    sa.Column("phone_e164", sa.String(16)),
    sa.Column("due_at", UTCDateTime(), nullable=False),
    # scheduled -> asked -> received | not_received; skipped (no channel, or delivered).
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("zalo_user_id", sa.String(32)),
    sa.Column("notice_id", sa.String(32)),
    sa.Column("asked_at", UTCDateTime()),
    sa.Column("answered_at", UTCDateTime()),
    # Where the answer came from: "oa" or "web".
    sa.Column("answer_channel", sa.String(8)),
    sa.Index("ix_result_checks_state_due", "state", "due_at"),
)

# Hotline officers, auditors and admins. Only a hash of the personal API token is kept.
staff_users = sa.Table(
    "staff_users",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    # "hotline", "auditor" or "admin".
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("disabled_at", UTCDateTime()),
    # The console password as an argon2 PHC string; NULL for a user who has only a token.
    sa.Column("password_hash", sa.String(200)),
    sa.Column("password_changed_at", UTCDateTime()),
    # The optional second factor (RFC 6238 TOTP): the base32 secret once enrolled, when it
    # was confirmed, and the last time step accepted (a code is never accepted twice).
    sa.Column("totp_secret", sa.String(64)),
    sa.Column("totp_enabled_at", UTCDateTime()),
    sa.Column("totp_last_step", sa.BigInteger()),
)

# What staff did (logins, reveals of a phone, exports, decisions...): append-only, the code
# never updates or deletes a row. ``username`` is kept as typed, so a failed login with an
# unknown name is recorded too (``staff_id`` NULL then). ``detail`` never holds a password
# or an unmasked phone number.
staff_audit_log = sa.Table(
    "staff_audit_log",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Column("staff_id", sa.BigInteger()),
    sa.Column("username", sa.String(64), nullable=False),
    # "login", "login_failed", "logout", "reveal_phone", "export", "password_changed", ...
    sa.Column("action", sa.String(32), nullable=False),
    # What was acted on, as "kind:id" (e.g. "report:12"); NULL for a login.
    sa.Column("target", sa.String(128)),
    sa.Column("detail", JSONType),
    sa.Column("remote_addr", sa.String(64)),
    sa.Index("ix_staff_audit_log_staff", "staff_id", "id"),
    sa.Index("ix_staff_audit_log_action", "action", "id"),
)


# --- accountability ------------------------------------------------------------------

# The officer directory: imported from the province's list, or learnt from events' actors.
officers = sa.Table(
    "officers",
    metadata,
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("name", sa.String(200)),
    sa.Column("agency_code", sa.String(32)),
    sa.Column("unit", sa.String(200)),
    sa.Column("supervisor_id", sa.String(128)),
    # "import" (tthc officers import) or "event" (first seen as an event's actor); an
    # import always wins over what events say.
    sa.Column("origin", sa.String(8), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Index("ix_officers_agency", "agency_code"),
)

# One row per dossier: the lateness verdict and the facts statistics count, derived from
# the dossier's timeline and rewritten whenever it is audited again.
dossier_audit = sa.Table(
    "dossier_audit",
    metadata,
    sa.Column("dossier_code", sa.String(40), primary_key=True),
    sa.Column("agency_code", sa.String(32)),
    sa.Column("agency_name", sa.String(300)),
    sa.Column("received_by", sa.String(128)),
    # The officer who posted the event that ended the dossier (finished, refused,
    # withdrawn; delivered when nothing earlier ended it).
    sa.Column("closed_by", sa.String(128)),
    sa.Column("received_at", UTCDateTime()),
    # "YYYY-MM" in TIME_ZONE: statistics group by these without date functions.
    sa.Column("received_month", sa.String(7)),
    # The original appointment date (local), and that date moved by the working days the
    # agency waited for the citizen's supplement.
    sa.Column("due_date", sa.Date()),
    sa.Column("effective_due_date", sa.Date()),
    sa.Column("ended_at", UTCDateTime()),
    sa.Column("ended_month", sa.String(7)),
    # "finished", "delivered", "refused" or "withdrawn".
    sa.Column("end_kind", sa.String(16)),
    # "open", "on_time", "late" or "late_with_apology".
    sa.Column("verdict", sa.String(24), nullable=False),
    sa.Column("supplement_requests", sa.SmallInteger(), nullable=False),
    sa.Column("apologies", sa.SmallInteger(), nullable=False),
    # No usable mobile number at receipt (missing, invalid or a landline).
    sa.Column("missing_phone", sa.Boolean(), nullable=False),
    sa.Column("audited_at", UTCDateTime(), nullable=False),
    sa.Index("ix_dossier_audit_ended", "ended_month", "agency_code"),
    sa.Index("ix_dossier_audit_received", "received_month", "agency_code"),
    sa.Index("ix_dossier_audit_closed_by", "ended_month", "closed_by"),
    sa.Index("ix_dossier_audit_received_by", "received_month", "received_by"),
    sa.Index("ix_dossier_audit_open_due", "verdict", "effective_due_date"),
)

# The violations ledger: append-only. A row is never updated or deleted; what auditors
# decide is appended to violation_decisions.
violations = sa.Table(
    "violations",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    # Stable key of the finding (rule, dossier, subject): nothing is recorded twice.
    sa.Column("fingerprint", sa.String(300), nullable=False, unique=True),
    sa.Column("rule", sa.String(48), nullable=False),
    sa.Column("dossier_code", sa.String(40)),
    sa.Column("officer_id", sa.String(128)),
    sa.Column("officer_name", sa.String(200)),
    sa.Column("agency_code", sa.String(32)),
    sa.Column("agency_name", sa.String(300)),
    sa.Column("occurred_at", UTCDateTime(), nullable=False),
    sa.Column("detected_at", UTCDateTime(), nullable=False),
    # The ids of the events that prove it.
    sa.Column("evidence", JSONType, nullable=False),
    sa.Column("detail", sa.String(500), nullable=False),
    # {"sanction", "reassign", "supervisor": {"id", "name"} | null, "repeat_of"} or null.
    sa.Column("suggestion", JSONType),
    sa.Column("report_id", sa.BigInteger()),
    sa.Index("ix_violations_officer_rule", "officer_id", "rule", "occurred_at"),
    sa.Index("ix_violations_agency", "agency_code", "occurred_at"),
    sa.Index("ix_violations_dossier", "dossier_code"),
)

# Auditors' decisions on violations, append-only: the latest one is the violation's status.
violation_decisions = sa.Table(
    "violation_decisions",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("violation_id", sa.BigInteger(), nullable=False),
    # "applied" or "dismissed".
    sa.Column("decision", sa.String(16), nullable=False),
    sa.Column("sanction", sa.String(32)),
    sa.Column("note", sa.Text()),
    # The staff user who decided; NULL for the gateway itself (a rule no longer holds).
    sa.Column("staff_id", sa.BigInteger()),
    sa.Column("decided_at", UTCDateTime(), nullable=False),
    sa.Index("ix_violation_decisions_violation", "violation_id"),
)

# Reminders to a consulted agency whose answer is overdue: the first at the due date, the
# second some working days later, copied to the Department of Home Affairs.
consultation_reminders = sa.Table(
    "consultation_reminders",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("dossier_code", sa.String(40), nullable=False),
    sa.Column("consultation_id", sa.String(128), nullable=False),
    sa.Column("number", sa.SmallInteger(), nullable=False),
    sa.Column("agency_code", sa.String(32)),
    sa.Column("copied_to", sa.String(200)),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("dossier_code", "consultation_id", "number"),
)

# One-time codes sent to a phone to prove its owner is the one asking (gateway.trust.otp).
# Only an HMAC of the code is kept; rows are erased by the retention job.
one_time_codes = sa.Table(
    "one_time_codes",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("phone_e164", sa.String(16), nullable=False),
    # What the code proves: "phone" (the asker owns this number) or "dossier" (the asker
    # owns the dossier's phone; the number itself is never shown to them).
    sa.Column("purpose", sa.String(8), nullable=False),
    sa.Column("dossier_code", sa.String(40)),
    # Who asked: "zalo:<user id>" or "web:<session digest>"; only they may answer it.
    sa.Column("requester", sa.String(80), nullable=False),
    sa.Column("code_hash", sa.String(64), nullable=False),
    sa.Column("attempts", sa.SmallInteger(), nullable=False, default=0),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.Column("used_at", UTCDateTime()),
    # The notice that carries the code (kind "otp").
    sa.Column("notice_id", sa.String(32)),
    sa.Index("ix_one_time_codes_requester_created", "requester", "created_at"),
    sa.Index("ix_one_time_codes_phone_created", "phone_e164", "created_at"),
)
