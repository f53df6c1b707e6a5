"""certgraph admin script (docs/admin.md): sync people from an HR CSV, keep a catalogue of
courses and certifications, assign them, chase what is overdue, export a CSV.

Run it as often as you like: everything it makes carries an externalId (the HR system's or
the catalogue's key), so a second run finds what the first made and changes only what
differs; a run that creates nothing new is the normal case. Needs Python 3.11+ and httpx.

    python examples/admin/sync.py --people examples/admin/hr.csv \\
        --catalog examples/admin/catalog.json --export enrollments.csv

The token is --token, or CERTGRAPH_API_TOKEN, or the demo admin's from `make run`
(var/demo-tokens.json); the server is --url or CERTGRAPH_API_URL (http://127.0.0.1:8000).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

RETRYABLE = {500, 502, 503, 504}
PAGE = 100  # the server's largest page (CERTGRAPH_MAX_PAGE_SIZE)
ALIASES = 25  # lookups per request, below the server's 30 aliases (CERTGRAPH_MAX_ALIASES)
ERRORS = "errors { code message field existingId }"


class ApiError(Exception):
    """A request that failed for good, or an answer the script cannot go on from."""


class Client:
    """GraphQL over HTTP, paced below the server's rate limit, retrying what is safe to retry.

    Pacing: a token bucket of `per_second` requests (default 5, half the server's default
    600 a minute), `burst` at once. A 429 waits its Retry-After and halves the pace; a 5xx,
    a timeout or a dropped connection backs off exponentially, with jitter, up to
    `attempts` tries. Every request this script sends is safe to repeat (it converges), so
    each may be retried, a 504 whose change was kept (`changesKept`) included.
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        per_second: float = 5.0,
        burst: int = 10,
        attempts: int = 8,
        log: Callable[[str], None] = print,
    ) -> None:
        self.http = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60.0
        )
        self.per_second = per_second
        self.burst = float(burst)
        self.tokens = float(burst)
        self.last = time.monotonic()
        self.attempts = attempts
        self.log = log
        self.requests = 0
        self.retries = 0

    def close(self) -> None:
        self.http.close()

    def _pace(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.per_second)
        self.last = now
        if self.tokens < 1:
            time.sleep((1 - self.tokens) / self.per_second)
            self.tokens, self.last = 1.0, time.monotonic()
        self.tokens -= 1

    def _send(
        self, method: str, path: str, *, into: Path | None = None, **kwargs: Any
    ) -> httpx.Response:
        """The answer to a request, retried as the class says; with `into`, a 200's body is
        streamed into that file (and fetched again, whole, if the transfer breaks)."""
        for attempt in range(1, self.attempts + 1):
            self._pace()
            self.requests += 1
            try:
                with self.http.stream(method, path, **kwargs) as response:
                    if response.status_code == 429:
                        reason = "429 RATE_LIMITED"
                        wait = float(response.headers.get("Retry-After", "1"))
                        self.per_second = max(0.5, self.per_second / 2)  # slow down when told
                    elif response.status_code in RETRYABLE:
                        reason, wait = f"HTTP {response.status_code}", self._backoff(attempt)
                    else:
                        if into is not None and response.status_code == 200:
                            with into.open("wb") as out:
                                for chunk in response.iter_bytes():
                                    out.write(chunk)
                        else:
                            response.read()
                        return response
            except httpx.TransportError as exc:  # timeouts, refused or dropped connections
                reason, wait = type(exc).__name__, self._backoff(attempt)
            if attempt == self.attempts:
                raise ApiError(f"{method} {path}: {reason}, {self.attempts} attempts")
            self.retries += 1
            self.log(f"  {reason}: retrying in {wait:.1f} s")
            time.sleep(wait)
        raise AssertionError("unreachable")

    @staticmethod
    def _backoff(attempt: int) -> float:
        return float(min(30.0, 0.5 * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0))

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The `data` of a GraphQL request; ApiError for an error the request itself got."""
        response = self._send("POST", "/graphql", json={"query": query, "variables": variables})
        body = response.json()
        if response.status_code != 200 or body.get("errors"):
            raise ApiError(f"HTTP {response.status_code}: {json.dumps(body.get('errors'))}")
        data: dict[str, Any] = body["data"]
        return data

    def mutate(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        """A mutation's payload (its only field); ApiError when it carries errors."""
        (payload,) = self.graphql(query, variables).values()
        if payload["errors"]:
            raise ApiError(json.dumps(payload["errors"]))
        result: dict[str, Any] = payload
        return result

    def pages(self, query: str, variables: dict[str, Any], field: str) -> Iterator[dict[str, Any]]:
        """Every node of a connection, a page of PAGE at a time (keyset cursors)."""
        after = None
        while True:
            found = self.graphql(query, {**variables, "first": PAGE, "after": after})[field]
            yield from (edge["node"] for edge in found["edges"])
            if not found["pageInfo"]["hasNextPage"]:
                return
            after = found["pageInfo"]["endCursor"]

    def download(self, path: str, target: Path) -> int:
        """Stream a download (a URL, or a path on the server) into `target`; its size."""
        response = self._send("GET", path, into=target)
        if response.status_code != 200:
            raise ApiError(f"GET {path.split('?')[0]}: HTTP {response.status_code}")
        return target.stat().st_size


