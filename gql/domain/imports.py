"""CSV import of course progress (admins): streamed, validated row by row, all rows or none;
each row is an admin's recordCourseProgress for that learner and course, under the rules of
gql.domain.rules (the format and the two passes: docs/files.md, "CSV progress import"). It
emits the events that recording the rows one by one would: a progress_recorded per row
written, a certification_completed per award, in the import's transaction."""

from __future__ import annotations

import asyncio
import csv
from collections import defaultdict
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from typing import NamedTuple, TextIO, cast

from gql import clock
from gql.domain.access import Actor, require_admin
from gql.domain.evaluation import evaluate_enrollments, lock_learners
from gql.domain.rules import awards_by_enrollment, open_cycle_starts, progress_after
from gql.domain.unit import Unit, unit_of_work
from gql.domain.uploads import received_upload
from gql.events import ProgressRecorded
from gql.files import BlobStore, ByteSource, Purpose, StagedUpload
from gql.plugins import PluginHost
from gql.store import reads, writes
from gql.store.db import retrying
from gql.store.models import CertificationCourse, Course, User
from gql.store.records import EnrollmentRecord, ProgressRecord
from gql.vocabulary import ProgressStatus

# Reads a row's course_id: the pk, or None when the text names no course.
CourseIdDecoder = Callable[[str], int | None]

HEADER = ("learner_email", "course_id", "percent", "completed_at")
READ_BATCH_ROWS = 1000
EVALUATE_BATCH = 500
WRITE_BATCH = 500
# Learners per OR-group when loading progress rows by (learner, course) pair: keeps the SQL
# expression shallow (SQLite limits expression depth).
PAIR_QUERY_LEARNERS = 100
MAX_REPORTED_ERRORS = 100


class RowError(NamedTuple):
    line: int  # the header is line 1
    message: str


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What an import did. `imported` counts the rows written (with dry_run: that would be);
    0 whenever a row has an error. `row_errors` holds the first MAX_REPORTED_ERRORS errors in
    line order, `error_count` all of them."""

    imported: int
    row_errors: list[RowError] = field(default_factory=list)
    error_count: int = 0
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class ProgressReport:
    line: int
    learner_id: int
    course_id: int
    percent: int | None
    completed_at: datetime | None


@dataclass(frozen=True, slots=True)
class _ParsedRow:
    """A row's fields; with `problems` (column, message) it is refused, its email and
    course still looked up so that their problems are reported with the others."""

    line: int
    email: str
    course_id: int | None
    percent: int | None
    completed_at: datetime | None
    problems: tuple[tuple[int, str], ...] = ()


class _ErrorLog:
    def __init__(self) -> None:
        self.count = 0
        self.first: list[RowError] = []

    def add(self, line: int, message: str) -> None:
        self.count += 1
        if len(self.first) < MAX_REPORTED_ERRORS:
            self.first.append(RowError(line, message))


class _RowsRejected(Exception):
    def __init__(self, errors: _ErrorLog) -> None:
        super().__init__(f"{errors.count} row(s) with errors")
        self.errors = errors


# -- reading ------------------------------------------------------------------------------


class _CsvRecords:
    """CSV records with the line each starts on. Blocking file reads: call through a thread."""

    def __init__(self, handle: TextIO) -> None:
        self._handle = handle
        self._reader = csv.reader(handle, strict=True)
        self._last_line = 0
        self.broken: RowError | None = None

    @classmethod
    def open(cls, path: str) -> _CsvRecords:
        # utf-8-sig: spreadsheets often start CSV files with a byte-order mark
        return cls(open(path, encoding="utf-8-sig", newline=""))

    def read(self, count: int) -> list[tuple[int, list[str]]]:
        records: list[tuple[int, list[str]]] = []
        while len(records) < count and self.broken is None:
            line = self._last_line + 1
            try:
                fields = next(self._reader)
            except StopIteration:
                break
            except csv.Error as exc:
                # The parser cannot find the next record's start after this: stop here.
                self.broken = RowError(line, f"malformed CSV: {exc}")
                break
            self._last_line = self._reader.line_num
            if fields:  # a blank line
                records.append((line, fields))
        return records

    def close(self) -> None:
        self._handle.close()


def _show(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "…")


def plain_course_id(text: str) -> int | None:
    """A course's number, for callers that take no global IDs."""
    if not (text.isascii() and text.isdigit()):
        return None
    pk = int(text)
    return pk if 0 < pk < 2**31 else None


