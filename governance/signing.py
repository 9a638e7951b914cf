"""Signed board decisions: canonical statements in DSSE envelopes, Ed25519 and WebAuthn.

A board decision is a DSSE envelope (payload type :data:`DECISION_TYPE`) whose
payload is the canonical JSON of a :class:`DecisionStatement`: what is decided
(model, version and the hashes of the model artefact, the gate report, the
policy and, for an approval, the card), by which member, and why. A member
signs it with a key only they hold:

- an Ed25519 key (``harmcast board keygen``) signs ``PAE(payloadType, payload)``;
- a passkey (WebAuthn) signs an assertion whose challenge is
  ``SHA-256(PAE(payloadType, payload))``; the signature entry carries the
  ``authenticator_data``, ``client_data_json``, ``signature`` and
  ``credential_id`` (base64url) and is verified with ``webauthn``.

A key is named by its fingerprint: the first 16 hex digits of the SHA-256 of
its public key bytes (raw Ed25519 key, or the COSE key of a passkey). The same
envelope format carries policy amendments (:data:`AMENDMENT_TYPE`), signed by
several members at once.
"""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from securesystemslib.dsse import Envelope
from securesystemslib.signer import Signature

from governance.evidence import canonical_json, sha256_bytes
from training.errors import HarmcastError

__all__ = [
    "DECISION_TYPE",
    "AMENDMENT_TYPE",
    "DECISIONS",
    "SignatureError",
    "KeyRecord",
    "DecisionStatement",
    "VerifiedSignature",
    "fingerprint",
    "pae",
    "envelope_for",
    "envelope_from_dict",
    "envelope_to_dict",
    "statement_of",
    "webauthn_challenge",
    "generate_ed25519",
    "write_private_key",
    "read_private_key",
    "ed25519_key_record",
    "webauthn_key_record",
    "sign_ed25519",
    "webauthn_signature_entry",
    "verify_signature",
    "verify_envelope",
    "b64url_encode",
    "b64url_decode",
]

DECISION_TYPE = "application/vnd.harmcast.decision+json"
AMENDMENT_TYPE = "application/vnd.harmcast.policy-amendment+json"
DECISIONS = ("approve", "reject", "rollback")

MSG_BAD_ENVELOPE = "signed decision is not a DSSE envelope: {detail}"
MSG_BAD_STATEMENT = "signed decision's payload is not a decision statement: {detail}"
MSG_WRONG_TYPE = "envelope payload type is {got!r}, expected {expected!r}"
MSG_UNKNOWN_KEY = "signature by key {keyid} matches no key of {who} in the policy"
MSG_BAD_SIGNATURE = "signature by key {keyid} ({key_type}) does not verify: {detail}"
MSG_WRONG_RP = (
    "passkey assertion comes from origin {origin!r}, whose host is not the RP ID {rp_id!r}"
)
MSG_ONE_SIGNATURE = "a decision carries exactly one signature, this one carries {n}"
MSG_PRIVATE_KEY = "{path}: not an Ed25519 private key in PEM (PKCS8) form"


class SignatureError(HarmcastError, ValueError):
    """A signed statement is malformed, or a signature does not verify."""


def b64url_encode(data: bytes) -> str:
    """Return base64url without padding (the WebAuthn encoding)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode base64url with or without padding."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class KeyRecord(BaseModel):
    """A member's public key as the policy holds it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["ed25519", "webauthn"]
    # ed25519: base64 of the 32 raw bytes; webauthn: base64url of the COSE key.
    public_key: str
    credential_id: str | None = None
    fingerprint: str
    added_at: str = ""
    # Software keys generated for a demonstration run, never a real member's.
    demo: bool = False

    def public_bytes(self) -> bytes:
        """Return the public key bytes the fingerprint is taken over."""
        if self.type == "ed25519":
            return base64.b64decode(self.public_key)
        return b64url_decode(self.public_key)


class DecisionStatement(BaseModel):
    """What one member decides about one registered version (the signed payload)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    version: str
    model_sha256: str
    gate_report_sha256: str
    policy_sha256: str
    card_sha256: str | None
    decision: Literal["approve", "reject", "rollback"]
    rationale: str = Field(min_length=1)
    member: str
    issued_at: str


class VerifiedSignature(BaseModel):
    """A signature that verified, and the key that made it."""

    model_config = ConfigDict(frozen=True)

    member: str
    key: KeyRecord


def fingerprint(public_key: bytes) -> str:
    """Return a key's fingerprint: the first 16 hex digits of SHA-256 of its bytes."""
    return sha256_bytes(public_key)[:16]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def pae(payload_type: str, payload: bytes) -> bytes:
    """Return DSSE's pre-authentication encoding of a payload."""
    return Envelope(payload, payload_type, {}).pae()


