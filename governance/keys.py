"""Where private keys live under a project root: the system key and demo keys.

The system key signs the audit-log entries harmcast writes itself (register,
publish, snapshot, policy changes); its public key is in the sealed policy.
Demo keys are software keys generated for a demonstration board. Both are
kept under ``<root>/.harmcast/keys/``, readable by their owner only (0600).
A real board member's private key never lives under the root.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from governance.auditlog import DEFAULT_LOG
from governance.signing import generate_ed25519, read_private_key, write_private_key

__all__ = [
    "KEYS_DIR",
    "system_key_path",
    "demo_key_path",
    "ensure_system_key",
    "load_system_key",
    "root_of_log",
]

KEYS_DIR = Path(".harmcast/keys")


def system_key_path(root: str | Path) -> Path:
    """Return the system key's path under a project root."""
    return Path(root) / KEYS_DIR / "system.key"


def demo_key_path(root: str | Path, member: str) -> Path:
    """Return where a demo member's generated key is kept under a project root."""
    return Path(root) / KEYS_DIR / "demo" / f"{member}.key"


def ensure_system_key(root: str | Path) -> Ed25519PrivateKey:
    """Return the root's system key, generating it (0600) when absent."""
    path = system_key_path(root)
    if path.is_file():
        return read_private_key(path)
    key = generate_ed25519()
    write_private_key(key, path)
    return key


def load_system_key(root: str | Path) -> Ed25519PrivateKey | None:
    """Return the root's system key, or None when it has none."""
    path = system_key_path(root)
    return read_private_key(path) if path.is_file() else None


def root_of_log(log_path: str | Path) -> Path:
    """Return the project root of an audit log kept at its default place."""
    path = Path(log_path).resolve()
    depth = len(DEFAULT_LOG.parts)
    return path.parents[depth - 1] if len(path.parents) >= depth else path.parent