# -- people -----------------------------------------------------------------------------

USERS = """
query($first: Int, $after: String) {
  users(first: $first, after: $after, active: null) {
    edges { node { id name email role active externalId manager { id } } }
    pageInfo { hasNextPage endCursor }
  }
}"""
CREATE_USERS = f"""
mutation($input: [UserInput!]!) {{
  createUsers(input: $input) {{ users {{ id externalId }} {ERRORS} }}
}}"""
UPDATE_USER = f"""
mutation($id: ID!, $input: UpdateUserInput!) {{
  updateUser(id: $id, input: $input) {{ user {{ id }} {ERRORS} }}
}}"""
DEACTIVATE = f"mutation($id: ID!) {{ deactivateUser(id: $id) {{ user {{ id }} {ERRORS} }} }}"
REACTIVATE = f"mutation($id: ID!) {{ reactivateUser(id: $id) {{ user {{ id }} {ERRORS} }} }}"


def read_people(path: Path) -> list[dict[str, str]]:
    """external_id,name,email,role,manager_external_id (the manager's external_id, or empty)."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        rows = [{k: (v or "").strip() for k, v in row.items()} for row in csv.DictReader(handle)]
    for row in rows:
        row["email"], row["role"] = row["email"].lower(), row["role"].upper()
    return rows


def create_people(api: Client, rows: list[dict[str, str]], ids: dict[str, str]) -> int:
    """createUsers (all or nothing) for `rows`; a CONFLICT names the holder's ID, which is
    taken as theirs (someone made them meanwhile) and the rest sent again. Returns how many
    were created; `ids` (externalId -> ID) learns every one."""
    pending = list(rows)
    while pending:
        users = [
            {
                "name": row["name"],
                "email": row["email"],
                "role": row["role"],
                "externalId": row["external_id"],
                "managerId": ids.get(row["manager_external_id"]),
            }
            for row in pending
        ]
        payload = api.graphql(CREATE_USERS, {"input": users})["createUsers"]
        if not payload["errors"]:
            ids.update({user["externalId"]: user["id"] for user in payload["users"]})
            return len(payload["users"])
        refused: set[int] = set()
        for error in payload["errors"]:
            if not error["field"] or len(error["field"]) < 2:  # the whole call was refused
                raise ApiError(error["message"])
            index = int(error["field"][1])
            refused.add(index)
            if error["code"] == "CONFLICT" and error["existingId"]:
                ids[pending[index]["external_id"]] = error["existingId"]
            else:
                print(f"  skipped {pending[index]['external_id']}: {error['message']}")
        pending = [row for i, row in enumerate(pending) if i not in refused]
    return 0


def sync_people(api: Client, rows: list[dict[str, str]], leavers: bool) -> dict[str, Any]:
    """Make certgraph's people what the HR file says: create the new, update what differs,
    reactivate returners and (with `leavers`) deactivate those the file no longer lists."""
    existing = list(api.pages(USERS, {}, "users"))
    by_key = {u["externalId"]: u for u in existing if u["externalId"]}
    by_email = {u["email"]: u for u in existing}
    ids = {key: user["id"] for key, user in by_key.items()}
    counts = {"created": 0, "updated": 0, "reactivated": 0, "deactivated": 0}
    # Adopt a person made before they had an externalId (same e-mail): give them the key.
    for row in rows:
        user = by_email.get(row["email"])
        if row["external_id"] not in by_key and user and not user["externalId"]:
            api.mutate(UPDATE_USER, {"id": user["id"], "input": {"externalId": row["external_id"]}})
            by_key[row["external_id"]] = {**user, "externalId": row["external_id"]}
            ids[row["external_id"]] = user["id"]
            counts["updated"] += 1
    # New people in waves, managers first: a wave is everyone whose manager has an ID.
    new = [row for row in rows if row["external_id"] not in by_key]
    while new:
        wave = [r for r in new if not r["manager_external_id"] or r["manager_external_id"] in ids]
        if not wave:
            raise ApiError(f"managers not in the file: {[r['external_id'] for r in new]}")
        counts["created"] += create_people(api, wave, ids)
        new = [row for row in new if row not in wave]
    # Everyone who was there already: change only what differs.
    for row in rows:
        user = by_key.get(row["external_id"])
        if user is None:
            continue
        wanted = {"name": row["name"], "email": row["email"], "role": row["role"]}
        changes: dict[str, Any] = {k: v for k, v in wanted.items() if user[k] != v}
        manager = ids.get(row["manager_external_id"])
        if (user["manager"] or {}).get("id") != manager:
            changes["managerId"] = manager
        if changes:
            api.mutate(UPDATE_USER, {"id": user["id"], "input": changes})
            counts["updated"] += 1
        if not user["active"]:
            api.mutate(REACTIVATE, {"id": user["id"]})
            counts["reactivated"] += 1
    if leavers:
        listed = {row["external_id"] for row in rows}
        for key, user in by_key.items():
            if key not in listed and user["active"]:
                api.mutate(DEACTIVATE, {"id": user["id"]})
                counts["deactivated"] += 1
    return {"ids": ids, **counts}


# -- catalogue ----------------------------------------------------------------------------

CREATE_COURSE = f"""
mutation($input: CourseInput!) {{ createCourse(input: $input) {{ course {{ id }} {ERRORS} }} }}"""
UPDATE_COURSE = f"""
mutation($id: ID!, $changes: CourseChanges!) {{
  updateCourse(id: $id, changes: $changes) {{ course {{ id }} {ERRORS} }}
}}"""
CREATE_CERTIFICATION = f"""
mutation($input: CertificationInput!) {{
  createCertification(input: $input) {{ certification {{ id }} {ERRORS} }}
}}"""
UPDATE_CERTIFICATION = f"""
mutation($id: ID!, $changes: CertificationChanges!) {{
  updateCertification(id: $id, changes: $changes) {{ certification {{ id }} {ERRORS} }}
}}"""
SET_COURSES = f"""
mutation($id: ID!, $courses: [CertificationCourseInput!]!) {{
  setCertificationCourses(certificationId: $id, courses: $courses) {{
    certification {{ id }} {ERRORS}
  }}
}}"""
PUBLISH = (
    f"mutation($id: ID!) {{ publishCertification(id: $id) {{ certification {{ id }} {ERRORS} }} }}"
)


def lookup(api: Client, field: str, selection: str, keys: list[str]) -> dict[str, Any]:
    """`field(externalId:)` for many keys, ALIASES to a request: {key: object or None}."""
    found: dict[str, Any] = {}
    for start in range(0, len(keys), ALIASES):
        chunk = keys[start : start + ALIASES]
        variables = {f"k{i}": key for i, key in enumerate(chunk)}
        declared = ", ".join(f"$k{i}: String!" for i in range(len(chunk)))
        body = " ".join(
            f"o{i}: {field}(externalId: $k{i}) {{ {selection} }}" for i in range(len(chunk))
        )
        data = api.graphql(f"query({declared}) {{ {body} }}", variables)
        found.update({key: data[f"o{i}"] for i, key in enumerate(chunk)})
    return found


def create_once(api: Client, mutation: str, variables: dict[str, Any], field: str) -> str:
    """Create, or take the existing object's ID from a CONFLICT on its externalId."""
    (payload,) = api.graphql(mutation, variables).values()
    for error in payload["errors"]:
        if error["code"] == "CONFLICT" and error["existingId"]:
            existing: str = error["existingId"]
            return existing
    if payload["errors"]:
        raise ApiError(json.dumps(payload["errors"]))
    created: str = payload[field]["id"]
    return created