def webauthn_challenge(envelope: Envelope) -> bytes:
    """Return the WebAuthn challenge that signs ``envelope``: SHA-256 of its PAE."""
    return bytes.fromhex(sha256_bytes(envelope.pae()))


def envelope_for(statement: DecisionStatement | dict[str, Any], payload_type: str = DECISION_TYPE):
    """Return an unsigned envelope over a statement's canonical JSON."""
    body = statement.model_dump() if isinstance(statement, BaseModel) else statement
    return Envelope(canonical_json(body), payload_type, {})


def envelope_to_dict(envelope: Envelope) -> dict[str, Any]:
    """Return the envelope's JSON form (``payload``, ``payloadType``, ``signatures``)."""
    return envelope.to_dict()


def envelope_from_dict(data: dict[str, Any] | str, payload_type: str = DECISION_TYPE) -> Envelope:
    """Read an envelope's JSON form, refusing another payload type.

    Raises
    ------
    SignatureError
        When the data is not a DSSE envelope of ``payload_type``.
    """
    try:
        raw = json.loads(data) if isinstance(data, str) else json.loads(json.dumps(data))
        envelope = Envelope.from_dict(raw)
    except (KeyError, TypeError, ValueError) as exc:
        raise SignatureError(MSG_BAD_ENVELOPE.format(detail=exc)) from exc
    if envelope.payload_type != payload_type:
        raise SignatureError(
            MSG_WRONG_TYPE.format(got=envelope.payload_type, expected=payload_type)
        )
    return envelope


def statement_of(envelope: Envelope) -> DecisionStatement:
    """Return the decision statement an envelope carries.

    Raises
    ------
    SignatureError
        When the payload is not a decision statement, or not in canonical form.
    """
    try:
        statement = DecisionStatement.model_validate_json(envelope.payload)
    except ValidationError as exc:
        raise SignatureError(MSG_BAD_STATEMENT.format(detail=exc)) from exc
    if canonical_json(statement.model_dump()) != envelope.payload:
        raise SignatureError(MSG_BAD_STATEMENT.format(detail="not canonical JSON"))
    return statement


# --- Ed25519 ---------------------------------------------------------------------


def generate_ed25519() -> Ed25519PrivateKey:
    """Return a new Ed25519 private key."""
    return Ed25519PrivateKey.generate()


def write_private_key(key: Ed25519PrivateKey, path: str | Path) -> Path:
    """Write a private key as unencrypted PKCS8 PEM, readable by its owner only (0600)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    os.chmod(path, 0o600)
    return path


def read_private_key(path: str | Path) -> Ed25519PrivateKey:
    """Read an Ed25519 private key written by :func:`write_private_key`.

    Raises
    ------
    SignatureError
        When the file is missing or holds no Ed25519 private key.
    """
    path = Path(path)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise SignatureError(MSG_PRIVATE_KEY.format(path=path)) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SignatureError(MSG_PRIVATE_KEY.format(path=path))
    return key


def _raw_public(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def ed25519_key_record(
    key: Ed25519PrivateKey | Ed25519PublicKey, *, demo: bool = False
) -> KeyRecord:
    """Return the policy's record of an Ed25519 public key."""
    raw = _raw_public(key)
    return KeyRecord(
        type="ed25519",
        public_key=base64.b64encode(raw).decode("ascii"),
        fingerprint=fingerprint(raw),
        added_at=_now(),
        demo=demo,
    )


def webauthn_key_record(credential_id: bytes, cose_public_key: bytes) -> KeyRecord:
    """Return the policy's record of a passkey (from a verified WebAuthn registration)."""
    return KeyRecord(
        type="webauthn",
        public_key=b64url_encode(cose_public_key),
        credential_id=b64url_encode(credential_id),
        fingerprint=fingerprint(cose_public_key),
        added_at=_now(),
    )


def sign_ed25519(envelope: Envelope, key: Ed25519PrivateKey) -> Signature:
    """Sign ``envelope`` (its PAE) with an Ed25519 key and add the signature to it."""
    keyid = fingerprint(_raw_public(key))
    signature = Signature(keyid, key.sign(envelope.pae()).hex())
    envelope.signatures[keyid] = signature
    return signature


