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
from mlflow_helpers import MODEL_NAME, log_candidate, policy, tracking_uri, write_reports
from typer.testing import CliRunner

from governance.auditlog import default_log_path
from governance.desk.ceremonies import TOO_MANY
from governance.registry import register_candidate
from governance.review import production_version, show_version
from harmcast.cli import app

pytestmark = pytest.mark.slow
playwright = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A root with three gate-passed pending versions and a draft card for version 1."""
    root = tmp_path_factory.mktemp("desk")
    (root / "mlruns").mkdir()
    uri, pol = tracking_uri(root / "mlruns"), policy()
    log = default_log_path(root)
    for seed in range(3):
        run_id, model_uri = log_candidate(uri, seed=seed)
        paths = write_reports(root, run_id, model_uri, pol.sha256)
        register_candidate(
            run_id=run_id, model_uri=model_uri, gate_report=paths["gate"], model_name=MODEL_NAME,
            policy=pol, data_sha256="d" * 64, code_version="abc", backtest_metrics={},
            tracking_uri=uri, audit_log=log, report_files=[paths["gate"]],
        )  # fmt: skip
    result = CliRunner().invoke(app, ["card", "--version", "1", "--root", str(root)])
    assert result.exit_code == 0, result.output
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


def _code(root, member: str) -> str:
    result = CliRunner().invoke(app, ["board", "enrol", "--member", member, "--root", str(root)])
    assert result.exit_code == 0, result.output
    return re.search(r"code for \S+: (\S+)", result.output).group(1)


def _shot(page, name: str) -> None:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTEFACTS / f"{name}.png"), full_page=True)


def _member_page(browser, desk, member: str):
    """A fresh browser context with its own authenticator; enrol, then sign in."""
    context = browser.new_context()
    page = context.new_page()
    add_authenticator(context, page)
    page.goto(f"{desk['url']}/enrol")
    page.get_by_label("Board member id").fill(member)
    page.get_by_label("One-time enrolment code").fill(_code(desk["root"], member))
    page.get_by_role("button", name="Create passkey").click()
    page.get_by_text(re.compile(f"Passkey enrolled for {re.escape(member)}")).wait_for()
    _shot(page, f"enrol-{member}")
    page.goto(f"{desk['url']}/signin")
    page.get_by_label("Board member id").fill(member)
    page.get_by_role("button", name="Sign in with passkey").click()
    page.wait_for_url(f"{desk['url']}/")
    return context, page


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


def test_two_members_sign_separately_and_quorum_moves_production(browser, desk):
    ctx_a, page_a = _member_page(browser, desk, "r.adeyemi")
    _shot(page_a, "versions")
    said = _decide(page_a, desk, 1, "Sign and approve", "Read the card: fair and better.")
    assert "Signed approve of version 1" in said
    assert _production(desk) is None

    # The same member approving again is refused and quorum stays unmet.
    said = _decide(page_a, desk, 1, "Sign and approve", "Approving twice.")
    assert "already approved" in said
    assert _production(desk) is None
    assert show_version(model_name=MODEL_NAME, version=1, tracking_uri=desk["uri"]).reviewers == [
        "r.adeyemi"
    ]

    ctx_b, page_b = _member_page(browser, desk, "t.hughes")
    said = _decide(page_b, desk, 1, "Sign and approve", "Agreed after reading the gate report.")
    assert "production is version 1" in said
    assert _production(desk) == "1"

    page_b.goto(f"{desk['url']}/versions/1")
    rows = page_b.locator("#decisions tbody tr")
    assert rows.count() == 2
    for member in ("r.adeyemi", "t.hughes"):
        row = page_b.locator(f'#decisions tr[data-member="{member}"]')
        assert re.search(r"\b[0-9a-f]{16}\b", row.inner_text())
        assert "valid" in row.inner_text() and "does not verify" not in row.inner_text()
    assert "Summary for the board" in page_b.content()
    _shot(page_b, "version")
    ctx_a.close()
    ctx_b.close()


def test_rejected_version_is_never_in_production(browser, desk):
    ctx, page = _member_page(browser, desk, "m.siddiqui")
    said = _decide(page, desk, 2, "Sign and reject", "The fairness evidence is too thin.")
    assert "Signed reject of version 2" in said
    status = show_version(model_name=MODEL_NAME, version=2, tracking_uri=desk["uri"])
    assert status.status == "rejected"
    assert _production(desk) != "2"
    page.goto(f"{desk['url']}/versions/2")
    assert page.get_by_role("button", name="Sign and approve").count() == 0
    ctx.close()


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


def test_keyboard_reaches_every_control_and_text_has_contrast(browser, desk):
    ctx, page = _member_page(browser, desk, "j.okafor")
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
    # Enter on the focused textarea's form buttons is plain HTML: a button is reachable and focusable.
    for path in ("/", "/versions/1", "/versions/3", "/signin", "/enrol"):
        page.goto(f"{desk['url']}{path}")
        assert page.evaluate(CONTRAST_JS) == [], path
    ctx.close()