def _parse_time(text: str, now: datetime) -> datetime | str:
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            value = datetime(day.year, day.month, day.day, tzinfo=UTC)
        else:
            value = datetime.fromisoformat(text)
    except ValueError:
        return (
            f"completed_at {_show(text)} is not an ISO 8601 date-time "
            "(e.g. 2026-03-01T09:00:00Z or 2026-03-01)"
        )
    if value.tzinfo is None:
        return f"completed_at {_show(text)} needs a UTC offset (e.g. 2026-03-01T09:00:00Z)"
    try:
        value = value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        return f"completed_at {_show(text)} is outside the calendar"
    if value > now:
        return "completed_at must not be in the future"
    return value


def _parse_row(
    line: int, fields: list[str], now: datetime, course_id_of: CourseIdDecoder
) -> _ParsedRow | str:
    """The row's fields and every problem each has (docs/files.md: a row's problems are
    reported together); a row without the four fields is only that problem."""
    if len(fields) != len(HEADER):
        return f"expected {len(HEADER)} fields ({','.join(HEADER)}), found {len(fields)}"
    email, course_text, percent_text, completed_text = (f.strip() for f in fields)
    problems: list[tuple[int, str]] = []
    if not email:
        problems.append((0, "learner_email is empty"))
    course_id = course_id_of(course_text)
    if course_id is None:
        problems.append((1, f"course_id {_show(course_text)} is not a Course ID"))
    percent: int | None = None
    if percent_text:
        if not (percent_text.isascii() and percent_text.isdigit()) or int(percent_text) > 100:
            problems.append(
                (2, f"percent {_show(percent_text)} is not a whole number from 0 to 100")
            )
        else:
            percent = int(percent_text)
    completed_at: datetime | None = None
    if completed_text:
        parsed = _parse_time(completed_text, now)
        if isinstance(parsed, str):
            problems.append((3, parsed))
        else:
            completed_at = parsed
    if not percent_text and not completed_text:
        problems.append((2, "give percent, completed_at or both"))
    if completed_at is not None and percent not in (None, 100):
        problems.append(
            (4, "a row with completed_at records a completion: leave percent empty or make it 100")
        )
    return _ParsedRow(line, email.lower(), course_id, percent, completed_at, tuple(problems))


async def _resolve(parsed: list[_ParsedRow], errors: list[RowError]) -> list[ProgressReport]:
    """Turn emails and course IDs into rows' keys, a fixed number of queries per batch."""
    if not parsed:
        return []
    emails = sorted({p.email for p in parsed if p.email})
    learners: dict[str, int] = dict(await User.filter(email__in=emails).values_list("email", "id"))
    wanted = sorted({p.course_id for p in parsed if p.course_id is not None})
    courses = set(cast(list[int], await Course.filter(id__in=wanted).values_list("id", flat=True)))
    rows: list[ProgressReport] = []
    for p in parsed:
        problems = list(p.problems)
        learner_id = learners.get(p.email)
        if p.email and learner_id is None:
            problems.append((0, f"no user with email {_show(p.email)}"))
        if p.course_id is not None and p.course_id not in courses:
            problems.append((1, f"no course with ID {p.course_id}"))
        if problems:
            # every problem of the row, in column order, in one message
            errors.append(RowError(p.line, "; ".join(m for _, m in sorted(problems))))
        elif learner_id is not None and p.course_id is not None:
            rows.append(ProgressReport(p.line, learner_id, p.course_id, p.percent, p.completed_at))
    return rows


