def load(session, tenant):
    return None
