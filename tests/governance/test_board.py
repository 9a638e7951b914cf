"""The policy chain: setup, seal, amendments by quorum, a swapped policy refused."""

from __future__ import annotations

import json
import stat

import pytest
import yaml

from governance.auditlog import read_log
from governance.board import (
    BoardSetupError,
    PolicyNotInForce,
    add_member_key,
    amendment_envelope,
    policy_in_force,
    propose_amendment,
    seal_genesis,
    sign_amendment,
    start_setup,
)
from governance.evidence import sha256_file
from governance.keys import system_key_path
from governance.policy import DEFAULT_POLICY_PATH
from governance.signing import (
    SignatureError,
    ed25519_key_record,
    envelope_to_dict,
    generate_ed25519,
    sign_ed25519,
)
from tests.governance.board_helpers import seal_board
from tests.governance.signing_helpers import SoftPasskey


def _edited_policy(root, tmp_path, **board):
    raw = yaml.safe_load((root / "governance/policy.yaml").read_text())
    raw["board"].update(board)
    path = tmp_path / "new_policy.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_sealed_genesis_is_in_force_with_keys_and_system_key(tmp_path):
    keys, chain = seal_board(tmp_path)
    assert chain.head.board.quorum == 2
    assert all(r.keys for r in chain.head.board.roster)
    assert chain.head.board.system_keys
    assert stat.S_IMODE(system_key_path(tmp_path).stat().st_mode) == 0o600
    assert chain.genesis_sha256 == sha256_file(tmp_path / "governance/policy.yaml")
    entry = read_log(tmp_path / "governance_log/audit.jsonl")[-1]
    assert entry["action"] == "genesis" and entry["details"]["policy_sha256"] == chain.shas[0]
    assert entry["system_signature"]["sig"]


def test_swapped_policy_file_is_refused_with_the_reason(tmp_path):
    _, chain = seal_board(tmp_path)
    outsider = _edited_policy(
        tmp_path, tmp_path, quorum=1,
        roster=[{"id": "x.outsider", "name": "Outsider", "role": "none"}], demo_reviewers=[],
    )  # fmt: skip
    (tmp_path / "governance/policy.yaml").write_bytes(outsider.read_bytes())
    with pytest.raises(PolicyNotInForce, match="policy in force is " + chain.shas[0]):
        policy_in_force(tmp_path)


def test_no_genesis_is_refused(tmp_path):
    with pytest.raises(PolicyNotInForce, match="no sealed policy"):
        policy_in_force(tmp_path)


def test_seal_needs_quorum_of_keyholders(tmp_path):
    start_setup(tmp_path, DEFAULT_POLICY_PATH)
    add_member_key(tmp_path, "t.hughes", ed25519_key_record(generate_ed25519()))
    with pytest.raises(BoardSetupError, match="only 1 roster member"):
        seal_genesis(tmp_path, audit_log=tmp_path / "log.jsonl")
    with pytest.raises(BoardSetupError, match="not on the draft roster"):
        add_member_key(tmp_path, "x.outsider", ed25519_key_record(generate_ed25519()))


def test_add_key_after_seal_is_refused(tmp_path):
    seal_board(tmp_path)
    with pytest.raises(BoardSetupError, match="already sealed"):
        add_member_key(tmp_path, "t.hughes", ed25519_key_record(generate_ed25519()))


def test_amendment_needs_quorum_of_the_replaced_policy(tmp_path):
    keys, chain = seal_board(tmp_path)
    log = tmp_path / "governance_log/audit.jsonl"
    new = _edited_policy(tmp_path, tmp_path, quorum=3)
    proposal = propose_amendment(tmp_path, new, rationale="three signatures from now on")
    envelope = amendment_envelope(tmp_path, proposal.policy_sha256)
    sign_ed25519(envelope, keys["t.hughes"])
    first = sign_amendment(tmp_path, proposal.policy_sha256, envelope_to_dict(envelope),
                           audit_log=log)  # fmt: skip
    assert not first.adopted and first.members == ["t.hughes"]
    assert policy_in_force(tmp_path).head.board.quorum == 2
    envelope = amendment_envelope(tmp_path, proposal.policy_sha256)
    sign_ed25519(envelope, keys["m.siddiqui"])
    done = sign_amendment(tmp_path, proposal.policy_sha256, envelope_to_dict(envelope),
                          audit_log=log)  # fmt: skip
    assert done.adopted and done.members == ["m.siddiqui", "t.hughes"]
    now = policy_in_force(tmp_path)
    assert now.head.board.quorum == 3 and now.shas == [chain.shas[0], proposal.policy_sha256]
    assert read_log(log)[-1]["action"] == "amendment"


def test_amendment_signed_by_an_outsider_is_refused(tmp_path):
    seal_board(tmp_path)
    new = _edited_policy(tmp_path, tmp_path, quorum=1)
    proposal = propose_amendment(tmp_path, new, rationale="quorum of one")
    envelope = amendment_envelope(tmp_path, proposal.policy_sha256)
    sign_ed25519(envelope, generate_ed25519())
    with pytest.raises(SignatureError, match="matches no key"):
        sign_amendment(tmp_path, proposal.policy_sha256, envelope_to_dict(envelope),
                       audit_log=tmp_path / "log.jsonl")  # fmt: skip