def webauthn_signature_entry(
    envelope: Envelope,
    *,
    credential_id: bytes,
    cose_public_key: bytes,
    authenticator_data: bytes,
    client_data_json: bytes,
    signature: bytes,
) -> Signature:
    """Add a passkey assertion over ``webauthn_challenge(envelope)`` to the envelope."""
    keyid = fingerprint(cose_public_key)
    entry = Signature(
        keyid,
        signature.hex(),
        {
            "credential_id": b64url_encode(credential_id),
            "authenticator_data": b64url_encode(authenticator_data),
            "client_data_json": b64url_encode(client_data_json),
            "signature": b64url_encode(signature),
        },
    )
    envelope.signatures[keyid] = entry
    return entry


def _verify_webauthn(envelope: Envelope, sig: Signature, key: KeyRecord, rp_id: str) -> None:
    from webauthn import verify_authentication_response
    from webauthn.helpers.exceptions import InvalidAuthenticationResponse

    extra = sig.unrecognized_fields
    try:
        client_data = json.loads(b64url_decode(extra["client_data_json"]))
        origin = str(client_data.get("origin", ""))
        credential = {
            "id": extra["credential_id"],
            "rawId": extra["credential_id"],
            "type": "public-key",
            "response": {
                "authenticatorData": extra["authenticator_data"],
                "clientDataJSON": extra["client_data_json"],
                "signature": extra["signature"],
            },
        }
    except (KeyError, ValueError, TypeError) as exc:
        raise SignatureError(
            MSG_BAD_SIGNATURE.format(keyid=sig.keyid, key_type=key.type, detail=exc)
        ) from exc
    if urlparse(origin).hostname != rp_id:
        raise SignatureError(MSG_WRONG_RP.format(origin=origin, rp_id=rp_id))
    if extra["credential_id"] != key.credential_id:
        raise SignatureError(
            MSG_BAD_SIGNATURE.format(keyid=sig.keyid, key_type=key.type, detail="credential id")
        )
    if b64url_decode(extra["signature"]) != bytes.fromhex(sig.signature):
        raise SignatureError(
            MSG_BAD_SIGNATURE.format(keyid=sig.keyid, key_type=key.type, detail="sig differs")
        )
    try:
        verify_authentication_response(
            credential=credential,
            expected_challenge=webauthn_challenge(envelope),
            expected_rp_id=rp_id,
            expected_origin=origin,
            credential_public_key=key.public_bytes(),
            credential_current_sign_count=0,
            require_user_verification=False,
        )
    except (InvalidAuthenticationResponse, ValueError, KeyError) as exc:
        raise SignatureError(
            MSG_BAD_SIGNATURE.format(keyid=sig.keyid, key_type=key.type, detail=exc)
        ) from exc


def verify_signature(envelope: Envelope, sig: Signature, key: KeyRecord, *, rp_id: str) -> None:
    """Verify one signature of ``envelope`` with ``key``.

    Raises
    ------
    SignatureError
        When the signature does not verify (naming the key and why).
    """
    if key.type == "webauthn":
        _verify_webauthn(envelope, sig, key, rp_id)
        return
    try:
        public = Ed25519PublicKey.from_public_bytes(key.public_bytes())
        public.verify(bytes.fromhex(sig.signature), envelope.pae())
    except (InvalidSignature, ValueError) as exc:
        raise SignatureError(
            MSG_BAD_SIGNATURE.format(keyid=sig.keyid, key_type=key.type, detail="invalid")
        ) from exc


def verify_envelope(
    envelope: Envelope, keys: dict[str, list[KeyRecord]], *, rp_id: str = "localhost"
) -> list[VerifiedSignature]:
    """Verify every signature of ``envelope`` against the members' keys.

    Parameters
    ----------
    envelope : the signed envelope.
    keys : ``{member_id: [KeyRecord, ...]}`` of the members allowed to sign.
    rp_id : the WebAuthn relying party ID passkey assertions must come from.

    Returns
    -------
    list of VerifiedSignature
        One per signature, in the envelope's order.

    Raises
    ------
    SignatureError
        When a signature matches no allowed key, or does not verify.
    """
    by_id = {k.fingerprint: (member, k) for member, ks in keys.items() for k in ks}
    verified = []
    for sig in envelope.signatures.values():
        if sig.keyid not in by_id:
            who = ", ".join(sorted(keys)) or "nobody"
            raise SignatureError(MSG_UNKNOWN_KEY.format(keyid=sig.keyid, who=who))
        member, key = by_id[sig.keyid]
        verify_signature(envelope, sig, key, rp_id=rp_id)
        verified.append(VerifiedSignature(member=member, key=key))
    return verified
