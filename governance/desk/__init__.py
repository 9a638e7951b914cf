"""The board's review desk: members sign in with a passkey and sign each decision with it.

It writes the registry (approval aliases and tags, the audit log), so it runs as
its own process (``harmcast board serve``), never inside the forecast service.
"""
