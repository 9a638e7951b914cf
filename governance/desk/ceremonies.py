"""The passkey ceremonies of the desk: enrol, sign in, sign a decision.

Each is an ``/options`` call (the server picks the challenge) and a second call
with what ``navigator.credentials`` returned. Failed sign-ins and enrolment
attempts are counted per member and per client; past the policy's limit the
desk answers 429 until the window has passed.
"""

from __future__ import annotations

import json
from base64 import b64decode
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from governance.desk import amendments, ledger
from governance.desk.enrolment import EnrolmentError, check_code, consume_code
from governance.desk.passkeys import (
    PasskeyError,
    authentication_options,
    registration_options,
    verify_assertion,
    verify_registration,
)
from governance.desk.settings import DeskSettings
from governance.review import production_version
from training.errors import HarmcastError

__all__ = [
    "ceremony_router",
    "TOO_MANY",
    "REFUSED",
    "NOT_SIGNED_IN",
    "NO_CEREMONY",
    "NO_RATIONALE",
    "NO_PRODUCTION",
    "NO_VERSION",
]

TOO_MANY = "too many failed attempts: sign-in is locked for a while"
REFUSED = "sign-in refused: {reason}"
NOT_SIGNED_IN = "sign in first"
NO_CEREMONY = "no ceremony in progress: start again"
NO_RATIONALE = "a written rationale is required"
NO_PRODUCTION = "no version is in production: there is nothing to roll back"
NO_VERSION = "a version is required"


class MemberIn(BaseModel):
    """Who is signing in."""

    member: str = Field(min_length=1, max_length=100)


class CredentialIn(MemberIn):
    """What ``navigator.credentials.get`` returned (``PublicKeyCredential.toJSON()``)."""

    credential: dict[str, Any]


class EnrolIn(MemberIn):
    """A member and the one-time code they were given."""

    code: str = Field(min_length=1, max_length=100)


class EnrolCredentialIn(EnrolIn):
    """What ``navigator.credentials.create`` returned."""

    credential: dict[str, Any]


class DecisionIn(BaseModel):
    """A decision to sign: approve or reject a version, or roll production back."""

    decision: str = Field(pattern="^(approve|reject|rollback)$")
    version: int | None = None
    rationale: str = Field(max_length=5000)


class SignatureIn(BaseModel):
    """The passkey assertion over the decision's challenge."""

    credential: dict[str, Any]


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _options(ceremony) -> Response:
    return Response(ceremony.options_json, media_type="application/json")


def _settings(request: Request) -> DeskSettings:
    return request.app.state.settings


def _who(request: Request, member: str) -> tuple[str, str]:
    return f"member:{member}", f"client:{request.client.host if request.client else ''}"


def _signin_routes(router: APIRouter, cookie: str) -> None:
    @router.post("/api/signin/options")
    def signin_options(request: Request, body: MemberIn) -> Response:
        settings, limiter = _settings(request), request.app.state.limiter
        keys_of = _who(request, body.member)
        if limiter.blocked(*keys_of):
            return _error(TOO_MANY, 429)
        keys = ledger.member_keys(settings, body.member)
        if not keys:
            limiter.fail(*keys_of)
            return _error(REFUSED.format(reason="no passkey is enrolled for that member"), 403)
        ceremony = authentication_options(rp_id=settings.rp_id, keys=keys)
        request.app.state.pending_signins[body.member] = ceremony.challenge
        return _options(ceremony)

    @router.post("/api/signin/verify")
    def signin_verify(request: Request, body: CredentialIn) -> Response:
        settings, limiter = _settings(request), request.app.state.limiter
        keys_of = _who(request, body.member)
        if limiter.blocked(*keys_of):
            return _error(TOO_MANY, 429)
        challenge = request.app.state.pending_signins.pop(body.member, None)
        try:
            if challenge is None:
                raise PasskeyError(NO_CEREMONY)
            verify_assertion(body.credential, member=body.member,
                             keys=ledger.member_keys(settings, body.member), challenge=challenge,
                             rp_id=settings.rp_id, origins=list(settings.origins))  # fmt: skip
        except PasskeyError as exc:
            limiter.fail(*keys_of)
            return _error(REFUSED.format(reason=exc), 403)
        limiter.clear(keys_of[0])
        token = request.app.state.sessions.start(body.member)
        response = JSONResponse({"member": body.member})
        response.set_cookie(
            cookie, token, httponly=True, samesite="strict", path="/",
            secure=settings.secure_cookie, max_age=int(settings.session_s),
        )  # fmt: skip
        return response


def _enrol_routes(router: APIRouter) -> None:
    @router.post("/api/enrol/options")
    def enrol_options(request: Request, body: EnrolIn) -> Response:
        settings, limiter = _settings(request), request.app.state.limiter
        keys_of = _who(request, body.member)
        if limiter.blocked(*keys_of):
            return _error(TOO_MANY, 429)
        try:
            check_code(settings.desk_dir, body.member, body.code)
        except EnrolmentError as exc:
            limiter.fail(*keys_of)
            return _error(str(exc), 403)
        names = ledger.roster(settings)
        ceremony = registration_options(
            rp_id=settings.rp_id, member=body.member,
            display_name=names.get(body.member, body.member),
            existing=ledger.member_keys(settings, body.member),
        )  # fmt: skip
        request.app.state.pending_enrolments[body.member] = ceremony.challenge
        return _options(ceremony)

    @router.post("/api/enrol/verify")
    def enrol_verify(request: Request, body: EnrolCredentialIn) -> Response:
        settings = _settings(request)
        challenge = request.app.state.pending_enrolments.pop(body.member, None)
        if challenge is None:
            return _error(NO_CEREMONY, 400)
        try:
            key = verify_registration(body.credential, challenge=challenge, rp_id=settings.rp_id,
                                      origins=list(settings.origins))  # fmt: skip
            consume_code(settings.desk_dir, body.member, body.code)
        except (PasskeyError, EnrolmentError) as exc:
            request.app.state.limiter.fail(*_who(request, body.member))
            return _error(str(exc), 403)
        how = ledger.add_passkey(settings, body.member, key)
        return JSONResponse({"member": body.member, "fingerprint": key["fingerprint"],
                             "status": how})  # fmt: skip


