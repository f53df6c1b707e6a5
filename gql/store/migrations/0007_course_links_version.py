"""course_links_version: a certification's course links as of a version, kept by the database.

Triggers give a certification a new version, a random number, whenever one of its
certification_course rows is inserted, updated or deleted, or a course it links changes a
column the links carry (name, description, duration, publication, retirement); a new
certification gets its first. Existing certifications get theirs here. A process may keep the
links it read while their version holds (gql.store.course_links); because the database writes
the version, every writer keeps it true, whatever its release.

The table has no foreign key: deleting a certification deletes its links, whose trigger then
writes the row of a certification that is going; such a row is never read.
"""

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops

# The course columns a CourseLinkRecord carries (gql.store.records.CourseRecord).
_COURSE_COLUMNS = ("name", "description", "duration_minutes", "published_at", "retired_at")


def trigger_statements(dialect: str) -> list[str]:
    """The triggers and the versions of the certifications already there (tests/conftest.py
    runs them too, on a schema it makes with generate_schemas)."""
    if dialect == "sqlite":
        # random(): a 64-bit integer from a generator SQLite seeds from the OS
        upsert = (
            "INSERT INTO course_links_version (certification_id, version) VALUES ({}, random())"
            " ON CONFLICT (certification_id) DO UPDATE SET version = excluded.version;"
        )
        changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in _COURSE_COLUMNS)
        return [
            "CREATE TRIGGER certification_links_version AFTER INSERT ON certification"
            f" BEGIN {upsert.format('NEW.id')} END",
            "CREATE TRIGGER course_links_inserted AFTER INSERT ON certification_course"
            f" BEGIN {upsert.format('NEW.certification_id')} END",
            "CREATE TRIGGER course_links_updated AFTER UPDATE ON certification_course BEGIN"
            f" {upsert.format('OLD.certification_id')} {upsert.format('NEW.certification_id')}"
            " END",
            "CREATE TRIGGER course_links_deleted AFTER DELETE ON certification_course"
            f" BEGIN {upsert.format('OLD.certification_id')} END",
            f"CREATE TRIGGER course_of_links_updated AFTER UPDATE ON course WHEN {changed} BEGIN"
            " UPDATE course_links_version SET version = random() WHERE certification_id IN"
            " (SELECT certification_id FROM certification_course WHERE course_id = NEW.id); END",
            "INSERT INTO course_links_version (certification_id, version)"
            " SELECT id, random() FROM certification WHERE true"
            " ON CONFLICT (certification_id) DO NOTHING",
        ]
    # random() is a double: 53 random bits, scaled into a bigint
    version = "(random() * 9007199254740991)::bigint"
    upsert = (
        "INSERT INTO course_links_version (certification_id, version) VALUES ({}, "
        + version
        + ") ON CONFLICT (certification_id) DO UPDATE SET version = EXCLUDED.version;"
    )
    changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in _COURSE_COLUMNS)
    return [
        "CREATE FUNCTION certification_links_version() RETURNS trigger LANGUAGE plpgsql AS $$"
        f" BEGIN {upsert.format('NEW.id')} RETURN NULL; END $$",
        "CREATE TRIGGER certification_links_version AFTER INSERT ON certification"
        " FOR EACH ROW EXECUTE FUNCTION certification_links_version()",
        "CREATE FUNCTION course_links_changed() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        f" IF TG_OP <> 'INSERT' THEN {upsert.format('OLD.certification_id')} END IF;"
        f" IF TG_OP <> 'DELETE' THEN {upsert.format('NEW.certification_id')} END IF;"
        " RETURN NULL; END $$",
        "CREATE TRIGGER course_links_changed AFTER INSERT OR UPDATE OR DELETE"
        " ON certification_course FOR EACH ROW EXECUTE FUNCTION course_links_changed()",
        # the rows locked in certification order first: two course changes that share
        # certifications then wait for each other rather than deadlock
        "CREATE FUNCTION course_of_links_updated() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        " PERFORM 1 FROM course_links_version WHERE certification_id IN"
        " (SELECT certification_id FROM certification_course WHERE course_id = NEW.id)"
        " ORDER BY certification_id FOR UPDATE;"
        f" UPDATE course_links_version SET version = {version} WHERE certification_id IN"
        " (SELECT certification_id FROM certification_course WHERE course_id = NEW.id);"
        " RETURN NULL; END $$",
        "CREATE TRIGGER course_of_links_updated AFTER UPDATE ON course FOR EACH ROW"
        f" WHEN ({changed}) EXECUTE FUNCTION course_of_links_updated()",
        f"INSERT INTO course_links_version (certification_id, version) SELECT id, {version}"
        " FROM certification ON CONFLICT (certification_id) DO NOTHING",
    ]


def _dropping(dialect: str) -> list[str]:
    triggers = {
        "certification_links_version": "certification",
        "course_links_inserted": "certification_course",
        "course_links_updated": "certification_course",
        "course_links_deleted": "certification_course",
        "course_links_changed": "certification_course",
        "course_of_links_updated": "course",
    }
    if dialect == "sqlite":
        return [f"DROP TRIGGER IF EXISTS {name}" for name in triggers]
    return [f"DROP TRIGGER IF EXISTS {name} ON {table}" for name, table in triggers.items()] + [
        f"DROP FUNCTION IF EXISTS {name}()"
        for name in ("certification_links_version", "course_links_changed", "course_of_links_updated")
    ]


async def _run(schema_editor: object, statements: list[str]) -> None:
    if getattr(schema_editor, "collect_sql", False):  # sqlmigrate / a dry run: show them
        schema_editor.collected_sql.extend(statements)  # type: ignore[attr-defined]
        return
    for statement in statements:
        await schema_editor.client.execute_script(statement)  # type: ignore[attr-defined]


def _dialect(schema_editor: object) -> str:
    return str(schema_editor.client.capabilities.dialect)  # type: ignore[attr-defined]


async def _install(apps: object, schema_editor: object) -> None:
    await _run(schema_editor, trigger_statements(_dialect(schema_editor)))


async def _remove(apps: object, schema_editor: object) -> None:
    await _run(schema_editor, _dropping(_dialect(schema_editor)))


_OPTIONS = {
    "table": "course_links_version",
    "app": "models",
    "pk_attr": "certification_id",
    "table_description": "The version of a certification's course links, new whenever they change.",
}


class Migration(migrations.Migration):
    dependencies = [("models", "0006_award_dates")]

    initial = False

    operations = [
        ops.CreateModel(
            name="CourseLinksVersion",
            fields=[
                (
                    "certification",
                    fields.OneToOneField(
                        "models.Certification",
                        source_field="certification_id",
                        primary_key=True,
                        db_index=True,
                        db_constraint=False,
                        to_field="id",
                        related_name="links_version",
                        on_delete=OnDelete.NO_ACTION,
                    ),
                ),
                ("version", fields.BigIntField()),
            ],
            options=_OPTIONS,
            bases=["Model"],
        ),
        # as makemigrations writes it: CreateModel alone leaves the description out of its state
        ops.AlterModelOptions(
            name="CourseLinksVersion",
            options=_OPTIONS,
        ),
        ops.RunPython(_install, _remove),
    ]
