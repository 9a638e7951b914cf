"""WebAuthn ceremonies for board members: enrol a passkey, sign in, sign a decision.

The server side of each ceremony is two steps: options (with a fresh or a given
challenge) for ``navigator.credentials.create``/``get`` in the browser, then
verification of what the browser returns (``webauthn`` library). A member's
passkey is kept as ``{type: webauthn, public_key, credential_id, fingerprint,
added_at}`` with the COSE public key and credential id in base64url, and the
fingerprint the first 16 hex digits of SHA-256 of the public key bytes.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

import webauthn
from webauthn.helpers.exceptions import InvalidAuthenticationResponse, InvalidRegistrationResponse
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from governance.signing import webauthn_key_record
from training.errors import HarmcastError

__all__ = [
    "PasskeyError",
    "Ceremony",
    "BAD_ASSERTION",
    "BAD_ATTESTATION",
    "UNKNOWN_CREDENTIAL",
    "registration_options",
    "verify_registration",
    "authentication_options",
    "verify_assertion",
]

BAD_ATTESTATION = "the passkey could not be enrolled: {reason}"
BAD_ASSERTION = "the passkey signature did not verify: {reason}"
UNKNOWN_CREDENTIAL = "this passkey is not enrolled for member {member!r}"


class PasskeyError(HarmcastError, PermissionError):
    """A WebAuthn ceremony failed (wrong key, wrong challenge, wrong origin)."""


@dataclass(frozen=True)
class Ceremony:
    """Options for the browser (JSON) and the challenge the answer must carry."""

    options_json: str
    challenge: bytes


def registration_options(
    *, rp_id: str, member: str, display_name: str, existing: list[dict[str, Any]]
) -> Ceremony:
    """Options for ``navigator.credentials.create``: a discoverable, user-verified passkey."""
    options = webauthn.generate_registration_options(
        rp_id=rp_id,
        rp_name="harmcast board",
        user_name=member,
        user_id=member.encode(),
        user_display_name=display_name,
        challenge=secrets.token_bytes(32),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=_descriptors(existing),
    )
    return Ceremony(webauthn.options_to_json(options), options.challenge)


def verify_registration(
    credential: dict[str, Any] | str, *, challenge: bytes, rp_id: str, origins: list[str]
) -> dict[str, str]:
    """Verify a new passkey and return its key record (without ``added_at``).

    Raises
    ------
    PasskeyError
        When the attestation does not verify for this challenge, RP id and origin.
    """
    try:
        verified = webauthn.verify_registration_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp_id,
            expected_origin=origins,
            require_user_verification=True,
        )
    except (InvalidRegistrationResponse, ValueError, KeyError, TypeError) as exc:
        raise PasskeyError(BAD_ATTESTATION.format(reason=exc)) from exc
    record = webauthn_key_record(verified.credential_id, verified.credential_public_key)
    return record.model_dump()


def _descriptors(keys: list[dict[str, Any]]) -> list[PublicKeyCredentialDescriptor]:
    return [
        PublicKeyCredentialDescriptor(id=webauthn.base64url_to_bytes(k["credential_id"]))
        for k in keys
        if k.get("type") == "webauthn"
    ]


def authentication_options(
    *, rp_id: str, keys: list[dict[str, Any]], challenge: bytes | None = None
) -> Ceremony:
    """Options for ``navigator.credentials.get``; ``challenge`` fixed when signing a decision."""
    options = webauthn.generate_authentication_options(
        rp_id=rp_id,
        challenge=challenge or secrets.token_bytes(32),
        allow_credentials=_descriptors(keys),
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    return Ceremony(webauthn.options_to_json(options), options.challenge)


def verify_assertion(
    credential: dict[str, Any] | str,
    *,
    member: str,
    keys: list[dict[str, Any]],
    challenge: bytes,
    rp_id: str,
    origins: list[str],
) -> dict[str, str]:
    """Verify a passkey assertion by one of ``member``'s keys; return the key used.

    Raises
    ------
    PasskeyError
        When the credential is not one of the member's keys or does not verify.
    """
    body = json.loads(credential) if isinstance(credential, str) else credential
    key = next((k for k in keys if k.get("credential_id") == body.get("id")), None)
    if key is None:
        raise PasskeyError(UNKNOWN_CREDENTIAL.format(member=member))
    try:
        webauthn.verify_authentication_response(
            credential=body,
            expected_challenge=challenge,
            expected_rp_id=rp_id,
            expected_origin=origins,
            credential_public_key=webauthn.base64url_to_bytes(key["public_key"]),
            credential_current_sign_count=0,
            require_user_verification=True,
        )
    except (InvalidAuthenticationResponse, ValueError, KeyError, TypeError) as exc:
        raise PasskeyError(BAD_ASSERTION.format(reason=exc)) from exc
    return key
