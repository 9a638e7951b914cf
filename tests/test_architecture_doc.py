"""`docs/architecture.md` names only modules that exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
PACKAGES = "training|governance|serving|monitoring|harmcast"
PATH = re.compile(rf"(?:{PACKAGES})/[\w/]*(?:\.py)?")
# `harmcast.*` are registry tag names (harmcast.gate ...), not modules
DOTTED = re.compile(r"(?:training|governance|serving|monitoring)(?:\.\w+)+")


def _code_spans(text: str) -> list[str]:
    return re.findall(r"`([^`\n]+)`", text)


def _missing_paths(text: str) -> list[str]:
    """Paths such as `training/link/linker.py` or `governance/desk/` that do not exist."""
    paths = [s for s in _code_spans(text) if PATH.fullmatch(s)]
    return [p for p in paths if not (ROOT / p).exists()]


def _missing_modules(text: str) -> list[str]:
    """Dotted names such as `governance.servable.check_servable` whose module does not exist."""
    missing = []
    for span in _code_spans(text):
        name = DOTTED.match(span)
        if name is None or re.fullmatch(r"[\w/]+\.(?:py|yaml|jsonl?|html|md)", span):
            continue
        parts = name.group(0).split(".")
        found = any(
            (ROOT.joinpath(*parts[:n]).with_suffix(".py")).is_file()
            or (ROOT.joinpath(*parts[:n]) / "__init__.py").is_file()
            for n in range(2, len(parts) + 1)
        )
        if not found:
            missing.append(name.group(0))
    return missing


def _missing_in_sections(text: str) -> list[str]:
    """Bare `name.py` under a "### `package/`" heading that is not in that package."""
    missing = []
    for heading, body in re.findall(r"^### `(\w+)/`[^\n]*\n(.*?)(?=^#)", text, re.M | re.S):
        for span in _code_spans(body):
            for name in re.findall(r"^\w+\.py$", span):
                if not list((ROOT / heading).rglob(name)):
                    missing.append(f"{heading}/.../{name}")
    return missing


def test_every_module_the_architecture_names_exists() -> None:
    text = DOC.read_text()
    assert _missing_paths(text) == []
    assert _missing_modules(text) == []
    assert _missing_in_sections(text) == []


def test_the_check_catches_a_module_that_is_gone() -> None:
    text = (
        "### `training/`: x\n\n- `panel.py`, `gone.py`, `training/link/old.py`,\n"
        "  `training.gone.f`\n\n# end\n"
    )
    assert _missing_paths(text) == ["training/link/old.py"]
    assert _missing_modules(text) == ["training.gone.f"]
    assert _missing_in_sections(text) == ["training/.../gone.py"]
