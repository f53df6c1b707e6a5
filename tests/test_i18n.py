"""Learner-facing text in English and Dutch (gql/i18n.py): the catalogue is complete for what
the code says, Accept-Language is negotiated, and Messages render in either language."""

from __future__ import annotations

import pickle
import string
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir

from gql import CourseFacts, EvidenceFacts, Message, PolicyFacts, i18n
from gql.domain.errors import DomainErrors, InvalidInput, NotFound, t
from plugins.all_required import AllRequired, AllRequiredConfig
from plugins.external_evidence import ExternalEvidence, ExternalEvidenceConfig
from plugins.mandatory_subset import MandatorySubset, MandatorySubsetConfig

ROOT = Path(__file__).resolve().parent.parent
# the calls whose first argument is a msgid: the domain's helper and the policies' Message
KEYWORDS = {"t": None, "Message": None}
NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


def msgids_in_code() -> dict[str, str]:
    """Every msgid the code uses, with where it is used first."""
    found: dict[str, str] = {}
    for package in ("gql", "plugins"):
        for filename, lineno, msgid, _, _ in extract_from_dir(
            ROOT / package, method_map=[("**.py", "python")], keywords=KEYWORDS, comment_tags=()
        ):
            assert isinstance(msgid, str), (filename, lineno, msgid)
            found.setdefault(msgid, f"{package}/{filename}:{lineno}")
    return found


def test_the_dutch_catalogue_translates_every_msgid_the_code_uses() -> None:
    used = msgids_in_code()
    assert len(used) > 100  # the extraction found the raise sites, not nothing
    catalogue = i18n.catalogue("nl")
    problems = []
    for msgid, where in used.items():
        entry = catalogue.get(msgid)
        if entry is None:
            problems.append(f"{where}: missing {msgid!r}")
        elif entry.fuzzy or not entry.string:
            problems.append(f"{where}: fuzzy or empty {msgid!r}")
        elif _placeholders(str(entry.string)) != _placeholders(msgid):
            problems.append(f"{where}: other placeholders in the translation of {msgid!r}")
    assert not problems, "\n".join(problems)


def _placeholders(text: str) -> set[str]:
    try:
        return {name for _, name, _, _ in string.Formatter().parse(text) if name}
    except ValueError:  # braces of a message without params, never formatted
        return set()


@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("nl-NL,nl;q=0.9,en;q=0.8", "nl"),
        ("nl", "nl"),
        ("NL-be", "nl"),
        ("fr", "en"),
        ("fr-FR,fr;q=0.9", "en"),
        ("en-GB,nl;q=0.5", "en"),
        ("de;q=0.9,nl;q=0.4", "nl"),
        ("nl;q=0,en", "en"),
        ("*", "en"),
        ("", "en"),
        (None, "en"),
        ("nl;q=oops", "en"),
    ],
)
def test_accept_language_is_negotiated_against_english_and_dutch(
    header: str | None, language: str
) -> None:
    assert i18n.negotiate(header) == language


def course(course_id: int, *, mandatory: bool = True, done: bool = False) -> CourseFacts:
    return CourseFacts(
        course_id=course_id,
        position=course_id,
        mandatory=mandatory,
        percent=100 if done else 0,
        completed=done,
        completed_at=NOW if done else None,
        last_activity_at=NOW if done else None,
    )


def facts(*courses: CourseFacts, evidence: tuple[EvidenceFacts, ...] = ()) -> PolicyFacts:
    return PolicyFacts(1, "INTERNAL", NOW, 1, None, courses=courses, evidence=evidence)


def both(text: str) -> tuple[str, str]:
    return i18n.render(text, "en"), i18n.render(text, "nl")