async def validated_batches(
    path: str, errors: _ErrorLog, now: datetime, course_id_of: CourseIdDecoder
) -> AsyncGenerator[list[ProgressReport], None]:
    """The file's valid rows, a batch at a time; every invalid row goes to `errors`."""
    records = await asyncio.to_thread(_CsvRecords.open, path)
    try:
        first = await asyncio.to_thread(records.read, 1)
        if not first:
            if records.broken is not None:
                errors.add(*records.broken)
            else:
                errors.add(1, f"the file is empty: the first line must be {','.join(HEADER)}")
            return
        line, header = first[0]
        if tuple(name.strip() for name in header) != HEADER:
            errors.add(
                line,
                f"the header must be exactly {','.join(HEADER)}; found {_show(','.join(header))}",
            )
            return
        while True:
            batch = await asyncio.to_thread(records.read, READ_BATCH_ROWS)
            if not batch:
                break
            parsed: list[_ParsedRow] = []
            found: list[RowError] = []
            for line, fields in batch:
                result = _parse_row(line, fields, now, course_id_of)
                if isinstance(result, str):
                    found.append(RowError(line, result))
                else:
                    parsed.append(result)
            rows = await _resolve(parsed, found)
            for error in sorted(found):
                errors.add(*error)
            yield rows
        if records.broken is not None:
            errors.add(*records.broken)
    finally:
        await asyncio.to_thread(records.close)


# -- the progress rules, without the database ---------------------------------------------


# -- writing ------------------------------------------------------------------------------


Pair = tuple[int, int]  # (learner_id, course_id)


async def _progress_rows(pairs: set[Pair]) -> dict[Pair, ProgressRecord]:
    """The existing progress rows of exactly these pairs (not the learners x courses product)."""
    by_learner: dict[int, list[int]] = defaultdict(list)
    for learner_id, course_id in sorted(pairs):
        by_learner[learner_id].append(course_id)
    return await reads.progress_of_pairs(dict(by_learner), PAIR_QUERY_LEARNERS)


@dataclass(slots=True)
class _EnrollmentScope:
    """Which enrollments each pair counts for, and the open recertification cycles' starts."""

    enrollments: dict[Pair, list[int]] = field(default_factory=dict)
    cycle_starts: dict[Pair, list[datetime]] = field(default_factory=dict)


async def _enrollment_scope(pairs: set[Pair], now: datetime) -> _EnrollmentScope:
    scope = _EnrollmentScope()
    course_ids = sorted({course_id for _, course_id in pairs})
    certs_of_course: dict[int, set[int]] = defaultdict(set)
    for cert_id, course_id in await CertificationCourse.filter(
        course_id__in=course_ids
    ).values_list("certification_id", "course_id"):
        certs_of_course[course_id].add(cert_id)
    if not certs_of_course:
        return scope
    learner_ids = sorted({learner_id for learner_id, _ in pairs})
    cert_ids = sorted(set().union(*certs_of_course.values()))
    enrollments = await reads.enrollments(learner_id__in=learner_ids, certification_id__in=cert_ids)
    if not enrollments:
        return scope
    awards = awards_by_enrollment(await reads.awards([e.id for e in enrollments]))
    of_learner: dict[int, list[EnrollmentRecord]] = defaultdict(list)
    for e in enrollments:
        of_learner[e.learner_id].append(e)
    for pair in pairs:
        learner_id, course_id = pair
        counted = [
            e
            for e in of_learner.get(learner_id, [])
            if e.certification_id in certs_of_course[course_id]
        ]
        scope.enrollments[pair] = [e.id for e in counted]
        scope.cycle_starts[pair] = open_cycle_starts(
            ((e.certification, awards.get(e.id, [])) for e in counted), now
        )
    return scope


async def _apply_batch(rows: list[ProgressReport], unit: Unit) -> set[int]:
    """Write one batch of rows in bulk; return the IDs of the enrollments they count for."""
    if not rows:
        return set()
    await lock_learners(sorted({r.learner_id for r in rows}))
    pairs = {(r.learner_id, r.course_id) for r in rows}
    existing = await _progress_rows(pairs)
    scope = await _enrollment_scope(pairs, unit.now)
    created: dict[Pair, ProgressRecord] = {}
    changed: dict[Pair, ProgressRecord] = {}
    for r in rows:
        pair = (r.learner_id, r.course_id)
        current = created.get(pair) or existing.get(pair)
        after = progress_after(
            current,
            learner_id=r.learner_id,
            course_id=r.course_id,
            percent=r.percent,
            completing=r.completed_at is not None or r.percent == 100,
            when=r.completed_at or unit.now,
            cycle_starts=scope.cycle_starts.get(pair, []),
            now=unit.now,
        )
        if pair in created or current is None:
            created[pair] = after
        else:
            changed[pair] = after
        # the row as this report left it, as recordCourseProgress reports one report
        unit.emit(
            ProgressRecorded,
            learner_id=r.learner_id,
            course=r.course_id,
            percent=after.percent,
            completed=after.status == ProgressStatus.COMPLETED,
            completed_at=after.completed_at,
        )
    await writes.write_progress(list(created.values()), list(changed.values()), WRITE_BATCH)
    return {e for pair in pairs for e in scope.enrollments.get(pair, [])}


