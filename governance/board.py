"""The policy chain: which policy (roster, keys, quorum, thresholds) is in force.

The policy in force is a sealed genesis policy plus amendments, each amendment
signed by a quorum of the policy it replaces. Everything lives under
``<root>/governance/board/``:

- ``draft.yaml``: the genesis being set up; members' public keys are added to
  it (:func:`add_member_key`) until it is sealed (:func:`seal_genesis`);
- ``policies/<sha256>.yaml``: the exact bytes of every policy ever in force;
- ``chain.jsonl``: one line per policy: the genesis, then each amendment with
  its DSSE envelope (payload type ``AMENDMENT_TYPE``);
- ``proposals/<sha256>.{yaml,json}``: amendments gathering signatures.

The root's ``governance/policy.yaml`` must be byte for byte the head of the
chain: a file swapped under the root is refused, naming both hashes. The
genesis is trusted on first use; its hash is also kept on the registered
model (tag ``harmcast.genesis_policy_sha256``) and in the audit log, so a
genesis replaced later is caught.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from governance.auditlog import SYSTEM_ACTOR, append_entry
from governance.evidence import canonical_json, sha256_bytes, sha256_file
from governance.keys import ensure_system_key
from governance.policy import Policy, load_policy
from governance.signing import (
    AMENDMENT_TYPE,
    KeyRecord,
    SignatureError,
    envelope_for,
    envelope_from_dict,
    envelope_to_dict,
    verify_envelope,
)
from training.errors import HarmcastError

__all__ = [
    "BOARD_DIR",
    "POLICY_FILE",
    "TAG_GENESIS",
    "PolicyNotInForce",
    "BoardSetupError",
    "PolicyChain",
    "Proposal",
    "board_dir",
    "start_setup",
    "add_member_key",
    "seal_genesis",
    "is_sealed",
    "policy_in_force",
    "policy_by_sha",
    "propose_amendment",
    "amendment_payload",
    "amendment_envelope",
    "sign_amendment",
]

BOARD_DIR = Path("governance/board")
POLICY_FILE = Path("governance/policy.yaml")
TAG_GENESIS = "harmcast.genesis_policy_sha256"
CHAIN_MODEL = "*"

MSG_NOT_SEALED = (
    "{root}: the board has no sealed policy ({chain} not found): set up the board "
    "(harmcast board setup, add-key, seal) before any decision"
)
MSG_SWAPPED = (
    "{path}: policy file hashes to {actual} but the policy in force is {expected} "
    "(chain entry {n}); a policy change needs an amendment signed by a quorum of the "
    "policy it replaces (harmcast board amend)"
)
MSG_STORE_EDITED = "{path}: stored policy hashes to {actual}, not {expected} (chain entry {n})"
MSG_CHAIN_LINK = "chain entry {n}: replaces {got} but the previous policy is {expected}"
MSG_AMENDMENT_QUORUM = (
    "chain entry {n}: amendment to {sha} carries valid signatures of {members}, "
    "fewer than the quorum {quorum} of the policy it replaces"
)
MSG_AMENDMENT_PAYLOAD = "chain entry {n}: the amendment envelope does not name policy {sha}"
MSG_GENESIS_TAG = (
    "registered model {model!r} records genesis policy {tagged} but the board's chain "
    "starts at {chain}: the policy chain was replaced"
)
MSG_NOT_IN_CHAIN = (
    "policy {sha} is not in the board's policy chain ({chain}): it was never sealed or "
    "adopted by amendment"
)
MSG_ALREADY_SEALED = "{chain}: the genesis is already sealed; change the policy by amendment"
MSG_NO_DRAFT = "{draft}: no draft genesis: run harmcast board setup first"
MSG_NOT_MEMBER = "{member!r} is not on the draft roster ({roster})"
MSG_TOO_FEW_KEYS = (
    "only {n} roster member(s) hold a key ({members}); the quorum of {quorum} could never "
    "be reached"
)
MSG_NO_PROPOSAL = "no amendment proposal {sha} under {dir}"
MSG_PROPOSAL_STALE = (
    "proposal {sha} replaces policy {replaces}, but the policy in force is now {head}"
)


class PolicyNotInForce(HarmcastError, PermissionError):
    """A policy file, or the chain behind it, is not the board's policy in force."""


