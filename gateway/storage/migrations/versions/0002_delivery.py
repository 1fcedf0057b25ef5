"""Delivery: attempts per provider, lanes, quiet-hours deferral, deadline watch

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 03:52:35.552744
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "deliveries",
        sa.Column("request_id", sa.String(length=48), nullable=False),
        sa.Column("notice_id", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("provider_message_id", sa.String(length=128), nullable=True),
        sa.Column("error_code", sa.String(length=32), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_deliveries")),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_deliveries_notice", ["notice_id"], unique=False)
        batch_op.create_index(
            "ix_deliveries_provider_message", ["provider", "provider_message_id"], unique=False
        )

    with op.batch_alter_table("dossiers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("deadline_state", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("late_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.drop_index(batch_op.f("ix_dossiers_open_due"))
        batch_op.create_index(
            "ix_dossiers_watched_due",
            ["due_at"],
            unique=False,
            sqlite_where=sa.text("deadline_state IS NULL"),
            postgresql_where=sa.text("deadline_state IS NULL"),
        )

    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("lane", sa.String(length=8), server_default="urgent", nullable=False)
        )
        batch_op.add_column(sa.Column("not_before", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("text", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("segments", sa.SmallInteger(), nullable=True))
        batch_op.add_column(sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.drop_column("delivered_at")
        batch_op.drop_column("sent_at")
        batch_op.drop_column("segments")
        batch_op.drop_column("text")
        batch_op.drop_column("not_before")
        batch_op.drop_column("lane")

    with op.batch_alter_table("dossiers", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_dossiers_watched_due",
            sqlite_where=sa.text("deadline_state IS NULL"),
            postgresql_where=sa.text("deadline_state IS NULL"),
        )
        batch_op.create_index(batch_op.f("ix_dossiers_open_due"), ["due_at", "state"], unique=False)
        batch_op.drop_column("late_at")
        batch_op.drop_column("deadline_state")

    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_provider_message")
        batch_op.drop_index("ix_deliveries_notice")

    op.drop_table("deliveries")
