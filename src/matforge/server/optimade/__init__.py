"""The read-only OPTIMADE endpoint over the store's materials (see :mod:`.api`)."""
