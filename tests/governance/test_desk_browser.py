"""The board's review desk in a real Chromium: passkeys enrolled from one-time codes,
sign-in per member, signed approvals reaching quorum, rejection, sign-in limits,
keyboard use and text contrast. The desk runs as ``harmcast board serve`` on loopback
over a real sqlite MLflow registry."""

from __future__ import annotations

import re

import httpx
import pytest
from desk_browser import (
    ARTEFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    CONTRAST_JS,
    add_authenticator,
    free_port,
    start_desk,
)
from mlflow_helpers import MODEL_NAME, log_candidate, tracking_uri, write_reports
from typer.testing import CliRunner

from governance.board import board_dir, seal_genesis, start_setup
from governance.desk.ceremonies import TOO_MANY
from governance.policy import DEFAULT_POLICY_PATH
from governance.provenance import Governance
from governance.review import production_version, show_version
from governance.servable import check_servable
from harmcast.cli import app
from tests.governance.governed import Project, audited_report, register_logged
from training.errors import NotApproved

pytestmark = pytest.mark.slow
playwright = pytest.importorskip("playwright.sync_api")
ENROLLED = ("r.adeyemi", "t.hughes", "m.siddiqui")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A root whose board is being set up (a draft genesis) and an empty registry."""
    root = tmp_path_factory.mktemp("desk")
    (root / "mlruns").mkdir()
    uri = tracking_uri(root / "mlruns")
    start_setup(root, DEFAULT_POLICY_PATH)
    return {"root": root, "uri": uri}


@pytest.fixture(scope="module")
def desk(project):
    port = free_port()
    proc = start_desk(project["root"], port)
    yield {**project, "url": f"http://localhost:{port}", "port": port}
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def members():
    """Each member's own browser context (and so their own authenticator)."""
    found: dict = {}
    yield found
    for context, _ in found.values():
        context.close()


def _code(root, member: str) -> str:
    result = CliRunner().invoke(app, ["board", "enrol", "--member", member, "--root", str(root)])
    assert result.exit_code == 0, result.output
    return re.search(r"code for \S+: (\S+)", result.output).group(1)


def _shot(page, name: str) -> None:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTEFACTS / f"{name}.png"), full_page=True)


def _enrol(browser, desk, member: str, recorded: str = "added to the draft"):
    """A fresh browser context with its own authenticator; enrol the member's passkey."""
    context = browser.new_context()
    page = context.new_page()
    add_authenticator(context, page)
    page.goto(f"{desk['url']}/enrol")
    page.get_by_label("Board member id").fill(member)
    page.get_by_label("One-time enrolment code").fill(_code(desk["root"], member))
    page.get_by_role("button", name="Create passkey").click()
    said = re.compile(f"Passkey for {re.escape(member)} .* {recorded}")
    page.get_by_text(said).wait_for()
    return context, page


def _sign_in(desk, page, member: str) -> None:
    page.goto(f"{desk['url']}/signin")
    page.get_by_label("Board member id").fill(member)
    page.get_by_role("button", name="Sign in with passkey").click()
    page.wait_for_url(f"{desk['url']}/")


def _register(desk, chain, seed: int) -> str:
    """Log, audit (a gate report naming its subject) and register a candidate; draft its card."""
    root, uri = desk["root"], desk["uri"]
    gov = Governance.for_root(root, tracking_uri=uri)
    project = Project(root, uri, gov, {}, chain)
    run_id, model_uri = log_candidate(uri, seed=seed)
    write_reports(root, run_id, model_uri, chain.head.sha256)
    version = register_logged(
        project, run_id, model_uri, audited_report(project, run_id, model_uri)
    )
    result = CliRunner().invoke(app, ["card", "--version", version, "--root", str(root)])
    assert result.exit_code == 0, result.output
    return version


def _decide(page, desk, version: int, button: str, rationale: str) -> str:
    page.goto(f"{desk['url']}/versions/{version}")
    page.get_by_label("Written rationale (required)").fill(rationale)
    page.get_by_role("button", name=button).click()
    status = page.locator("#status")
    try:
        status.filter(has_text=re.compile(r"Signed|refused|already|rejected|approved")).wait_for()
    finally:
        _shot(page, f"decided-{version}-{button}")
    return status.inner_text()