def sync_catalog(api: Client, catalog: dict[str, Any]) -> dict[str, Any]:
    """Courses and certifications as the catalogue says, each found by its externalId."""
    counts = {"created": 0, "updated": 0}
    courses = catalog["courses"]
    found = lookup(
        api, "courseByExternalId", "id name durationMinutes", [c["externalId"] for c in courses]
    )
    course_ids: dict[str, str] = {}
    for course in courses:
        wanted = {"name": course["name"], "durationMinutes": course.get("durationMinutes")}
        current = found[course["externalId"]]
        if current is None:
            variables = {"input": {**wanted, "externalId": course["externalId"]}}
            course_ids[course["externalId"]] = create_once(api, CREATE_COURSE, variables, "course")
            counts["created"] += 1
            continue
        course_ids[course["externalId"]] = current["id"]
        changes = {k: v for k, v in wanted.items() if current[k] != v}
        if changes:
            api.mutate(UPDATE_COURSE, {"id": current["id"], "changes": changes})
            counts["updated"] += 1
    certifications = catalog["certifications"]
    selection = "id name daysToComplete state courses { course { externalId } mandatory }"
    found = lookup(
        api, "certificationByExternalId", selection, [c["externalId"] for c in certifications]
    )
    certification_ids: dict[str, str] = {}
    for cert in certifications:
        current = found[cert["externalId"]]
        if current is None:
            fields = ("name", "kind", "type", "daysToComplete", "validityMonths", "externalId")
            variables = {"input": {k: cert[k] for k in fields if k in cert}}
            cert_id = create_once(api, CREATE_CERTIFICATION, variables, "certification")
            current = {"id": cert_id, "state": "DRAFT", "courses": [], **variables["input"]}
            counts["created"] += 1
        certification_ids[cert["externalId"]] = current["id"]
        changes = {k: cert.get(k) for k in ("name", "daysToComplete") if current[k] != cert.get(k)}
        if changes:
            api.mutate(UPDATE_CERTIFICATION, {"id": current["id"], "changes": changes})
            counts["updated"] += 1
        has = [(c["course"]["externalId"], c["mandatory"]) for c in current["courses"]]
        needs = [(c["externalId"], c["mandatory"]) for c in cert["courses"]]
        if has != needs:
            links = [{"courseId": course_ids[key], "mandatory": m} for key, m in needs]
            api.mutate(SET_COURSES, {"id": current["id"], "courses": links})
        if current["state"] == "DRAFT":
            api.mutate(PUBLISH, {"id": current["id"]})
    return {"courses": course_ids, "certifications": certification_ids, **counts}


