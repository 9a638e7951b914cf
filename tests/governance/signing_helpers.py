"""Test-side signers: Ed25519 members and a software passkey (P-256, COSE key via cbor2)
that answers a WebAuthn assertion the way an authenticator and a browser would."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from governance.signing import (
    KeyRecord,
    b64url_encode,
    webauthn_challenge,
    webauthn_key_record,
    webauthn_signature_entry,
)


@dataclass
class SoftPasskey:
    """A passkey held in memory: a P-256 key pair and a credential id."""

    private: ec.EllipticCurvePrivateKey
    credential_id: bytes
    sign_count: int = 0

    @classmethod
    def new(cls) -> SoftPasskey:
        return cls(ec.generate_private_key(ec.SECP256R1()), os.urandom(16))

    def cose_key(self) -> bytes:
        numbers = self.private.public_key().public_numbers()
        return cbor2.dumps(
            {1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"),
             -3: numbers.y.to_bytes(32, "big")}
        )  # fmt: skip

    def record(self) -> KeyRecord:
        return webauthn_key_record(self.credential_id, self.cose_key())

    def sign(self, envelope, *, rp_id: str = "localhost", origin: str | None = None):
        """Answer navigator.credentials.get with challenge = SHA-256(PAE) and add it."""
        self.sign_count += 1
        client_data = json.dumps(
            {
                "type": "webauthn.get",
                "challenge": b64url_encode(webauthn_challenge(envelope)),
                "origin": origin or f"http://{rp_id}:8000",
                "crossOrigin": False,
            }
        ).encode()
        auth_data = (
            hashlib.sha256(rp_id.encode()).digest()
            + bytes([0x05])  # user present + user verified
            + self.sign_count.to_bytes(4, "big")
        )
        signature = self.private.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        return webauthn_signature_entry(
            envelope,
            credential_id=self.credential_id,
            cose_public_key=self.cose_key(),
            authenticator_data=auth_data,
            client_data_json=client_data,
            signature=signature,
        )