class BoardSetupError(HarmcastError, ValueError):
    """The board's setup (draft genesis, keys, amendments) cannot proceed."""


@dataclass(frozen=True)
class PolicyChain:
    """The verified chain: the policy in force and every policy before it."""

    root: Path
    head: Policy
    genesis_sha256: str
    shas: list[str]
    policies: dict[str, Policy] = field(repr=False)

    def get(self, sha: str) -> Policy:
        """Return a policy of the chain by its hash.

        Raises
        ------
        PolicyNotInForce
            When no policy of the chain has that hash.
        """
        if sha not in self.policies:
            raise PolicyNotInForce(MSG_NOT_IN_CHAIN.format(sha=sha, chain=_chain_path(self.root)))
        return self.policies[sha]

    def system_keys(self) -> list[KeyRecord]:
        """Return every system key any policy of the chain has held."""
        seen: dict[str, KeyRecord] = {}
        for policy in self.policies.values():
            seen.update({k.fingerprint: k for k in policy.board.system_keys})
        return list(seen.values())


@dataclass(frozen=True)
class Proposal:
    """An amendment gathering signatures."""

    policy_sha256: str
    replaces: str
    envelope: dict[str, Any]
    members: list[str]
    quorum: int
    adopted: bool


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def board_dir(root: str | Path) -> Path:
    """Return the board's folder under a project root."""
    return Path(root) / BOARD_DIR


def _chain_path(root: Path) -> Path:
    return board_dir(root) / "chain.jsonl"


def _draft_path(root: Path) -> Path:
    return board_dir(root) / "draft.yaml"


def _store_path(root: Path, sha: str) -> Path:
    return board_dir(root) / "policies" / f"{sha}.yaml"


def is_sealed(root: str | Path) -> bool:
    """Return True when the root's board has a sealed genesis."""
    return _chain_path(Path(root)).is_file()


# --- setup: a draft genesis ------------------------------------------------------


def start_setup(root: str | Path, source: str | Path) -> Path:
    """Start a draft genesis from a policy file (kept when a draft exists already).

    Raises
    ------
    BoardSetupError
        When the genesis is already sealed.
    """
    root = Path(root)
    if is_sealed(root):
        raise BoardSetupError(MSG_ALREADY_SEALED.format(chain=_chain_path(root)))
    draft = _draft_path(root)
    if not draft.is_file():
        load_policy(source)  # refuse an invalid source before copying it
        draft.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, draft)
    return draft


def _read_draft(root: Path) -> dict[str, Any]:
    draft = _draft_path(root)
    if is_sealed(root):
        raise BoardSetupError(MSG_ALREADY_SEALED.format(chain=_chain_path(root)))
    if not draft.is_file():
        raise BoardSetupError(MSG_NO_DRAFT.format(draft=draft))
    return yaml.safe_load(draft.read_text()) or {}


def _write_draft(root: Path, raw: dict[str, Any]) -> None:
    text = yaml.safe_dump(raw, sort_keys=False, allow_unicode=True, width=100)
    _draft_path(root).write_text(text)


def add_member_key(root: str | Path, member_id: str, key_record: KeyRecord | dict) -> KeyRecord:
    """Add a member's public key to the draft genesis (setup only).

    Raises
    ------
    BoardSetupError
        When the genesis is sealed, there is no draft, or the member is off the roster.
    """
    root = Path(root)
    key = KeyRecord.model_validate(key_record)
    raw = _read_draft(root)
    roster = raw.get("board", {}).get("roster", [])
    member = next((m for m in roster if m.get("id") == member_id), None)
    if member is None:
        ids = ", ".join(m.get("id", "?") for m in roster)
        raise BoardSetupError(MSG_NOT_MEMBER.format(member=member_id, roster=ids))
    keys = [k for k in member.get("keys", []) if k.get("fingerprint") != key.fingerprint]
    member["keys"] = [*keys, key.model_dump(exclude_defaults=False)]
    _write_draft(root, raw)
    return key


def _append_chain(root: Path, entry: dict[str, Any]) -> None:
    path = _chain_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry, sort_keys=True) + "\n")


