"""Award.earned_on / expires_on (the calendar days beside the instants) and startedAt for every
enrollment past ENROLLED. Existing awards get the UTC day of awarded_at / expires_at: the
organisation's time zone and the learner's stated day were not kept, so that is all they say.
The columns stay nullable: a release before this one, still serving during a rolling upgrade,
writes awards without them (the store reads such a row's days from its instants)."""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops

# Enrollments past ENROLLED: a stored verdict beyond it, or an award.
_PAST_ENROLLED = (
    "enrollment.started_at IS NULL"
    " AND (enrollment.verdict_status <> 'ENROLLED' OR enrollment.last_award_cycle IS NOT NULL)"
)
# Each enrollment's known activity: progress on its certification's courses, its proof, its
# awards (one expression per source; each NULL when there is none).
_ACTIVITY = (
    "(SELECT MIN(p.started_at) FROM course_progress p JOIN certification_course c"
    " ON c.course_id = p.course_id WHERE c.certification_id = enrollment.certification_id"
    " AND p.learner_id = enrollment.learner_id)",
    "(SELECT MIN(p.completed_at) FROM course_progress p JOIN certification_course c"
    " ON c.course_id = p.course_id WHERE c.certification_id = enrollment.certification_id"
    " AND p.learner_id = enrollment.learner_id)",
    "(SELECT MIN(v.submitted_at) FROM evidence v WHERE v.enrollment_id = enrollment.id)",
    "(SELECT MIN(a.awarded_at) FROM award a WHERE a.enrollment_id = enrollment.id)",
)


def _statements(dialect: str) -> list[str]:
    if dialect == "sqlite":
        # Tortoise keeps datetimes as UTC text there (`2026-11-20 03:00:00+00:00`): date()
        # reads it; '~' sorts after every such text, standing for "none" in min().
        earliest = "min(" + ", ".join(f"coalesce({a}, '~')" for a in _ACTIVITY) + ")"
        return [
            "UPDATE award SET earned_on = date(awarded_at), expires_on = date(expires_at)",
            f"UPDATE enrollment SET started_at = CASE WHEN {earliest} = '~' THEN enrolled_at"
            f" ELSE max(enrolled_at, {earliest}) END WHERE {_PAST_ENROLLED}",
        ]
    # LEAST and GREATEST skip NULLs
    return [
        "UPDATE award SET earned_on = (awarded_at AT TIME ZONE 'UTC')::date,"
        " expires_on = (expires_at AT TIME ZONE 'UTC')::date",
        f"UPDATE enrollment SET started_at = GREATEST(enrolled_at, LEAST({', '.join(_ACTIVITY)}))"
        f" WHERE {_PAST_ENROLLED}",
    ]


async def _run(schema_editor: object, statements: list[str]) -> None:
    if getattr(schema_editor, "collect_sql", False):  # sqlmigrate / a dry run: show them
        schema_editor.collected_sql.extend(statements)  # type: ignore[attr-defined]
        return
    for statement in statements:
        await schema_editor.client.execute_script(statement)  # type: ignore[attr-defined]


def _dialect(schema_editor: object) -> str:
    return str(schema_editor.client.capabilities.dialect)  # type: ignore[attr-defined]


async def _backfill(apps: object, schema_editor: object) -> None:
    await _run(schema_editor, _statements(_dialect(schema_editor)))


class Migration(migrations.Migration):
    dependencies = [("models", "0005_reminder_indexes")]

    initial = False

    operations = [
        ops.AddField(
            model_name="Award",
            name="earned_on",
            field=fields.DateField(null=True),
        ),
        ops.AddField(
            model_name="Award",
            name="expires_on",
            field=fields.DateField(null=True),
        ),
        ops.RunPython(_backfill, ops.RunPython.noop),
    ]
