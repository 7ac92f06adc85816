"""The applicability domain and materials map, :class:`~matforge.models.domain.DomainModel`.

It lives in :mod:`matforge.models.domain` (every fitted model keeps one); the screening code and
its users import it from here too.
"""

from __future__ import annotations

from matforge.models.domain import DomainModel

__all__ = ["DomainModel"]
