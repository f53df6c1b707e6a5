"""Evidence reads; submitting and reviewing proof come with the files work."""

from __future__ import annotations

from tortoise.expressions import Q, Subquery

from gql.domain.access import Actor, learner_scope
from gql.domain.pages import Page, orm_page
from gql.store.models import Evidence, EvidenceStatus, User


def _reviewable(actor: Actor) -> Q | None:
    """PENDING evidence the actor may review: never their own; reports' or anyone's for admins."""
    if actor.is_admin:
        return ~Q(enrollment__learner_id=actor.user_id) if actor.user_id is not None else Q()
    if actor.is_manager:
        return Q(
            enrollment__learner_id__in=Subquery(User.filter(manager_id=actor.user_id).values("id"))
        )
    return None


async def list_review_queue(
    actor: Actor, *, first: int | None = 20, after: str | None = None
) -> Page[Evidence]:
    scope = _reviewable(actor)
    queryset = Evidence.filter(status=EvidenceStatus.PENDING)
    queryset = queryset.filter(scope) if scope is not None else queryset.filter(id=-1)
    return await orm_page(
        queryset,
        [("submitted_at", False), ("id", False)],
        kind="review-queue",
        first=first,
        after=after,
    )


async def evidence_by_ids(actor: Actor, ids: list[int]) -> dict[int, Evidence]:
    if not ids:
        return {}
    rows = await Evidence.filter(learner_scope(actor, "enrollment__learner_id"), id__in=ids)
    return {row.id: row for row in rows}


async def get_evidence(actor: Actor, evidence_id: int) -> Evidence | None:
    return (await evidence_by_ids(actor, [evidence_id])).get(evidence_id)
