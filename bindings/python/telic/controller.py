"""Placeholder until the native controller lands (development only)."""
class Controller:  # noqa: D101
    pass
