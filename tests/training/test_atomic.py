"""Files written whole or not at all (``training.atomic``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.atomic import write_files


def test_files_are_replaced_and_no_temporary_is_left(tmp_path: Path):
    first, second = tmp_path / "a.bin", tmp_path / "sub" / "b.bin"
    first.write_bytes(b"old")
    write_files({first: b"new", second: b"created"})
    assert first.read_bytes() == b"new" and second.read_bytes() == b"created"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.bin", "b.bin", "sub"]


def test_a_file_that_cannot_be_staged_leaves_every_target_as_it_was(tmp_path: Path):
    first = tmp_path / "a.bin"
    first.write_bytes(b"old")
    (tmp_path / "blocker").write_text("a file where a folder is needed")
    with pytest.raises(OSError):
        write_files({first: b"new", tmp_path / "blocker" / "b.bin": b"never"})
    assert first.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "blocker"]