def _decision_version(settings: DeskSettings, body: DecisionIn) -> str | None:
    """Return the version a decision is about: a rollback withdraws the one in production."""
    if body.decision != "rollback":
        return str(body.version) if body.version is not None else None
    return production_version(model_name=settings.model_name, tracking_uri=settings.tracking_uri)


def _decision_routes(router: APIRouter, cookie: str) -> None:
    @router.post("/api/decisions/options")
    def decision_options(request: Request, body: DecisionIn) -> Response:
        settings = _settings(request)
        session = request.app.state.sessions.get(request.cookies.get(cookie))
        if session is None:
            return _error(NOT_SIGNED_IN, 401)
        if not body.rationale.strip():
            return _error(NO_RATIONALE, 400)
        version = _decision_version(settings, body)
        if version is None:
            return _error(NO_VERSION if body.decision != "rollback" else NO_PRODUCTION, 409)
        try:
            unsigned, challenge = ledger.prepare(
                settings, version=version, decision=body.decision, rationale=body.rationale,
                member=session.member,
            )  # fmt: skip
        except HarmcastError as exc:
            return _error(str(exc), 403)
        session.pending = {"envelope": unsigned, "challenge": challenge}
        keys = ledger.member_keys(settings, session.member)
        ceremony = authentication_options(rp_id=settings.rp_id, keys=keys, challenge=challenge)
        return _options(ceremony)

    @router.post("/api/decisions/submit")
    def decision_submit(request: Request, body: SignatureIn) -> Response:
        settings = _settings(request)
        session = request.app.state.sessions.get(request.cookies.get(cookie))
        if session is None:
            return _error(NOT_SIGNED_IN, 401)
        pending, session.pending = session.pending, {}
        if not pending:
            return _error(NO_CEREMONY, 400)
        try:
            key = verify_assertion(
                body.credential, member=session.member,
                keys=ledger.member_keys(settings, session.member),
                challenge=pending["challenge"], rp_id=settings.rp_id,
                origins=list(settings.origins),
            )  # fmt: skip
            outcome = ledger.sign_and_submit(settings, pending["envelope"], key, body.credential)
        except HarmcastError as exc:
            return _error(str(exc), 403)
        statement = json.loads(b64decode(pending["envelope"]["payload"]))
        return JSONResponse(
            {"decision": statement["decision"], "version": statement["version"],
             "fingerprint": key["fingerprint"], "status": outcome.status,
             "production": outcome.production}
        )  # fmt: skip


class AmendmentIn(BaseModel):
    """The proposal (by the hash of the policy it would put in force) to sign."""

    policy_sha256: str = Field(pattern="^[0-9a-f]{64}$")


def _amendment_routes(router: APIRouter, cookie: str) -> None:
    @router.post("/api/amendments/options")
    def amendment_options(request: Request, body: AmendmentIn) -> Response:
        settings = _settings(request)
        session = request.app.state.sessions.get(request.cookies.get(cookie))
        if session is None:
            return _error(NOT_SIGNED_IN, 401)
        try:
            unsigned, challenge = amendments.prepare_signature(settings, body.policy_sha256)
        except HarmcastError as exc:
            return _error(str(exc), 403)
        session.pending = {"amendment": body.policy_sha256, "envelope": unsigned,
                           "challenge": challenge}  # fmt: skip
        keys = ledger.member_keys(settings, session.member)
        return _options(authentication_options(rp_id=settings.rp_id, keys=keys,
                                               challenge=challenge))  # fmt: skip

    @router.post("/api/amendments/submit")
    def amendment_submit(request: Request, body: SignatureIn) -> Response:
        settings = _settings(request)
        session = request.app.state.sessions.get(request.cookies.get(cookie))
        if session is None:
            return _error(NOT_SIGNED_IN, 401)
        pending, session.pending = session.pending, {}
        if "amendment" not in pending:
            return _error(NO_CEREMONY, 400)
        try:
            key = verify_assertion(
                body.credential, member=session.member,
                keys=ledger.member_keys(settings, session.member),
                challenge=pending["challenge"], rp_id=settings.rp_id,
                origins=list(settings.origins),
            )  # fmt: skip
            proposal = amendments.add_signature(
                settings, pending["amendment"], pending["envelope"], key, body.credential
            )
        except HarmcastError as exc:
            return _error(str(exc), 403)
        return JSONResponse(
            {"signed_by": proposal.members, "quorum": proposal.quorum,
             "adopted": proposal.adopted, "fingerprint": key["fingerprint"]}
        )  # fmt: skip


def ceremony_router(cookie: str) -> APIRouter:
    """Return the ``/api`` routes; ``cookie`` names the session cookie."""
    router = APIRouter()
    _signin_routes(router, cookie)
    _enrol_routes(router)
    _decision_routes(router, cookie)
    _amendment_routes(router, cookie)
    return router
