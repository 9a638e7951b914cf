"""Helpers for the desk's browser tests: a real desk process on loopback, Debian's
Chromium through Playwright, and a WebAuthn virtual authenticator per member."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: Where the screenshots of each page are kept as test artefacts.
ARTEFACTS = Path(__file__).resolve().parents[2] / "tests" / "artefacts" / "board"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_desk(root: Path, port: int) -> subprocess.Popen:
    """Run ``harmcast board serve`` on 127.0.0.1:port and wait until it answers."""
    log = (root / "desk.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "harmcast.cli", "board", "serve", "--root", str(root),
         "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, cwd=root, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError((root / "desk.log").read_text())
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/signin", timeout=2):
                return proc
        except OSError:
            time.sleep(0.3)
    proc.terminate()
    raise TimeoutError("the desk did not answer within 60 s")


def add_authenticator(context, page) -> str:
    """Give ``page``'s context its own platform passkey authenticator (CDP WebAuthn)."""
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    found = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    page._desk_cdp = cdp  # keep the session (and so the authenticator) alive
    return found["authenticatorId"]


#: WCAG 2 contrast of every element's own text against its effective background.
CONTRAST_JS = """
() => {
  const parse = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const worst = [];
  for (const el of document.querySelectorAll("body *")) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    const style = getComputedStyle(el);
    const hidden = el.offsetParent === null && style.position !== "fixed";
    if (!own || style.visibility === "hidden" || hidden) continue;
    const a = lum(parse(style.color).slice(0, 3)), b = lum(background(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const text = el.textContent.trim().slice(0, 40);
    if (ratio < 4.5) worst.push(`${el.tagName}: ${ratio.toFixed(2)} "${text}"`);
  }
  return worst;
}
"""