def _install(root: Path, data: bytes, policy_path: Path) -> str:
    sha = sha256_bytes(data)
    store = _store_path(root, sha)
    store.parent.mkdir(parents=True, exist_ok=True)
    store.write_bytes(data)
    policy_path.parent.mkdir(parents=True, exist_ok=True)
    staging = policy_path.with_name(policy_path.name + ".tmp")
    staging.write_bytes(data)
    staging.replace(policy_path)
    return sha


def _tag_genesis(tracking_uri: str | None, model_name: str | None, sha: str) -> None:
    if not tracking_uri or not model_name:
        return
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        client.get_registered_model(model_name)
    except MlflowException:
        client.create_registered_model(model_name)
    client.set_registered_model_tag(model_name, TAG_GENESIS, sha)


def seal_genesis(
    root: str | Path,
    *,
    audit_log: str | Path,
    tracking_uri: str | None = None,
    model_name: str | None = None,
    policy_path: str | Path | None = None,
) -> PolicyChain:
    """Seal the draft as the genesis policy and put it in force.

    The root's system key is created when absent and its public key written
    into the policy. The sealed bytes go to ``policy_path`` (default
    ``<root>/governance/policy.yaml``) and the content store; the genesis hash
    goes to the chain, the audit log and (with a registry) the registered model.

    Raises
    ------
    BoardSetupError
        When there is no draft, it is already sealed, or fewer members hold a
        key than the quorum needs.
    """
    root = Path(root)
    raw = _read_draft(root)
    board = raw.setdefault("board", {})
    system = ensure_system_key(root)
    from governance.signing import ed25519_key_record

    record = ed25519_key_record(system)
    kept = [k for k in board.get("system_keys", []) if k.get("fingerprint") != record.fingerprint]
    board["system_keys"] = [*kept, record.model_dump()]
    _write_draft(root, raw)
    policy = load_policy(_draft_path(root))
    holders = [r.id for r in policy.board.roster if r.keys]
    if len(holders) < policy.board.quorum:
        raise BoardSetupError(
            MSG_TOO_FEW_KEYS.format(
                n=len(holders), members=", ".join(holders) or "none", quorum=policy.board.quorum
            )
        )
    data = _draft_path(root).read_bytes()
    target = Path(policy_path) if policy_path else root / POLICY_FILE
    sha = _install(root, data, target)
    _append_chain(root, {"n": 1, "kind": "genesis", "policy_sha256": sha, "sealed_at": _now()})
    _draft_path(root).unlink()
    _tag_genesis(tracking_uri, model_name, sha)
    append_entry(
        audit_log, actor=SYSTEM_ACTOR, action="genesis", model=model_name or CHAIN_MODEL,
        version=None, details={"policy_sha256": sha, "members": holders}, signer=system,
    )  # fmt: skip
    return policy_in_force(root, policy_path=target)


# --- the chain in force ----------------------------------------------------------


def _read_chain(root: Path) -> list[dict[str, Any]]:
    path = _chain_path(root)
    if not path.is_file():
        raise PolicyNotInForce(MSG_NOT_SEALED.format(root=root, chain=path))
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _stored_policy(root: Path, sha: str, n: int) -> Policy:
    store = _store_path(root, sha)
    if not store.is_file():
        raise PolicyNotInForce(MSG_NOT_IN_CHAIN.format(sha=sha, chain=_chain_path(root)))
    actual = sha256_file(store)
    if actual != sha:
        raise PolicyNotInForce(
            MSG_STORE_EDITED.format(path=store, actual=actual, expected=sha, n=n)
        )
    return load_policy(store)


def amendment_payload(replaces: str, policy_sha256: str, rationale: str, proposed_at: str) -> dict:
    """Return the statement a quorum signs to replace one policy by another."""
    return {
        "kind": "policy_amendment",
        "replaces": replaces,
        "policy_sha256": policy_sha256,
        "rationale": rationale,
        "proposed_at": proposed_at,
    }


def _quorum_members(envelope_dict: dict, previous: Policy) -> list[str]:
    envelope = envelope_from_dict(envelope_dict, AMENDMENT_TYPE)
    verified = verify_envelope(
        envelope, previous.board.member_keys(), rp_id=previous.board.webauthn.rp_id
    )
    return sorted({v.member for v in verified})


