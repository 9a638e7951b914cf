"""One-time enrolment codes and the sign-in limiter of the review desk."""

from datetime import UTC, datetime, timedelta

import pytest

from governance.desk.enrolment import (
    BAD_CODE,
    CODES_FILE,
    EXPIRED_CODE,
    NOT_ON_ROSTER,
    EnrolmentError,
    check_code,
    consume_code,
    issue_code,
)
from governance.desk.sessions import FailureLimiter, SessionStore

ROSTER = ["r.adeyemi", "t.hughes"]


def test_code_is_stored_only_as_a_hash_and_works_once(tmp_path):
    code, _ = issue_code(tmp_path, "r.adeyemi", ROSTER)
    stored = (tmp_path / CODES_FILE).read_text()
    assert code not in stored and code.replace("-", "") not in stored
    assert oct((tmp_path / CODES_FILE).stat().st_mode & 0o777) == "0o600"
    check_code(tmp_path, "r.adeyemi", code.lower())  # typed in any case, with or without dashes
    consume_code(tmp_path, "r.adeyemi", code.replace("-", ""))
    with pytest.raises(EnrolmentError) as info:
        check_code(tmp_path, "r.adeyemi", code)
    assert str(info.value) == BAD_CODE.format(member="r.adeyemi")


def test_code_belongs_to_one_member_and_expires(tmp_path):
    code, expires = issue_code(tmp_path, "r.adeyemi", ROSTER, ttl=timedelta(minutes=5))
    with pytest.raises(EnrolmentError, match="no valid enrolment code"):
        check_code(tmp_path, "t.hughes", code)
    later = datetime.now(UTC) + timedelta(minutes=6)
    with pytest.raises(EnrolmentError) as info:
        check_code(tmp_path, "r.adeyemi", code, now=later)
    assert str(info.value) == EXPIRED_CODE.format(member="r.adeyemi", expires=expires.isoformat())


def test_a_new_code_replaces_the_old_and_only_roster_members_get_one(tmp_path):
    old, _ = issue_code(tmp_path, "t.hughes", ROSTER)
    new, _ = issue_code(tmp_path, "t.hughes", ROSTER)
    with pytest.raises(EnrolmentError):
        check_code(tmp_path, "t.hughes", old)
    check_code(tmp_path, "t.hughes", new)
    with pytest.raises(EnrolmentError) as info:
        issue_code(tmp_path, "someone", ROSTER)
    assert str(info.value) == NOT_ON_ROSTER.format(member="someone", roster=", ".join(ROSTER))


def test_limiter_blocks_a_member_after_the_limit_and_a_client_later():
    limiter = FailureLimiter(3, 60.0, client_factor=2)
    for _ in range(3):
        assert not limiter.blocked("member:a", "client:1")
        limiter.fail("member:a", "client:1")
    assert limiter.blocked("member:a") and not limiter.blocked("member:b", "client:1")
    for _ in range(3):
        limiter.fail("member:b", "client:1")
    assert limiter.blocked("member:c", "client:1")  # the address itself is now locked
    limiter.clear("member:a")
    assert not limiter.blocked("member:a")


def test_session_ends_at_sign_out():
    store = SessionStore(60.0)
    token = store.start("r.adeyemi")
    assert store.get(token).member == "r.adeyemi"
    store.end(token)
    assert store.get(token) is None and store.get(None) is None
