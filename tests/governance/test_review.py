"""Board review by signatures: quorum of keys, not of typed names; rejection and rollback."""

import json

import pytest

from governance.auditlog import read_log
from governance.board import add_member_key, seal_genesis, start_setup
from governance.policy import DEFAULT_POLICY_PATH
from governance.provenance import Governance
from governance.review import (
    ALREADY_REJECTED,
    DUPLICATE_REVIEWER,
    NO_RATIONALE,
    NOT_THE_SIGNER,
    ROLLED_BACK,
    approve,
    list_versions,
    prepare_decision,
    reject,
    rollback,
    submit_decision,
)
from governance.servable import check_servable
from governance.signing import (
    SignatureError,
    ed25519_key_record,
    envelope_to_dict,
    generate_ed25519,
    sign_ed25519,
    write_private_key,
)
from tests.governance.governed import (
    MODEL,
    Project,
    approve_by,
    audited_report,
    draft_card,
    governed_version,
    make_project,
    register_logged,
)
from tests.governance.mlflow_helpers import log_candidate, tracking_uri
from tests.governance.signing_helpers import SoftPasskey
from training.errors import NotApproved, ReviewError


def _pending(project: Project, seed: int = 0) -> str:
    run_id, uri = log_candidate(project.uri, seed=seed)
    version = register_logged(project, run_id, uri, audited_report(project, run_id, uri))
    draft_card(project, version)
    return version


@pytest.fixture()
def project(tmp_path):
    return make_project(tmp_path / "root")


def _sign(project, version, member, key, decision="approve", rationale="read the card"):
    envelope = prepare_decision(
        project.gov, model_name=MODEL, version=version, decision=decision, member=member,
        rationale=rationale,
    )  # fmt: skip
    sign_ed25519(envelope, key)
    return envelope_to_dict(envelope)


def test_quorum_needs_two_distinct_members(project):
    version = _pending(project)
    first = approve_by(project, version, members=("r.adeyemi",))
    assert first.status == "pending" and first.production is None
    with pytest.raises(ReviewError) as info:
        approve_by(project, version, members=("r.adeyemi",))
    assert str(info.value) == DUPLICATE_REVIEWER.format(
        reviewer="r.adeyemi", decision="approve", version=version
    )
    second = approve_by(project, version, members=("t.hughes",))
    assert second.status == "approved" and second.production == version
    tags = project.client.get_model_version(MODEL, version).tags
    assert tags["harmcast.reviewers"] == "r.adeyemi,t.hughes"
    approvals = json.loads(tags["harmcast.approvals"])
    assert [a["key_fingerprint"] for a in approvals] == [
        ed25519_key_record(project.keys[m]).fingerprint for m in ("r.adeyemi", "t.hughes")
    ]


def test_one_person_typing_two_names_cannot_make_the_quorum(project):
    """Attack: `--reviewer t.hughes` then `--reviewer m.siddiqui` by one person."""
    version = _pending(project)
    approve_by(project, version, members=("t.hughes",))
    own_key = project.keys["t.hughes"]
    with pytest.raises(ReviewError) as info:
        submit_decision(project.gov, _sign(project, version, "m.siddiqui", own_key))
    assert str(info.value) == NOT_THE_SIGNER.format(member="m.siddiqui", signer="t.hughes")
    with pytest.raises(SignatureError, match="matches no key"):
        submit_decision(project.gov, _sign(project, version, "m.siddiqui", generate_ed25519()))
    with pytest.raises(NotApproved, match="1 of the quorum 2"):
        check_servable(project.gov, MODEL, version, require_card=False)


def test_one_person_typing_two_names_on_the_command_line(project, tmp_path):
    from typer.testing import CliRunner

    from harmcast.cli import app

    version = _pending(project)
    key = write_private_key(project.keys["t.hughes"], tmp_path / "t.hughes.key")
    base = ["review", "approve", "--version", version, "--key", str(key), "--rationale", "ok",
            "--root", str(project.root)]  # fmt: skip
    runner = CliRunner()
    assert runner.invoke(app, [*base, "--member", "t.hughes"]).exit_code == 0
    second = runner.invoke(app, [*base, "--member", "m.siddiqui"])
    assert second.exit_code == 1
    assert "signed by 't.hughes'" in " ".join(second.output.split())
    status = {s.version: s.status for s in list_versions(model_name=MODEL,
                                                          tracking_uri=project.uri)}  # fmt: skip
    assert status[version] == "pending"


def test_off_roster_and_empty_rationale_refused(project):
    version = _pending(project)
    with pytest.raises(ReviewError, match="not on the board roster"):
        submit_decision(project.gov, _sign(project, version, "intruder", generate_ed25519()))
    with pytest.raises(ReviewError) as info:
        approve(project.gov, model_name=MODEL, version=version, member="t.hughes",
                key=project.keys["t.hughes"], rationale="  ")  # fmt: skip
    assert str(info.value) == NO_RATIONALE