def _check_amendment(entry: dict, n: int, previous_sha: str, previous: Policy) -> None:
    if entry.get("replaces") != previous_sha:
        raise PolicyNotInForce(
            MSG_CHAIN_LINK.format(n=n, got=entry.get("replaces"), expected=previous_sha)
        )
    sha = entry.get("policy_sha256")
    envelope = envelope_from_dict(entry.get("envelope") or {}, AMENDMENT_TYPE)
    payload = json.loads(envelope.payload)
    if payload.get("policy_sha256") != sha or payload.get("replaces") != previous_sha:
        raise PolicyNotInForce(MSG_AMENDMENT_PAYLOAD.format(n=n, sha=sha))
    try:
        members = _quorum_members(entry["envelope"], previous)
    except SignatureError as exc:
        raise PolicyNotInForce(f"chain entry {n}: {exc}") from exc
    if len(members) < previous.board.quorum:
        raise PolicyNotInForce(
            MSG_AMENDMENT_QUORUM.format(
                n=n, sha=sha, members=members or "nobody", quorum=previous.board.quorum
            )
        )


def _genesis_tag(tracking_uri: str | None, model_name: str | None) -> str | None:
    if not tracking_uri or not model_name:
        return None
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        return client.get_registered_model(model_name).tags.get(TAG_GENESIS)
    except MlflowException:
        return None


def policy_in_force(
    root: str | Path,
    *,
    policy_path: str | Path | None = None,
    tracking_uri: str | None = None,
    model_name: str | None = None,
) -> PolicyChain:
    """Verify the board's policy chain and return it with the policy in force.

    Parameters
    ----------
    root : the project root.
    policy_path : the policy file that must equal the chain's head (default
        ``<root>/governance/policy.yaml``).
    tracking_uri, model_name : with both, the genesis hash recorded on the
        registered model must be the chain's first.

    Raises
    ------
    PolicyNotInForce
        No sealed genesis; a stored policy edited; an amendment not signed by a
        quorum of the policy it replaces; a replaced genesis; or the policy file
        is not the chain's head (a swapped file).
    """
    root = Path(root)
    entries = _read_chain(root)
    policies: dict[str, Policy] = {}
    shas: list[str] = []
    for n, entry in enumerate(entries, start=1):
        sha = entry["policy_sha256"]
        policy = _stored_policy(root, sha, n)
        if n > 1:
            _check_amendment(entry, n, shas[-1], policies[shas[-1]])
        policies[sha] = policy
        shas.append(sha)
    tagged = _genesis_tag(tracking_uri, model_name)
    if tagged and tagged != shas[0]:
        raise PolicyNotInForce(
            MSG_GENESIS_TAG.format(model=model_name, tagged=tagged, chain=shas[0])
        )
    path = Path(policy_path) if policy_path else root / POLICY_FILE
    actual = sha256_file(path) if path.is_file() else "(missing)"
    if actual != shas[-1]:
        raise PolicyNotInForce(
            MSG_SWAPPED.format(path=path, actual=actual, expected=shas[-1], n=len(shas))
        )
    return PolicyChain(
        root=root, head=policies[shas[-1]], genesis_sha256=shas[0], shas=shas, policies=policies
    )


def policy_by_sha(root: str | Path, sha: str, **kwargs: Any) -> Policy:
    """Return the chain's policy with hash ``sha`` (verifying the whole chain first).

    Raises
    ------
    PolicyNotInForce
        When the chain does not verify or holds no such policy.
    """
    return policy_in_force(root, **kwargs).get(sha)


# --- amendments ------------------------------------------------------------------


def _proposal_paths(root: Path, sha: str) -> tuple[Path, Path]:
    folder = board_dir(root) / "proposals"
    return folder / f"{sha}.yaml", folder / f"{sha}.json"


def amendment_envelope(root: str | Path, policy_sha256: str):
    """Return the unsigned envelope of a proposal (what each member signs)."""
    _, meta = _proposal_paths(Path(root), policy_sha256)
    if not meta.is_file():
        raise BoardSetupError(MSG_NO_PROPOSAL.format(sha=policy_sha256, dir=meta.parent))
    record = json.loads(meta.read_text())
    return envelope_for(record["payload"], AMENDMENT_TYPE)