def _production(desk):
    return production_version(model_name=MODEL_NAME, tracking_uri=desk["uri"])


def test_members_enrol_passkeys_during_setup_and_the_board_is_sealed(browser, desk, members):
    for member in ENROLLED:
        members[member] = _enrol(browser, desk, member)
    _shot(members["r.adeyemi"][1], "enrol")
    draft = (board_dir(desk["root"]) / "draft.yaml").read_text()
    assert draft.count("type: webauthn") == len(ENROLLED)
    chain = seal_genesis(desk["root"], audit_log=desk["root"] / "governance_log/audit.jsonl",
                         tracking_uri=desk["uri"], model_name=MODEL_NAME)  # fmt: skip
    for member in ENROLLED:
        keys = chain.head.board.reviewer(member).keys
        assert [k.type for k in keys] == ["webauthn"]
    assert [_register(desk, chain, seed) for seed in range(3)] == ["1", "2", "3"]
    for member, (_, page) in members.items():
        _sign_in(desk, page, member)
    _shot(members["r.adeyemi"][1], "versions")


def test_two_members_sign_separately_and_quorum_moves_production(desk, members):
    page_a, page_b = members["r.adeyemi"][1], members["t.hughes"][1]
    said = _decide(page_a, desk, 1, "Sign and approve", "Read the card: fair and better.")
    assert "Signed approve of version 1" in said
    assert _production(desk) is None

    # The same member approving again is refused and quorum stays unmet.
    said = _decide(page_a, desk, 1, "Sign and approve", "Approving twice.")
    assert "has already signed approve" in said
    assert _production(desk) is None

    said = _decide(page_b, desk, 1, "Sign and approve", "Agreed after reading the gate report.")
    assert "production is version 1" in said
    assert _production(desk) == "1"

    page_b.goto(f"{desk['url']}/versions/1")
    rows = page_b.locator("#decisions tbody tr")
    assert rows.count() == 2
    fingerprints = set()
    for member in ("r.adeyemi", "t.hughes"):
        text = page_b.locator(f'#decisions tr[data-member="{member}"]').inner_text()
        fingerprints.add(re.search(r"\b[0-9a-f]{16}\b", text).group(0))
        assert "valid (passkey)" in text
    assert len(fingerprints) == 2
    assert "2 of 2 distinct members" in page_b.content()
    assert "Summary for the board" in page_b.content()
    _shot(page_b, "version")


def test_rejected_version_is_never_servable(desk, members):
    page = members["m.siddiqui"][1]
    said = _decide(page, desk, 2, "Sign and reject", "The fairness evidence is too thin.")
    assert "Signed reject of version 2" in said
    assert show_version(model_name=MODEL_NAME, version=2, tracking_uri=desk["uri"]).status == (
        "rejected"
    )
    gov = Governance.for_root(desk["root"], tracking_uri=desk["uri"])
    with pytest.raises(NotApproved, match="rejected"):
        check_servable(gov, MODEL_NAME, "2")
    assert _production(desk) == "1"
    page.goto(f"{desk['url']}/versions/2")
    assert page.get_by_role("button", name="Sign and approve").count() == 0


def test_enrolment_code_is_single_use(desk):
    code = _code(desk["root"], "j.okafor")
    with httpx.Client(base_url=desk["url"]) as client:
        first = client.post("/api/enrol/options", json={"member": "j.okafor", "code": code})
        assert first.status_code == 200
        wrong = client.post("/api/enrol/options", json={"member": "j.okafor", "code": "AAAA"})
        assert wrong.status_code == 403 and "no valid enrolment code" in wrong.json()["error"]
        other = client.post("/api/enrol/options", json={"member": "not.a.member", "code": code})
        assert other.status_code == 403