def test_mandatory_subset_explains_in_english_and_dutch() -> None:
    policy, config = MandatorySubset(), MandatorySubsetConfig()
    verdict = policy.evaluate(
        facts(course(1, done=True), course(2), course(3, mandatory=False)), config
    )
    assert isinstance(verdict.explanation, Message)
    assert both(verdict.explanation) == (
        "1 of 2 mandatory courses done",
        "1 van 2 verplichte cursussen voltooid",
    )
    unflagged = policy.evaluate(facts(course(1, mandatory=False)), config)
    assert both(unflagged.explanation) == ("0 of 1 courses done", "0 van 1 cursussen voltooid")
    empty = policy.evaluate(facts(), config)
    assert both(empty.explanation) == (
        "this certification has no courses yet",
        "deze certificering heeft nog geen cursussen",
    )


def test_all_required_explains_in_english_and_dutch() -> None:
    verdict = AllRequired().evaluate(
        facts(course(1, done=True), course(2, mandatory=False, done=True)), AllRequiredConfig()
    )
    assert both(verdict.explanation) == ("2 of 2 courses done", "2 van 2 cursussen voltooid")


def proof(status: str) -> EvidenceFacts:
    reviewed = None if status == "PENDING" else NOW
    return EvidenceFacts(1, status, NOW - timedelta(days=1), reviewed, None)


@pytest.mark.parametrize(
    ("evidence", "english", "dutch"),
    [
        ((), "no proof submitted yet", "nog geen bewijs overlegd"),
        (
            (proof("PENDING"),),
            "proof submitted, waiting for review",
            "bewijs overlegd, in afwachting van beoordeling",
        ),
        ((proof("APPROVED"),), "proof approved", "bewijs goedgekeurd"),
        (
            (proof("REJECTED"),),
            "proof rejected; submit new proof",
            "bewijs afgewezen; overleg nieuw bewijs",
        ),
    ],
)
def test_external_evidence_explains_in_english_and_dutch(
    evidence: tuple[EvidenceFacts, ...], english: str, dutch: str
) -> None:
    verdict = ExternalEvidence().evaluate(facts(evidence=evidence), ExternalEvidenceConfig())
    assert both(verdict.explanation) == (english, dutch)


def test_external_evidence_refuses_submissions_in_english_and_dutch() -> None:
    config = ExternalEvidenceConfig(require_mandatory_courses=True)
    reason = ExternalEvidence().check_submission(facts(course(1), course(2)), config)
    assert reason is not None
    assert both(reason) == (
        "complete the 2 remaining mandatory course(s) first",
        "voltooi eerst de 2 resterende verplichte cursus(sen)",
    )


def test_a_plain_string_is_shown_as_it_is_in_every_language() -> None:
    assert both("2 to go") == ("2 to go", "2 to go")
    assert i18n.load(i18n.dump("2 to go")) == "2 to go"
    # a msgid nobody translated is English in Dutch too
    assert both(Message("{n} left", {"n": 3})) == ("3 left", "3 left")


def test_a_stored_explanation_keeps_its_message_and_dates_follow_the_language() -> None:
    inner = Message("{done} of {required} courses done", {"done": 1, "required": 2})
    told = t("{explanation}; valid until {until}", explanation=inner, until=date(2027, 3, 10))
    stored = i18n.dump(told)
    assert "valid until" in stored and "{done}" in stored  # the msgid is kept, not the text
    loaded = i18n.load(stored)
    assert isinstance(loaded, Message) and loaded == told
    assert both(loaded) == (
        "1 of 2 courses done; valid until 2027-03-10",
        "1 van 2 cursussen voltooid; geldig tot 10 maart 2027",
    )
    copied = pickle.loads(pickle.dumps(told))
    assert isinstance(copied, Message) and copied.id == told.id and copied == told


def test_domain_errors_stay_english_and_render_in_dutch() -> None:
    error = InvalidInput(
        t("{argument} must be between 0 and {max_size}", argument="first", max_size=100)
    )
    assert error.message == str(error) == "first must be between 0 and 100"
    assert i18n.render(error.message, "nl") == "first moet tussen 0 en 100 liggen"
    several = DomainErrors([NotFound(t("no such user")), error])
    assert several.message == "2 error(s): no such user"
    assert i18n.render(several.message, "nl") == "2 fout(en): deze gebruiker bestaat niet"