def propose_amendment(
    root: str | Path, new_policy: str | Path, *, rationale: str, **kwargs: Any
) -> Proposal:
    """Propose a new policy to replace the one in force; return the proposal to sign.

    Raises
    ------
    PolicyNotInForce
        When the chain in force does not verify.
    ConfigError
        When the new policy file is invalid.
    """
    root = Path(root)
    chain = policy_in_force(root, **kwargs)
    load_policy(new_policy)
    data = Path(new_policy).read_bytes()
    sha = sha256_bytes(data)
    body, meta = _proposal_paths(root, sha)
    body.parent.mkdir(parents=True, exist_ok=True)
    body.write_bytes(data)
    payload = amendment_payload(chain.shas[-1], sha, rationale.strip(), _now())
    envelope = envelope_to_dict(envelope_for(payload, AMENDMENT_TYPE))
    meta.write_text(json.dumps({"payload": payload, "envelope": envelope}, indent=2) + "\n")
    return Proposal(sha, chain.shas[-1], envelope, [], chain.head.board.quorum, False)


def sign_amendment(
    root: str | Path,
    policy_sha256: str,
    signed: dict[str, Any],
    *,
    audit_log: str | Path,
    policy_path: str | Path | None = None,
    tracking_uri: str | None = None,
    model_name: str | None = None,
) -> Proposal:
    """Add members' signatures to a proposal; at quorum, put the new policy in force.

    ``signed`` is the proposal's envelope with one or more signatures (Ed25519
    or passkey) by members of the policy in force. Every signature gathered so
    far is verified against that policy's keys.

    Raises
    ------
    SignatureError
        When a signature does not verify or is not a member's.
    BoardSetupError
        When no such proposal exists, or it replaces a policy no longer in force.
    """
    root = Path(root)
    target = Path(policy_path) if policy_path else root / POLICY_FILE
    chain = policy_in_force(
        root, policy_path=target, tracking_uri=tracking_uri, model_name=model_name
    )
    body, meta = _proposal_paths(root, policy_sha256)
    if not meta.is_file():
        raise BoardSetupError(MSG_NO_PROPOSAL.format(sha=policy_sha256, dir=meta.parent))
    record = json.loads(meta.read_text())
    if record["payload"]["replaces"] != chain.shas[-1]:
        raise BoardSetupError(
            MSG_PROPOSAL_STALE.format(
                sha=policy_sha256, replaces=record["payload"]["replaces"], head=chain.shas[-1]
            )
        )
    gathered = envelope_from_dict(record["envelope"], AMENDMENT_TYPE)
    incoming = envelope_from_dict(signed, AMENDMENT_TYPE)
    if incoming.payload != canonical_json(record["payload"]):
        raise SignatureError(MSG_AMENDMENT_PAYLOAD.format(n="(proposal)", sha=policy_sha256))
    gathered.signatures.update(incoming.signatures)
    envelope = envelope_to_dict(gathered)
    members = _quorum_members(envelope, chain.head)
    record["envelope"] = envelope
    meta.write_text(json.dumps(record, indent=2) + "\n")
    quorum = chain.head.board.quorum
    if len(members) < quorum:
        return Proposal(policy_sha256, chain.shas[-1], envelope, members, quorum, False)
    _install(root, body.read_bytes(), target)
    n = len(chain.shas) + 1
    _append_chain(root, {
        "n": n, "kind": "amendment", "policy_sha256": policy_sha256,
        "replaces": chain.shas[-1], "envelope": envelope, "adopted_at": _now(),
    })  # fmt: skip
    from governance.keys import load_system_key

    append_entry(
        audit_log, actor=SYSTEM_ACTOR, action="amendment", model=model_name or CHAIN_MODEL,
        version=None, signer=load_system_key(root),
        details={"policy_sha256": policy_sha256, "replaces": chain.shas[-1], "members": members,
                 "envelope": envelope},
    )  # fmt: skip
    return Proposal(policy_sha256, chain.shas[-1], envelope, members, quorum, True)
