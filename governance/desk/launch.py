"""Resolve the desk's settings from a project's ``Params`` (the command's one call)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from governance.auditlog import default_log_path
from governance.desk.settings import DeskSettings
from training.config import tracking_uri

__all__ = ["desk_settings", "desk_origins"]


def desk_origins(rp_id: str, port: int, host: str) -> tuple[str, ...]:
    """Return the origins a browser may reach the desk from (the RP id and bound host)."""
    names = dict.fromkeys([rp_id, host if host not in ("0.0.0.0", "::") else rp_id])
    return tuple(f"{scheme}://{name}:{port}" for name in names for scheme in ("http", "https"))


def desk_settings(
    params: Any, *, host: str, port: int, rp_id: str = "localhost", secure_cookie: bool = False
) -> DeskSettings:
    """Return the desk's settings over the project root that ``params`` describes."""
    root = Path(params.paths.root).resolve()
    return DeskSettings(
        root=root,
        tracking_uri=tracking_uri(params),
        model_name=params.tracking.registered_model,
        # The root's own policy file: the sealed chain's head once the board is set up.
        policy_path=params.paths.resolve("policy"),
        audit_log=default_log_path(root),
        cards_root=params.paths.resolve("model_cards"),
        rp_id=rp_id,
        origins=desk_origins(rp_id, port, host),
        secure_cookie=secure_cookie,
    )
