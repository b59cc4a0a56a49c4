"""The case store's tables: cases, the intake ledger, blobs, the outbox, watermarks.

Cases keep their whole record as JSON (the pydantic model is the schema) beside the few columns
that queries filter on; those columns are written from the record on every save, never by hand.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on SQLite (naive storage) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("the case store only takes aware datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

case_counters = Table(
    "case_counters",
    metadata,
    Column("month", String(6), primary_key=True),
    Column("last_sequence", Integer, nullable=False),
)

cases = Table(
    "cases",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("number", String(16), nullable=False, unique=True),
    Column("status", String(32), nullable=False, index=True),
    Column("priority", String(4), nullable=False, index=True),
    Column("problem_type", String(32), nullable=False),
    Column("owner", String(200)),
    Column("submitter_email", String(320), index=True),
    Column("source_kind", String(16), nullable=False),
    Column("jira_key", String(64), unique=True),
    Column("due_at", UtcDateTime()),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("record", JSON, nullable=False),
)

blobs = Table(
    "blobs",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("content", LargeBinary, nullable=False),
)

ledger = Table(
    "ledger",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(16), nullable=False),
    Column("location", String(512), nullable=False),
    Column("identity", String(512), nullable=False, index=True),
    Column("message_id", String(512), index=True),
    Column("blob_sha256", String(64), ForeignKey("blobs.sha256")),
    Column("decision", String(32), nullable=False, index=True),
    Column("reason", Text, nullable=False),
    Column("case_number", String(16), index=True),
    Column("received_at", UtcDateTime()),
    Column("recorded_at", UtcDateTime(), nullable=False),
    Column("detail", JSON),
    UniqueConstraint("source", "location", name="uq_ledger_source_location"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(300), nullable=False, unique=True),
    Column("case_number", String(16), index=True),
    Column("kind", String(48), nullable=False),
    Column("recipients", JSON, nullable=False),
    Column("subject", Text, nullable=False),
    Column("message_id", String(512), nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UtcDateTime(), nullable=False),
    Column("last_error", Text),
    Column("server_answer", Text),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("sent_at", UtcDateTime()),
    Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"),
)

watermarks = Table(
    "watermarks",
    metadata,
    Column("name", String(300), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

suppressed_addresses = Table(
    "suppressed_addresses",
    metadata,
    Column("address", String(320), primary_key=True),
    Column("reason", Text, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)