async def _write_events(unit: Unit) -> int:
    """Write the events queued so far to the outbox (still inside the import's transaction),
    so memory holds one batch's events, not the file's; how many."""
    written = await unit.write_events()
    # The names the unit read for them are read again per batch rather than kept for every
    # learner of a large file.
    unit.people.clear()
    unit.courses.clear()
    unit.certifications.clear()
    return written


async def _reevaluate(enrollment_ids: list[int], unit: Unit) -> int:
    """Re-evaluate these enrollments a batch at a time; how many events were written."""
    written = 0
    for start in range(0, len(enrollment_ids), EVALUATE_BATCH):
        chunk = enrollment_ids[start : start + EVALUATE_BATCH]
        await evaluate_enrollments(await reads.enrollments(id__in=chunk), unit)
        written += await _write_events(unit)
    return written


async def _write(
    actor: Actor,
    staged: StagedUpload,
    course_id_of: CourseIdDecoder,
    plugins: PluginHost | None,
    time_zone: tzinfo,
) -> int:
    written = 0
    async with unit_of_work(actor, plugins, time_zone=time_zone) as unit:
        errors = _ErrorLog()
        imported = 0
        learners: set[int] = set()
        affected: set[int] = set()
        async with aclosing(
            validated_batches(str(staged.temp_path), errors, unit.now, course_id_of)
        ) as batches:
            async for rows in batches:
                if errors.count:
                    break
                affected |= await _apply_batch(rows, unit)
                written += await _write_events(unit)
                learners.update(r.learner_id for r in rows)
                imported += len(rows)
        if errors.count:
            raise _RowsRejected(errors)  # rolls back every batch (and event) written so far
        written += await _reevaluate(sorted(affected), unit)
        await unit.audit(
            "importCourseProgress",
            "CourseProgress",
            None,
            after={
                "rows": imported,
                "learners": len(learners),
                "enrollmentsReevaluated": len(affected),
                "filename": staged.file.filename,
                "sha256": staged.file.sha256,
            },
        )
    if written and unit.plugins is not None:
        # committed: wake the local dispatcher (unit_of_work does so only for the events
        # still queued when the body ended, and these were written batch by batch)
        unit.plugins.events_written()
    return imported


async def import_course_progress(
    actor: Actor,
    upload: ByteSource,
    *,
    blobs: BlobStore,
    dry_run: bool = False,
    filename: str | None = None,
    declared_type: str | None = None,
    course_id_of: CourseIdDecoder = plain_course_id,
    plugins: PluginHost | None = None,
    time_zone: tzinfo = UTC,
) -> ImportResult:
    """Import course progress from CSV (admins); all rows or none, nothing at all on dry_run.

    Row problems come back in `ImportResult.row_errors` (line, message); problems with the
    file itself raise like any upload (FILE_TOO_LARGE, UNSUPPORTED_FILE_TYPE, ...).
    """
    await require_admin(actor, "importCourseProgress", "CourseProgress")
    async with received_upload(
        blobs,
        upload,
        Purpose.IMPORT,
        filename=filename,
        declared_type=declared_type,
        plugins=plugins,
        uploader_id=actor.user_id,
    ) as staged:
        errors = _ErrorLog()
        valid = 0
        async with aclosing(
            validated_batches(str(staged.temp_path), errors, clock.now(), course_id_of)
        ) as batches:
            async for rows in batches:
                valid += len(rows)
        if errors.count:
            return ImportResult(0, errors.first, errors.count, dry_run)
        if dry_run:
            return ImportResult(valid, [], 0, True)
        try:
            imported = await retrying(
                lambda: _write(actor, staged, course_id_of, plugins, time_zone)
            )
        except _RowsRejected as rejected:
            return ImportResult(0, rejected.errors.first, rejected.errors.count, False)
        return ImportResult(imported, [], 0, False)
