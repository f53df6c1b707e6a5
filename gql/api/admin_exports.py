"""Exports through the API (docs/admin.md, "Exports"): `exportEnrollments(filter)` authorises
and audits an export of what `Query.enrollments(filter:)` selects and answers a signed,
expiring URL that streams it as CSV (gql.api.export_route)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from gql.api.admin_queries import EnrollmentFilter
from gql.api.context import Info
from gql.api.errors import UserError
from gql.api.export_route import EXPORT_URL_TTL_SECONDS, export_url
from gql.api.fields import described_mutation
from gql.api.mutations import run_use_case
from gql.domain import enrollment_search, exports
from gql.signing import public_base_url


@strawberry.type
class ExportPayload:
    url: str | None = strawberry.field(
        default=None,
        description=(
            "An absolute URL on this server (CERTGRAPH_PUBLIC_URL, else the origin the request "
            "was sent to) that downloads the CSV: GET, no token needed, until expiresAt. The "
            "download runs as the requester with their role at the time of the request, and is "
            "refused (403) once they are deactivated or hold another role."
        ),
    )
    expires_at: datetime | None = strawberry.field(
        default=None, description="From then on the URL is refused (403): ask for a new one."
    )
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ExportMutations:
    @described_mutation(
        "A signed download URL of a CSV of the enrollments `filter` selects, with the scope "
        "and rules of Query.enrollments: managers their own and their direct reports', admins "
        "everyone's (FORBIDDEN for learners). The CSV (UTF-8, a header row, RFC 4180 quoting; "
        "a cell starting with =, +, -, @, tab or CR gets a leading ') is generated while it "
        f"downloads. The URL works for {EXPORT_URL_TTL_SECONDS // 60} minutes. Audited "
        "(exportEnrollments)."
    )
    async def export_enrollments(
        self, info: Info, filter: EnrollmentFilter | None = None
    ) -> ExportPayload | None:
        signer = info.context.signer
        base_url = public_base_url(info.context.settings.public_url, info.context.request)

        def shape(request: exports.ExportRequest) -> ExportPayload:
            path, expires_at = export_url(signer, request)
            return ExportPayload(url=base_url + path, expires_at=expires_at)

        return await run_use_case(
            info,
            ExportPayload,
            lambda viewer: exports.request_export(
                viewer,
                filter.to_domain() if filter is not None else enrollment_search.EnrollmentFilter(),
            ),
            shape,
        )


__all__ = ["ExportMutations", "ExportPayload"]
