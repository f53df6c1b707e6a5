"""Learner-facing text in the request's language: the gettext catalogues of gql/locale (read
with Babel once per process), Accept-Language negotiation, and rendering a Message."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime
from functools import cache
from pathlib import Path

from babel.core import Locale, UnknownLocaleError, negotiate_locale
from babel.dates import format_date
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from gql.policy import Message

DOMAIN = "certgraph"
SOURCE_LANGUAGE = "en"  # the msgids are the English text: English needs no catalogue
LANGUAGES = ("en", "nl")
LOCALE_DIR = Path(__file__).parent / "locale"
# English dates stay ISO (what the API has always said); other languages get their long form
_DATE_FORMATS = {SOURCE_LANGUAGE: "yyyy-MM-dd"}


def t(msgid: str, **params: object) -> Message:
    """Text for people, rendered in the request's language when it is answered: `msgid` is
    the English text with `{name}` placeholders (tests/test_i18n.py extracts the calls).
    The domain's errors, the HTTP layer and file intake all use it."""
    return Message(msgid, params)


def catalogue_path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def catalogue(language: str) -> Catalog:
    """The language's catalogue, parsed once per process."""
    with catalogue_path(language).open("rb") as po:
        return read_po(po, locale=language, domain=DOMAIN)


@cache
def _translations(language: str) -> Mapping[str, str]:
    """msgid -> translation, leaving out fuzzy and empty entries (English is used for them)."""
    if language == SOURCE_LANGUAGE:
        return {}
    return {
        str(m.id): str(m.string)
        for m in catalogue(language)
        if m.id and isinstance(m.id, str) and isinstance(m.string, str) and m.string
        if not m.fuzzy
    }


def negotiate(accept_language: str | None) -> str:
    """The available language the client prefers (RFC 9110 quality values), else English."""
    if not accept_language:
        return SOURCE_LANGUAGE
    wanted: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept_language.split(",")):
        tag, _, rest = part.strip().partition(";")
        quality = 1.0
        for parameter in rest.split(";"):
            key, _, value = parameter.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag and tag != "*" and quality > 0:
            wanted.append((-quality, index, tag.strip()))
    preferred = [tag.replace("-", "_") for _, _, tag in sorted(wanted)]
    chosen = negotiate_locale(preferred, list(LANGUAGES), sep="_")
    if chosen is None:
        return SOURCE_LANGUAGE
    try:
        return Locale.parse(chosen).language
    except (ValueError, UnknownLocaleError):
        return SOURCE_LANGUAGE


def render(text: object, language: str) -> str:
    """`text` in the language: a Message translated (English when its msgid has no
    translation), its params rendered alike; a plain str as it is."""
    if isinstance(text, Message):
        if language == SOURCE_LANGUAGE:
            return str(text)
        template = _translations(language).get(text.id, text.id)
        if not text.params:
            return template
        # only text and dates change with the language; other values format as in English
        params = {
            key: render(value, language) if isinstance(value, str | date) else value
            for key, value in text.params.items()
        }
        return template.format(**params)
    if isinstance(text, date) and not isinstance(text, datetime):
        return format_date(text, _DATE_FORMATS.get(language, "long"), locale=language)
    return str(text)


def dump(text: str) -> str:
    """`text` for a text column: a Message as JSON (its msgid and params), a str as it is."""
    if not isinstance(text, Message):
        return text
    return json.dumps({"id": text.id, "params": _plain(text.params)}, ensure_ascii=False)


def load(stored: str) -> str:
    """What `dump` wrote: a Message again, or the plain str."""
    if not stored.startswith('{"id": '):
        return stored
    try:
        data = json.loads(stored)
    except ValueError:
        return stored
    if not isinstance(data, dict) or set(data) != {"id", "params"}:
        return stored
    return _message(data)


def _plain(params: Mapping[str, object]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in params.items():
        if isinstance(value, Message):
            out[key] = {"id": value.id, "params": _plain(value.params)}
        elif isinstance(value, date) and not isinstance(value, datetime):
            out[key] = {"date": value.isoformat()}
        elif isinstance(value, int | str):
            out[key] = value
        else:
            out[key] = str(value)
    return out


def _message(data: Mapping[str, object]) -> Message:
    params = data.get("params")
    values: dict[str, object] = {}
    if isinstance(params, dict):
        for key, value in params.items():
            if isinstance(value, dict) and "id" in value:
                values[key] = _message(value)
            elif isinstance(value, dict) and isinstance(value.get("date"), str):
                values[key] = date.fromisoformat(value["date"])
            else:
                values[key] = value
    return Message(str(data.get("id", "")), values)
