"""Signed decisions: Ed25519 and WebAuthn round trips, and every tampering refused."""

from __future__ import annotations

import json
import stat

import pytest

from governance.signing import (
    DecisionStatement,
    SignatureError,
    ed25519_key_record,
    envelope_for,
    envelope_from_dict,
    envelope_to_dict,
    fingerprint,
    generate_ed25519,
    read_private_key,
    sign_ed25519,
    statement_of,
    verify_envelope,
    write_private_key,
)
from tests.governance.signing_helpers import SoftPasskey


def _statement(**over) -> DecisionStatement:
    body = {
        "model": "harmcast-violence",
        "version": "3",
        "model_sha256": "a" * 64,
        "gate_report_sha256": "b" * 64,
        "policy_sha256": "c" * 64,
        "card_sha256": "d" * 64,
        "decision": "approve",
        "rationale": "gate passed, card read",
        "member": "t.hughes",
        "issued_at": "2026-11-29T20:00:00+00:00",
    }
    return DecisionStatement(**{**body, **over})


def _roundtrip(envelope):
    return envelope_from_dict(json.loads(json.dumps(envelope_to_dict(envelope))))


def test_ed25519_round_trip_through_json():
    key = generate_ed25519()
    envelope = envelope_for(_statement())
    sign_ed25519(envelope, key)
    back = _roundtrip(envelope)
    verified = verify_envelope(back, {"t.hughes": [ed25519_key_record(key)]})
    assert [v.member for v in verified] == ["t.hughes"]
    assert statement_of(back).model_sha256 == "a" * 64


def test_ed25519_tampered_statement_refused():
    key = generate_ed25519()
    envelope = envelope_for(_statement())
    sign_ed25519(envelope, key)
    data = envelope_to_dict(envelope)
    forged = envelope_for(_statement(rationale="something else"))
    data["payload"] = envelope_to_dict(forged)["payload"]
    with pytest.raises(SignatureError, match="does not verify"):
        verify_envelope(envelope_from_dict(data), {"t.hughes": [ed25519_key_record(key)]})


def test_ed25519_wrong_key_refused():
    envelope = envelope_for(_statement())
    sign_ed25519(envelope, generate_ed25519())
    other = ed25519_key_record(generate_ed25519())
    with pytest.raises(SignatureError, match="matches no key of t.hughes"):
        verify_envelope(_roundtrip(envelope), {"t.hughes": [other]})


def test_signature_of_another_members_key_is_theirs_not_the_claimed_member():
    key = generate_ed25519()
    envelope = envelope_for(_statement(member="t.hughes"))
    sign_ed25519(envelope, key)
    verified = verify_envelope(envelope, {"m.siddiqui": [ed25519_key_record(key)], "t.hughes": []})
    assert verified[0].member == "m.siddiqui"


def test_private_key_file_is_owner_only(tmp_path):
    key = generate_ed25519()
    path = write_private_key(key, tmp_path / "k" / "member.key")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert (
        ed25519_key_record(read_private_key(path)).fingerprint
        == ed25519_key_record(key).fingerprint
    )
    (tmp_path / "junk.key").write_text("not a key")
    with pytest.raises(SignatureError, match="junk.key: not an Ed25519 private key"):
        read_private_key(tmp_path / "junk.key")


def test_fingerprint_is_first_16_hex_of_sha256():
    import hashlib

    assert fingerprint(b"abc") == hashlib.sha256(b"abc").hexdigest()[:16]


def test_webauthn_round_trip():
    passkey = SoftPasskey.new()
    envelope = envelope_for(_statement())
    passkey.sign(envelope)
    back = _roundtrip(envelope)
    entry = envelope_to_dict(back)["signatures"][0]
    assert {"authenticator_data", "client_data_json", "signature", "credential_id"} <= set(entry)
    verified = verify_envelope(back, {"t.hughes": [passkey.record()]})
    assert verified[0].key.type == "webauthn"


def test_webauthn_tampered_statement_refused():
    passkey = SoftPasskey.new()
    envelope = envelope_for(_statement())
    passkey.sign(envelope)
    data = envelope_to_dict(envelope)
    data["payload"] = envelope_to_dict(envelope_for(_statement(decision="reject")))["payload"]
    with pytest.raises(SignatureError, match="does not verify"):
        verify_envelope(envelope_from_dict(data), {"t.hughes": [passkey.record()]})


def test_webauthn_wrong_key_refused():
    signer, other = SoftPasskey.new(), SoftPasskey.new()
    envelope = envelope_for(_statement())
    signer.sign(envelope)
    with pytest.raises(SignatureError, match="matches no key"):
        verify_envelope(_roundtrip(envelope), {"t.hughes": [other.record()]})


def test_webauthn_wrong_rp_id_refused():
    passkey = SoftPasskey.new()
    envelope = envelope_for(_statement())
    passkey.sign(envelope, rp_id="evil.example")
    with pytest.raises(SignatureError, match="not the RP ID 'localhost'"):
        verify_envelope(_roundtrip(envelope), {"t.hughes": [passkey.record()]})


def test_webauthn_rp_id_hash_must_match_even_from_the_right_origin():
    passkey = SoftPasskey.new()
    envelope = envelope_for(_statement())
    passkey.sign(envelope, rp_id="evil.example", origin="http://localhost:8000")
    with pytest.raises(SignatureError, match="does not verify"):
        verify_envelope(_roundtrip(envelope), {"t.hughes": [passkey.record()]})


def test_not_an_envelope_is_a_clear_error():
    with pytest.raises(SignatureError, match="not a DSSE envelope"):
        envelope_from_dict({"payloadType": "x"})
    with pytest.raises(SignatureError, match="payload type"):
        envelope_from_dict({"payload": "", "payloadType": "text/plain", "signatures": []})