def test_failed_sign_ins_are_limited(browser, desk):
    bogus = {"id": "AAAA", "rawId": "AAAA", "type": "public-key",
             "response": {"authenticatorData": "AAAA", "clientDataJSON": "AAAA",
                          "signature": "AAAA"}}  # fmt: skip
    with httpx.Client(base_url=desk["url"]) as client:
        answers = []
        for _ in range(6):
            client.post("/api/signin/options", json={"member": "r.adeyemi"})
            answers.append(
                client.post("/api/signin/verify", json={"member": "r.adeyemi", "credential": bogus})
            )
    assert [a.status_code for a in answers[:5]] == [403] * 5
    assert answers[5].status_code == 429 and answers[5].json()["error"] == TOO_MANY
    # The real member, with the real passkey, is locked out for now too.
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{desk['url']}/signin")
    page.get_by_label("Board member id").fill("r.adeyemi")
    page.get_by_role("button", name="Sign in with passkey").click()
    page.get_by_text(TOO_MANY).wait_for()
    _shot(page, "signin-locked")
    context.close()


def test_keyboard_reaches_every_control_and_text_has_contrast(desk, members):
    page = members["m.siddiqui"][1]
    page.goto(f"{desk['url']}/versions/3")
    seen = []
    for _ in range(40):
        page.keyboard.press("Tab")
        seen.append(
            page.evaluate("document.activeElement.textContent || document.activeElement.id")
        )
    assert "Skip to content" in seen[0]
    for control in ("rationale", "Sign and approve", "Sign and reject", "Sign out"):
        assert any(control in s for s in seen), (control, seen)
    for path in ("/", "/versions/1", "/versions/3", "/signin", "/enrol"):
        page.goto(f"{desk['url']}{path}")
        assert page.evaluate(CONTRAST_JS) == [], path
    # Sign out and in again with the keyboard alone.
    page.goto(f"{desk['url']}/")
    _tab_to(page, "Sign out")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{desk['url']}/signin")
    _tab_to(page, "member")
    page.keyboard.type("m.siddiqui")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{desk['url']}/")
    assert "Signed in as" in page.content()


def _tab_to(page, name: str, limit: int = 30) -> None:
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement.textContent + document.activeElement.id")
        if name in focused:
            return
    raise AssertionError(f"{name!r} is not reachable with the Tab key")


def _roll_back(page, desk, rationale: str) -> str:
    page.goto(f"{desk['url']}/")
    page.get_by_label("Why roll back (required)").fill(rationale)
    page.get_by_role("button", name="Sign and roll back to the previous version").click()
    status = page.locator("#status")
    status.filter(has_text=re.compile(r"Signed|refused|not|no ")).wait_for()
    return status.inner_text()


def test_rollback_from_the_desk_with_rationale(desk, members):
    page_a, page_b = members["r.adeyemi"][1], members["t.hughes"][1]
    for page in (page_a, page_b):
        _decide(page, desk, 3, "Sign and approve", "Better on every measure.")
    assert _production(desk) == "3"
    said = _roll_back(page_a, desk, "Complaints from the north district: withdraw it.")
    assert "Signed rollback of version 3" in said
    assert _production(desk) == "3"  # a rollback, like an approval, needs the quorum
    said = _roll_back(page_b, desk, "Agreed: back to version 1 while we look.")
    assert "Signed rollback of version 3" in said and "production is version 1" in said
    assert _production(desk) == "1"
    page_b.goto(f"{desk['url']}/versions/3")
    assert page_b.locator("#decisions tbody tr").count() == 4
    _shot(page_b, "rolled-back")


def test_a_passkey_enrolled_after_sealing_needs_a_signed_amendment(browser, desk, members):
    context, page = _enrol(browser, desk, "j.okafor", recorded="proposed as policy amendment")
    members["j.okafor"] = (context, page)
    page.goto(f"{desk['url']}/signin")
    page.get_by_label("Board member id").fill("j.okafor")
    page.get_by_role("button", name="Sign in with passkey").click()
    page.get_by_text("no passkey is enrolled").wait_for()  # not in force until signed
    for member in ("m.siddiqui", "t.hughes"):
        board_page = members[member][1]
        board_page.goto(f"{desk['url']}/")
        board_page.get_by_role("button", name=re.compile("Sign amendment")).click()
        board_page.locator("#status").filter(has_text="Signed amendment").wait_for()
    assert "adopted, the new policy is in force" in board_page.locator("#status").inner_text()
    _shot(board_page, "amendment-adopted")
    _sign_in(desk, page, "j.okafor")
    assert "Signed in as" in page.content()
