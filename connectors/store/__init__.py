"""The case store (SQLAlchemy 2; SQLite by default, PostgreSQL by URL)."""

from connectors.store.records import (
    LedgerDecision,
    LedgerEntry,
    OutboxItem,
    OutboxMessage,
    OutboxStatus,
)
from connectors.store.store import CaseStore, StoreTransaction, sha256_hex

__all__ = [
    "CaseStore",
    "LedgerDecision",
    "LedgerEntry",
    "OutboxItem",
    "OutboxMessage",
    "OutboxStatus",
    "StoreTransaction",
    "sha256_hex",
]
