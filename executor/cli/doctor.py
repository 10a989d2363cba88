def register(group) -> None:
    pass
