"""Placeholder: filled in by the walking skeleton."""


def register(group) -> None:
    pass