# -- assignments, overdue, export -------------------------------------------------------------

ENROLLMENTS = """
query($filter: EnrollmentFilter, $first: Int, $after: String) {
  enrollments(filter: $filter, first: $first, after: $after) {
    edges { node {
      dueAt status
      certification { name }
      learner { id name email manager { email } }
    } }
    pageInfo { hasNextPage endCursor }
  }
}"""
ASSIGN = f"""
mutation($id: ID!, $learners: [ID!]!) {{
  assignCertification(certificationId: $id, learnerIds: $learners) {{
    enrollments {{ id }} {ERRORS}
  }}
}}"""
EXPORT = """
mutation($filter: EnrollmentFilter) {
  exportEnrollments(filter: $filter) { url expiresAt errors { code message field } }
}"""


def assign(api: Client, catalog: dict[str, Any], people: list[dict[str, str]], ids: Any) -> int:
    """Assign each certification to the roles its `assignTo` names: only to those not yet
    enrolled (Query.enrollments by certification), so a re-run assigns nobody twice."""
    assigned = 0
    for cert in catalog["certifications"]:
        cert_id = ids["certifications"][cert["externalId"]]
        filter_ = {"certificationId": cert_id}
        listed = api.pages(ENROLLMENTS, {"filter": filter_}, "enrollments")
        enrolled = {item["learner"]["id"] for item in listed}
        roles = set(cert["assignTo"])
        wanted = [ids["people"][p["external_id"]] for p in people if p["role"] in roles]
        missing = [learner for learner in wanted if learner not in enrolled]
        for start in range(0, len(missing), 500):  # assignCertification takes up to 500
            api.mutate(ASSIGN, {"id": cert_id, "learners": missing[start : start + 500]})
        assigned += len(missing)
    return assigned