def test_approval_needs_the_draft_card_and_signs_it(project):
    version = _pending(project)
    project.gov.card_json(MODEL, version).unlink()
    with pytest.raises(ReviewError, match="no draft card to review"):
        approve_by(project, version, members=("t.hughes",))
    draft_card(project, version)
    signed = _sign(project, version, "t.hughes", project.keys["t.hughes"])
    draft_card(project, version, {"changed": "after signing"})
    with pytest.raises(ReviewError, match="card_sha256 is"):
        submit_decision(project.gov, signed)


def test_rejection_is_final(project):
    version = _pending(project)
    out = reject(project.gov, model_name=MODEL, version=version, member="m.siddiqui",
                 key=project.keys["m.siddiqui"], rationale="proxy risk")  # fmt: skip
    assert out.status == "rejected"
    with pytest.raises(ReviewError) as info:
        approve_by(project, version, members=("r.adeyemi",))
    assert str(info.value) == ALREADY_REJECTED.format(model=MODEL, version=version)


def test_rollback_by_quorum_withdraws_for_good(project):
    first = governed_version(project, seed=0)
    second = governed_version(project, seed=1)
    client = project.client
    assert str(client.get_model_version_by_alias(MODEL, "production").version) == second
    kw = {"model_name": MODEL, "version": second, "rationale": "drift in week 12"}
    one = rollback(project.gov, member="r.adeyemi", key=project.keys["r.adeyemi"], **kw)
    assert one.status == "approved" and one.production == second
    two = rollback(project.gov, member="j.okafor", key=project.keys["j.okafor"], **kw)
    assert two.status == "rolled_back" and two.production == first and two.previous is None
    assert read_log(project.gov.audit_log)[-1]["action"] == "rollback"
    # Moving the alias back by hand serves nothing.
    client.set_registered_model_alias(MODEL, "production", second)
    with pytest.raises(NotApproved, match="was rolled back by j.okafor, r.adeyemi"):
        check_servable(project.gov, MODEL, second)
    with pytest.raises(ReviewError) as info:
        approve_by(project, second, members=("m.siddiqui",))
    assert str(info.value) == ROLLED_BACK.format(model=MODEL, version=second)


def test_emergency_rule_lets_one_member_withdraw(tmp_path):
    import yaml

    source = tmp_path / "policy.yaml"
    raw = yaml.safe_load(DEFAULT_POLICY_PATH.read_text())
    raw["board"]["emergency_rollback"] = True
    source.write_text(yaml.safe_dump(raw, sort_keys=False))
    from tests.governance.board_helpers import seal_board

    root = tmp_path / "root"
    (root / "mlruns").mkdir(parents=True)
    uri = tracking_uri(root / "mlruns")
    keys, chain = seal_board(root, tracking_uri=uri, model_name=MODEL, source=source)
    project = Project(root, uri, Governance.for_root(root, tracking_uri=uri), keys, chain)
    version = governed_version(project)
    out = rollback(project.gov, model_name=MODEL, version=version, member="j.okafor",
                   key=keys["j.okafor"], rationale="harm reported in the community")  # fmt: skip
    assert out.status == "rolled_back" and out.production is None


def test_passkey_member_decision_round_trip(tmp_path):
    """A member whose key is a passkey signs a WebAuthn assertion over the decision."""
    root = tmp_path / "root"
    (root / "mlruns").mkdir(parents=True)
    uri = tracking_uri(root / "mlruns")
    start_setup(root, DEFAULT_POLICY_PATH)
    keys = {m: generate_ed25519() for m in ("r.adeyemi", "m.siddiqui", "j.okafor")}
    for member, key in keys.items():
        add_member_key(root, member, ed25519_key_record(key))
    passkey = SoftPasskey.new()
    add_member_key(root, "t.hughes", passkey.record())
    chain = seal_genesis(root, audit_log=root / "governance_log/audit.jsonl", tracking_uri=uri,
                         model_name=MODEL)  # fmt: skip
    project = Project(root, uri, Governance.for_root(root, tracking_uri=uri), keys, chain)
    version = _pending(project)
    envelope = prepare_decision(project.gov, model_name=MODEL, version=version,
                                decision="approve", member="t.hughes", rationale="read it")  # fmt: skip
    passkey.sign(envelope)
    out = submit_decision(project.gov, envelope_to_dict(envelope))
    assert out.reviewers == ["t.hughes"]
    approve_by(project, version, members=("j.okafor",))
    from tests.governance.governed import publish

    publish(project, version)
    servable = check_servable(project.gov, MODEL, version)
    kinds = {d.member: d.key_type for d in servable.decisions}
    assert kinds == {"t.hughes": "webauthn", "j.okafor": "ed25519"}
    # A passkey assertion from another relying party is refused.
    other = _pending(project, seed=3)
    envelope = prepare_decision(project.gov, model_name=MODEL, version=other,
                                decision="approve", member="t.hughes", rationale="x")  # fmt: skip
    passkey.sign(envelope, rp_id="evil.example")
    with pytest.raises(SignatureError, match="not the RP ID 'localhost'"):
        submit_decision(project.gov, envelope_to_dict(envelope))
