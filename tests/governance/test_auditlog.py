import json

import pytest

from governance.auditlog import (
    BAD_HASH,
    BAD_SEQ,
    BROKEN_CHAIN,
    GENESIS_HASH,
    HEAD_MISSING,
    UNKNOWN_ACTION,
    append_entry,
    entry_hash,
    read_log,
    verify_log,
)


@pytest.fixture()
def log(tmp_path):
    path = tmp_path / "governance_log" / "audit.jsonl"
    for i, action in enumerate(["register", "approve", "approve", "publish", "rollback"]):
        append_entry(
            path,
            actor=f"actor{i}",
            action=action,
            model="m",
            version=i + 1,
            details={"rationale": f"reason {i}"},
        )
    return path


def _lines(path):
    return path.read_text().splitlines()


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n")


def test_chain_links_and_verifies(log):
    entries = read_log(log)
    assert [e["seq"] for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0]["prev_hash"] == GENESIS_HASH
    for before, after in zip(entries, entries[1:], strict=False):
        assert after["prev_hash"] == before["hash"]
    assert all(e["hash"] == entry_hash(e) for e in entries)
    result = verify_log(log)
    assert result.ok and result.n_entries == 5 and result.head == entries[-1]["hash"]
    assert result.problems == [] and result.first_bad is None


def test_entry_has_required_fields(log):
    entry = read_log(log)[1]
    for key in ("timestamp", "actor", "action", "model", "version", "details", "prev_hash", "hash"):
        assert key in entry
    assert entry["version"] == "2" and entry["details"] == {"rationale": "reason 1"}


def test_unknown_action_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown audit action"):
        append_entry(tmp_path / "a.jsonl", actor="x", action="delete", model="m", version=1)
    assert UNKNOWN_ACTION.startswith("unknown audit action")


def test_edited_field_is_caught(log):
    lines = _lines(log)
    entry = json.loads(lines[2])
    entry["details"]["rationale"] = "something else"
    lines[2] = json.dumps(entry)
    _write(log, lines)
    result = verify_log(log)
    assert not result.ok and result.first_bad == 3
    assert BAD_HASH.format(n=3) in result.problems


def test_edited_and_rehashed_entry_breaks_the_next_link(log):
    lines = _lines(log)
    entry = json.loads(lines[1])
    entry["actor"] = "someone.else"
    entry["hash"] = entry_hash(entry)
    lines[1] = json.dumps(entry)
    _write(log, lines)
    result = verify_log(log)
    assert not result.ok and result.first_bad == 3
    assert BROKEN_CHAIN.format(n=3, p=2) in result.problems


def test_deleted_line_is_caught(log):
    lines = _lines(log)
    del lines[1]
    _write(log, lines)
    result = verify_log(log)
    assert not result.ok and result.first_bad == 2
    assert BAD_SEQ.format(n=2, seq=3) in result.problems
    assert BROKEN_CHAIN.format(n=2, p=1) in result.problems


def test_deleted_first_line_is_caught(log):
    _write(log, _lines(log)[1:])
    result = verify_log(log)
    assert not result.ok and result.first_bad == 1


def test_swapped_lines_are_caught(log):
    lines = _lines(log)
    lines[2], lines[3] = lines[3], lines[2]
    _write(log, lines)
    result = verify_log(log)
    assert not result.ok and result.first_bad == 3
    assert BROKEN_CHAIN.format(n=3, p=2) in result.problems


def test_truncated_tail_is_caught_with_the_recorded_head(log):
    head = read_log(log)[-1]["hash"]
    _write(log, _lines(log)[:3])
    assert verify_log(log).ok  # the chain alone cannot see a cut tail
    result = verify_log(log, heads={"m": head})
    assert not result.ok and result.first_bad == 4
    assert HEAD_MISSING.format(model="m", head=head[:12]) in result.problems


def test_head_not_last_is_caught(log):
    head = read_log(log)[2]["hash"]
    result = verify_log(log, heads={"m": head})
    assert not result.ok and result.first_bad == 4


def test_garbage_line_is_caught(log):
    lines = _lines(log)
    lines[0] = "not json"
    _write(log, lines)
    result = verify_log(log)
    assert not result.ok and result.first_bad == 1
