"""Write a card (JSON, Markdown, self-contained HTML) and publish approved ones.

``card.json`` is the record: its bytes are hashed into the model version tag
``harmcast.card_sha256`` when the card is published, and a published card is
never overwritten. ``card.html`` embeds its CSS and plots (base64 PNG) so the
board can read it with nothing but a browser and no network.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from governance.cards.builder import CardInputs, CardReview, build_card, card_dir, collect_plots
from governance.cards.schema import ModelCard
from governance.cards.summary import plain_summary
from governance.cards.wording import (
    ablation_sentences,
    baseline_words,
    check_words,
    grouping_words,
    headline_words,
    metric_words,
)
from governance.evidence import sha256_file
from governance.keys import root_of_log
from governance.ledger import status_of
from governance.policy import Policy
from governance.provenance import Governance
from governance.registry import SYSTEM_ACTOR, TAG_CARD, client_for, record_action
from governance.servable import check_registered, check_servable
from governance.transparency import write_transparency
from training.errors import HarmcastError, NotApproved
from training.features import describe_feature

__all__ = [
    "CardPublished",
    "PublishResult",
    "ALREADY_PUBLISHED",
    "card_json_bytes",
    "render_markdown",
    "render_html",
    "write_card",
    "publish_card",
    "export_json_schema",
    "JSON_SCHEMA_PATH",
]

ALREADY_PUBLISHED = "{path}: a published card is never overwritten"
DRAFT_CHANGED = (
    "{path}: the draft card changed after the members reviewed it (they signed {reviewed}); "
    "the card is not published"
)
MIXED_DRAFTS = (
    "{model} version {version}: the approving members reviewed different drafts ({cards}); "
    "each must approve the same card"
)
JSON_SCHEMA_PATH = Path(__file__).with_name("card.schema.json")
_TEMPLATES = Path(__file__).with_name("templates")


class CardPublished(HarmcastError, FileExistsError):
    """A published card exists for this version and must not be replaced."""


@dataclass(frozen=True)
class PublishResult:
    """What ``publish_card`` wrote and whether the card is published."""

    card: ModelCard
    directory: Path
    files: list[Path]
    sha256: str
    published: bool


def _num(value: object) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _env(*, html: bool) -> Environment:
    env = Environment(
        loader=FileSystemLoader(_TEMPLATES),
        autoescape=select_autoescape(["html"]) if html else False,
        undefined=StrictUndefined,
        trim_blocks=False,
        keep_trailing_newline=True,
    )
    env.filters["num"] = _num
    env.filters["pct"] = _pct
    env.filters["headline_words"] = headline_words
    env.filters["check_words"] = check_words
    env.filters["metric_words"] = metric_words
    env.filters["baseline_words"] = baseline_words
    env.filters["grouping_words"] = grouping_words
    env.filters["feature_words"] = describe_feature
    env.filters["ablation_sentences"] = ablation_sentences
    return env


def card_json_bytes(card: ModelCard) -> bytes:
    """Serialise a card exactly as ``card.json`` stores it (the bytes that are hashed)."""
    return (json.dumps(card.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n").encode()


def render_markdown(card: ModelCard) -> str:
    """Render ``card.md``."""
    return (
        _env(html=False).get_template("card.md.j2").render(card=card, summary=plain_summary(card))
    )


def render_html(card: ModelCard, images: dict[str, bytes]) -> str:
    """Render the self-contained ``card.html`` (``images``: plot file -> PNG bytes)."""
    encoded = {name: base64.b64encode(data).decode("ascii") for name, data in images.items()}
    return (
        _env(html=True)
        .get_template("card.html.j2")
        .render(card=card, images=encoded, summary=plain_summary(card))
    )


def _is_published(path: Path) -> bool:
    if not path.is_file():
        return False
    try:
        return json.loads(path.read_text()).get("status") == "published"
    except json.JSONDecodeError:
        return True  # an unreadable card in place is not ours to replace


def write_card(card: ModelCard, out_dir: Path, *, plots: dict[str, Path]) -> list[Path]:
    """Write ``card.json``, ``card.md``, ``card.html`` and ``plots/`` into ``out_dir``.

    Raises
    ------
    CardPublished
        When ``out_dir`` already holds a published card.
    """
    out_dir = Path(out_dir)
    if _is_published(out_dir / "card.json"):
        raise CardPublished(ALREADY_PUBLISHED.format(path=out_dir / "card.json"))
    out_dir.mkdir(parents=True, exist_ok=True)
    used = [p.file for s in (card.evaluation, card.fairness, card.explanations) for p in s.plots]
    images = {name: plots[name].read_bytes() for name in used}
    written = []
    for name, data in images.items():
        (out_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (out_dir / name).write_bytes(data)
        written.append(out_dir / name)
    (out_dir / "card.md").write_text(render_markdown(card), encoding="utf-8")
    (out_dir / "card.html").write_text(render_html(card, images), encoding="utf-8")
    (out_dir / "card.json").write_bytes(card_json_bytes(card))
    return [*written, out_dir / "card.md", out_dir / "card.html", out_dir / "card.json"]


def _review(gov: Governance, model: str, version: str):
    """Return the card's review and the reviewed draft's hash (None until approved)."""
    evidence, _, policy, _, decisions = check_registered(gov, model, version)
    rollback_quorum = 1 if policy.board.emergency_rollback else policy.board.quorum
    status = status_of(decisions, policy.board.quorum, rollback_quorum)
    reviewed = None
    if status == "approved":
        approved = check_servable(gov, model, version, require_card=False)
        signed = {d.card_sha256 for d in decisions if d.decision == "approve"
                  and d.member in approved.approvers}  # fmt: skip
        if len(signed) != 1:
            raise NotApproved(
                MIXED_DRAFTS.format(
                    model=model, version=version, cards=", ".join(map(str, sorted(signed)))
                )
            )
        reviewed = signed.pop()
    review = CardReview(
        status=status,
        decisions=decisions,
        model_sha256=evidence.model_sha256,
        gate_report_sha256=evidence.gate_report_sha256,
        policy_sha256=evidence.policy_sha256,
    )
    return review, evidence, reviewed, policy


def publish_card(
    inputs: CardInputs,
    *,
    model_name: str,
    version: str | int,
    policy: Policy,
    tracking_uri: str,
    gov: Governance | None = None,
) -> PublishResult:
    """Build and write the card (and transparency record) of one version.

    The version must be harmcast's own, with its gate report (read from its
    run, never from disk) and a verifying audit log (``check_registered``). A
    pending version gets a ``draft`` card, rewritten on each call until a
    member signs an approval of it; from then the draft is kept, because the
    approvals name its hash. A version approved by a quorum of signatures
    gets a ``published`` card: its SHA-256 goes to the version tag
    ``harmcast.card_sha256`` and to a publish entry signed by harmcast, with
    the hash of the draft the members reviewed; the result must then pass
    ``check_servable``.

    Raises
    ------
    NotApproved
        When the version's evidence does not hold, or the approving members
        reviewed a draft other than the one on disk.
    CardPublished
        When the version's card was already published.
    """
    version = str(version)
    gov = gov or Governance.for_root(
        root_of_log(inputs.audit_log), tracking_uri=tracking_uri, audit_log=inputs.audit_log,
        cards_root=inputs.cards_root,
    )  # fmt: skip
    out_dir = card_dir(inputs.cards_root, model_name, version)
    if _is_published(out_dir / "card.json"):
        raise CardPublished(ALREADY_PUBLISHED.format(path=out_dir / "card.json"))
    review, evidence, reviewed, version_policy = _review(gov, model_name, version)
    draft = out_dir / "card.json"
    if (
        reviewed is None
        and draft.is_file()
        and any(d.decision == "approve" for d in review.decisions)
    ):
        sha = sha256_file(draft)
        card = ModelCard.model_validate_json(draft.read_bytes())
        return PublishResult(card=card, directory=out_dir, files=[draft], sha256=sha,
                             published=False)  # fmt: skip
    if reviewed is not None and (not draft.is_file() or sha256_file(draft) != reviewed):
        raise NotApproved(DRAFT_CHANGED.format(path=draft, reviewed=reviewed))
    with tempfile.TemporaryDirectory() as tmp:
        gate = Path(tmp) / "gate_report.json"
        gate.write_text(json.dumps(evidence.gate_report))
        card = build_card(
            replace(inputs, gate_report=gate), model_name=model_name, version=version,
            policy=version_policy, tracking_uri=tracking_uri, review=review,
        )  # fmt: skip
    plots = {name: src for name, (src, _) in collect_plots(inputs).items()}
    staging = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    files = write_card(card, staging, plots=plots)
    files += write_transparency(card, version_policy, staging)
    shutil.rmtree(out_dir, ignore_errors=True)
    staging.rename(out_dir)
    files = [out_dir / f.relative_to(staging) for f in files]
    sha = hashlib.sha256((out_dir / "card.json").read_bytes()).hexdigest()
    published = card.status == "published"
    if published:
        client = client_for(tracking_uri)
        client.set_model_version_tag(model_name, version, TAG_CARD, sha)
        record_action(
            client, inputs.audit_log, actor=SYSTEM_ACTOR, action="publish", model=model_name,
            version=version,
            details={"card_sha256": sha, "reviewed_card_sha256": reviewed, "path": str(out_dir)},
        )  # fmt: skip
        check_servable(gov, model_name, version)
    return PublishResult(card=card, directory=out_dir, files=files, sha256=sha, published=published)


def export_json_schema(path: Path = JSON_SCHEMA_PATH) -> Path:
    """Write the JSON Schema of ``ModelCard`` (``card.schema.json``)."""
    schema = ModelCard.model_json_schema()
    Path(path).write_text(json.dumps(schema, indent=2) + "\n")
    return Path(path)
