"""The error a screen raises for a bad specification (space, expression, ranking, checkpoint)."""

from matforge.errors import MatforgeError


class ScreenError(MatforgeError, ValueError):
    """A screening space, filter expression, ranking or checkpoint is invalid."""
