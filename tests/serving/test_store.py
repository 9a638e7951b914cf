"""The pinned model tag (env var or tag file) and the ``serving.store`` re-exports."""

from __future__ import annotations

import pytest

import serving.approval
import serving.bundle
import serving.store
from serving.store import (
    MODEL_TAG_ENV,
    MODEL_TAG_FILE,
    MODEL_TAG_FILE_ENV,
    MSG_NO_TAG,
    bento_model_tag,
    model_tag_file,
    write_model_tag,
)
from training.errors import NotApproved


@pytest.fixture
def tag_file(tmp_path, monkeypatch):
    monkeypatch.delenv(MODEL_TAG_ENV, raising=False)
    path = tmp_path / "model_tag.txt"
    monkeypatch.setenv(MODEL_TAG_FILE_ENV, str(path))
    return path


def test_written_tag_is_read_back_from_the_tag_file(tag_file):
    assert write_model_tag("harmcast-violence:v3-0123456789") == tag_file
    assert bento_model_tag() == "harmcast-violence:v3-0123456789"


def test_env_tag_overrides_the_file(tag_file, monkeypatch):
    write_model_tag("harmcast-violence:v3-0123456789")
    monkeypatch.setenv(MODEL_TAG_ENV, "harmcast-violence:v4-abcdef0123")
    assert bento_model_tag() == "harmcast-violence:v4-abcdef0123"


@pytest.mark.parametrize("tag", [None, "harmcast-violence:latest", "harmcast-violence"])
def test_missing_latest_or_unversioned_tags_are_refused(tag_file, tag):
    if tag is not None:
        write_model_tag(tag)
    with pytest.raises(NotApproved) as info:
        bento_model_tag()
    assert str(info.value) == MSG_NO_TAG


def test_default_tag_file_sits_beside_the_service(monkeypatch):
    monkeypatch.delenv(MODEL_TAG_FILE_ENV, raising=False)
    assert model_tag_file() == MODEL_TAG_FILE
    assert MODEL_TAG_FILE.name == "model_tag.txt" and MODEL_TAG_FILE.parent.name == "serving"


def test_store_re_exports_the_approval_and_bundle_api():
    for module in (serving.approval, serving.bundle):
        for name in module.__all__:
            assert getattr(serving.store, name) is getattr(module, name), name


def test_serving_reads_the_tags_governance_writes():
    from governance import registry
    from serving import approval

    assert approval.TAG_APPROVAL == registry.TAG_STATUS
    assert approval.TAG_GATE == registry.TAG_GATE
    assert approval.TAG_CARD == registry.TAG_CARD
    assert approval.PRODUCTION == registry.ALIAS_PRODUCTION