def test_rotated_key_by_passkey_and_ed25519_quorum(tmp_path):
    keys, _ = seal_board(tmp_path)
    passkey = SoftPasskey.new()
    raw = yaml.safe_load((tmp_path / "governance/policy.yaml").read_text())
    member = next(m for m in raw["board"]["roster"] if m["id"] == "t.hughes")
    member["keys"] = [passkey.record().model_dump()]
    new = tmp_path / "rotated.yaml"
    new.write_text(yaml.safe_dump(raw, sort_keys=False))
    proposal = propose_amendment(tmp_path, new, rationale="t.hughes moves to a passkey")
    envelope = amendment_envelope(tmp_path, proposal.policy_sha256)
    sign_ed25519(envelope, keys["t.hughes"])
    sign_ed25519(envelope, keys["r.adeyemi"])
    assert sign_amendment(tmp_path, proposal.policy_sha256, envelope_to_dict(envelope),
                          audit_log=tmp_path / "log.jsonl").adopted  # fmt: skip
    # The next amendment: t.hughes's old key no longer counts, the passkey does.
    newer = _edited_policy(tmp_path, tmp_path, quorum=3)
    proposal = propose_amendment(tmp_path, newer, rationale="three")
    envelope = amendment_envelope(tmp_path, proposal.policy_sha256)
    sign_ed25519(envelope, keys["t.hughes"])
    with pytest.raises(SignatureError, match="matches no key"):
        sign_amendment(tmp_path, proposal.policy_sha256, envelope_to_dict(envelope),
                       audit_log=tmp_path / "log.jsonl")  # fmt: skip
    envelope = amendment_envelope(tmp_path, proposal.policy_sha256)
    passkey.sign(envelope)
    sign_ed25519(envelope, keys["j.okafor"])
    assert sign_amendment(tmp_path, proposal.policy_sha256, envelope_to_dict(envelope),
                          audit_log=tmp_path / "log.jsonl").adopted  # fmt: skip


def test_chain_with_a_forged_amendment_is_refused(tmp_path):
    keys, chain = seal_board(tmp_path)
    new = _edited_policy(tmp_path, tmp_path, quorum=1)
    proposal = propose_amendment(tmp_path, new, rationale="quorum of one")
    envelope = amendment_envelope(tmp_path, proposal.policy_sha256)
    sign_ed25519(envelope, keys["t.hughes"])  # one of the two signatures needed
    # Written into the chain by hand, as an operator with shell access could.
    store = tmp_path / "governance/board/policies" / f"{proposal.policy_sha256}.yaml"
    store.write_bytes(new.read_bytes())
    with (tmp_path / "governance/board/chain.jsonl").open("a") as handle:
        handle.write(json.dumps({"n": 2, "kind": "amendment", "replaces": chain.shas[0],
                                 "policy_sha256": proposal.policy_sha256,
                                 "envelope": envelope_to_dict(envelope)}) + "\n")  # fmt: skip
    (tmp_path / "governance/policy.yaml").write_bytes(new.read_bytes())
    with pytest.raises(PolicyNotInForce, match="fewer than the quorum 2"):
        policy_in_force(tmp_path)


def test_replaced_genesis_is_caught_by_the_registry_tag(tmp_path):
    from tests.governance.mlflow_helpers import tracking_uri

    uri = tracking_uri(tmp_path)
    seal_board(tmp_path / "a", tracking_uri=uri, model_name="m")
    # A fresh genesis sealed over the old one (chain removed by hand), same registry.
    import shutil

    shutil.rmtree(tmp_path / "a/governance/board")
    seal_board(tmp_path / "a")
    with pytest.raises(PolicyNotInForce, match="the policy chain was replaced"):
        policy_in_force(tmp_path / "a", tracking_uri=uri, model_name="m")


def test_board_cli_keygen_setup_add_key_seal_show(tmp_path):
    from typer.testing import CliRunner

    from harmcast.cli import app

    runner = CliRunner()
    root = ["--root", str(tmp_path)]
    assert runner.invoke(app, ["board", "setup", *root]).exit_code == 0
    for member in ("t.hughes", "m.siddiqui"):
        key = tmp_path / f"{member}.key"
        out = runner.invoke(app, ["board", "keygen", "--member", member, "--out", str(key)])
        assert out.exit_code == 0 and stat.S_IMODE(key.stat().st_mode) == 0o600
        public = tmp_path / f"{member}.json"
        public.write_text(out.stdout.strip().splitlines()[-1])
        added = runner.invoke(app, ["board", "add-key", "--member", member,
                                    "--public", str(public), *root])  # fmt: skip
        assert added.exit_code == 0, added.output
    sealed = runner.invoke(app, ["board", "seal", *root])
    assert sealed.exit_code == 0, sealed.output
    shown = runner.invoke(app, ["board", "show", *root])
    assert shown.exit_code == 0 and "t.hughes" in shown.output and "ed25519:" in shown.output
    (tmp_path / "governance/policy.yaml").write_text(
        (tmp_path / "governance/policy.yaml").read_text().replace("quorum: 2", "quorum: 1")
    )
    refused = runner.invoke(app, ["board", "show", *root])
    assert refused.exit_code == 1 and "policy in force is" in " ".join(refused.output.split())


def test_main_job_demo_board_is_sealed_once_with_demo_keys(tmp_path):
    from governance.board import policy_in_force
    from harmcast.commands.pipeline import _demo_board
    from training.config import load_params

    params = load_params(None, root=tmp_path)
    keys = _demo_board(params)
    assert sorted(keys) == ["j.okafor", "m.siddiqui", "r.adeyemi", "t.hughes"]
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in keys.values())
    chain = policy_in_force(tmp_path)
    assert all(k.demo for r in chain.head.board.roster for k in r.keys)
    assert _demo_board(params) == keys and policy_in_force(tmp_path).shas == chain.shas
