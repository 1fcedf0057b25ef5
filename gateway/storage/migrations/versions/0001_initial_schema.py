"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22 03:16:07.369994
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "consultations",
        sa.Column("dossier_code", sa.String(length=40), nullable=False),
        sa.Column("consultation_id", sa.String(length=128), nullable=False),
        sa.Column("agency_code", sa.String(length=32), nullable=True),
        sa.Column("agency_name", sa.String(length=300), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("dossier_code", "consultation_id", name=op.f("pk_consultations")),
    )
    op.create_table(
        "dossiers",
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("dvcqg_status", sa.SmallInteger(), nullable=False),
        sa.Column("state_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("procedure_code", sa.String(length=64), nullable=True),
        sa.Column("procedure_name", sa.String(length=500), nullable=True),
        sa.Column("agency_code", sa.String(length=32), nullable=True),
        sa.Column("agency_name", sa.String(length=300), nullable=True),
        sa.Column("applicant_name", sa.String(length=200), nullable=True),
        sa.Column("phone_raw", sa.String(length=200), nullable=True),
        sa.Column("phone_e164", sa.String(length=16), nullable=True),
        sa.Column("phone_problem", sa.String(length=32), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_by", sa.String(length=128), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("original_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_by_id", sa.String(length=128), nullable=True),
        sa.Column("finished_by_name", sa.String(length=200), nullable=True),
        sa.Column("reschedule_count", sa.Integer(), nullable=False),
        sa.Column("supplement_count", sa.Integer(), nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_dossiers")),
    )
    with op.batch_alter_table("dossiers", schema=None) as batch_op:
        batch_op.create_index(
            "ix_dossiers_agency_received", ["agency_code", "received_at"], unique=False
        )
        batch_op.create_index("ix_dossiers_open_due", ["due_at", "state"], unique=False)
        batch_op.create_index("ix_dossiers_phone", ["phone_e164"], unique=False)

    op.create_table(
        "events",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("source_id", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("type", sa.String(length=48), nullable=False),
        sa.Column("dossier_code", sa.String(length=40), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.String(length=128), nullable=True),
        sa.Column("actor_name", sa.String(length=200), nullable=True),
        sa.Column("superseded", sa.Boolean(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("body", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column(
            "answer", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_events")),
        sa.UniqueConstraint("source_id", "event_id", name=op.f("uq_events_source_id_event_id")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_events_dossier_timeline", ["dossier_code", "occurred_at"], unique=False
        )

    op.create_table(
        "flags",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("dossier_code", sa.String(length=40), nullable=False),
        sa.Column("source_id", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("rule", sa.String(length=48), nullable=False),
        sa.Column("detail", sa.String(length=500), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("officer_id", sa.String(length=128), nullable=True),
        sa.Column("officer_name", sa.String(length=200), nullable=True),
        sa.Column("agency_code", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flags")),
        sa.UniqueConstraint(
            "source_id", "event_id", "rule", name=op.f("uq_flags_source_id_event_id_rule")
        ),
    )
    with op.batch_alter_table("flags", schema=None) as batch_op:
        batch_op.create_index("ix_flags_dossier", ["dossier_code"], unique=False)
        batch_op.create_index("ix_flags_officer", ["officer_id"], unique=False)
        batch_op.create_index("ix_flags_rule_occurred", ["rule", "occurred_at"], unique=False)

    op.create_table(
        "notices",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("dossier_code", sa.String(length=40), nullable=False),
        sa.Column("source_id", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column("phone_e164", sa.String(length=16), nullable=True),
        sa.Column(
            "params", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=True),
        sa.Column("provider", sa.String(length=32), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notices")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_notices_dedupe_key")),
    )
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.create_index("ix_notices_dossier", ["dossier_code"], unique=False)
        batch_op.create_index("ix_notices_state_updated", ["state", "updated_at"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.drop_index("ix_notices_state_updated")
        batch_op.drop_index("ix_notices_dossier")

    op.drop_table("notices")
    with op.batch_alter_table("flags", schema=None) as batch_op:
        batch_op.drop_index("ix_flags_rule_occurred")
        batch_op.drop_index("ix_flags_officer")
        batch_op.drop_index("ix_flags_dossier")

    op.drop_table("flags")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_dossier_timeline")

    op.drop_table("events")
    with op.batch_alter_table("dossiers", schema=None) as batch_op:
        batch_op.drop_index("ix_dossiers_phone")
        batch_op.drop_index("ix_dossiers_open_due")
        batch_op.drop_index("ix_dossiers_agency_received")

    op.drop_table("dossiers")
    op.drop_table("consultations")