def chase_overdue(api: Client) -> int:
    """Who is overdue (Query.enrollments(filter: {overdue: true})), by manager: the list a
    reminder would go to. Printed here; send it where your people read."""
    overdue = list(api.pages(ENROLLMENTS, {"filter": {"overdue": True}}, "enrollments"))
    for item in overdue:
        learner = item["learner"]
        manager = (learner["manager"] or {}).get("email", "no manager")
        cert = item["certification"]["name"]
        print(f"  overdue: {learner['email']} ({manager}): {cert}, due {item['dueAt']}")
    return len(overdue)


def export(api: Client, target: Path, filter_: dict[str, Any] | None) -> int:
    """exportEnrollments answers a signed URL (absolute, valid for minutes, no token needed);
    the CSV streams from it into `target`."""
    payload = api.mutate(EXPORT, {"filter": filter_})
    return api.download(payload["url"], target)


# -- the command ------------------------------------------------------------------------


def admin_token(explicit: str | None) -> str:
    token = explicit or os.environ.get("CERTGRAPH_API_TOKEN")
    if token:
        return token
    kept = Path("var/demo-tokens.json")  # what `make run` prints and keeps
    if kept.exists():
        for person in json.loads(kept.read_text(encoding="utf-8")):
            if person["role"] == "ADMIN":
                found: str = person["token"]
                return found
    raise SystemExit("no token: --token, CERTGRAPH_API_TOKEN, or `make run`'s demo tokens")


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_url = os.environ.get("CERTGRAPH_API_URL", "http://127.0.0.1:8000")
    parser.add_argument("--url", default=default_url, help="the server (%(default)s)")
    parser.add_argument("--token", help="an admin's API token")
    parser.add_argument("--people", type=Path, default=here / "hr.csv", help="the HR CSV")
    parser.add_argument("--catalog", type=Path, default=here / "catalog.json")
    parser.add_argument("--export", type=Path, default=Path("enrollments.csv"), help="CSV out")
    parser.add_argument(
        "--deactivate-leavers",
        action="store_true",
        help="deactivate people with an externalId the HR file no longer lists",
    )
    parser.add_argument("--rate", type=float, default=5.0, help="requests per second (5)")
    args = parser.parse_args(argv)

    api = Client(args.url, admin_token(args.token), per_second=args.rate)
    try:
        people = read_people(args.people)
        catalog = json.loads(args.catalog.read_text(encoding="utf-8"))
        synced = sync_people(api, people, args.deactivate_leavers)
        print(
            f"people: {synced['created']} created, {synced['updated']} updated, "
            f"{synced['reactivated']} reactivated, {synced['deactivated']} deactivated"
        )
        kept = sync_catalog(api, catalog)
        print(f"catalogue: {kept['created']} created, {kept['updated']} updated")
        ids = {"people": synced["ids"], "certifications": kept["certifications"]}
        print(f"assignments: {assign(api, catalog, people, ids)} new")
        print(f"overdue: {chase_overdue(api)}")
        size = export(api, args.export, None)
        print(f"export: {args.export} ({size} bytes)")
        print(f"requests: {api.requests} ({api.retries} retried)")
    except ApiError as exc:
        print(f"failed: {exc}", file=sys.stderr)
        return 1
    finally:
        api.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
