"""Demo data of the hotel plugin (placeholder, replaced below)."""


def load(session, tenant) -> None:
    return None
