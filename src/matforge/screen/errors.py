"""The error a screen raises for a bad specification; it lives in :mod:`matforge.errors` with
the others and is re-exported here for the screen modules."""

from matforge.errors import ScreenError

__all__ = ["ScreenError"]
