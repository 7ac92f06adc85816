"""The server's clock: every timestamp the server writes comes from :func:`now` (UTC)."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)
