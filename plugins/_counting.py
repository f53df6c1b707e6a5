"""What the two course-counting policies share: counting the required courses done."""

from __future__ import annotations

from gql import CourseFacts, Message, PolicyFacts, Verdict, VerdictStatus, player_order


def verdict_for_required(
    facts: PolicyFacts, required: tuple[CourseFacts, ...], mandatory: bool
) -> Verdict:
    """`mandatory`: the required courses are the ones flagged mandatory (said so to people)."""
    if not required:
        return Verdict(
            status=VerdictStatus.NOT_STARTED,
            progress=0.0,
            explanation=Message("this certification has no courses yet"),
        )
    done = [c for c in required if c.completed]
    counts = {"done": len(done), "required": len(required)}
    summary = (
        Message("{done} of {required} mandatory courses done", counts)
        if mandatory
        else Message("{done} of {required} courses done", counts)
    )
    if len(done) == len(required):
        return Verdict(
            status=VerdictStatus.COMPLETE,
            progress=1.0,
            completed_at=max(c.completed_at for c in done if c.completed_at is not None),
            explanation=summary,
        )
    started = any(c.completed or c.percent > 0 for c in required)
    remaining = player_order(c for c in required if not c.completed)
    return Verdict(
        status=VerdictStatus.IN_PROGRESS if started else VerdictStatus.NOT_STARTED,
        progress=len(done) / len(required),
        remaining=remaining,
        explanation=summary,
    )
