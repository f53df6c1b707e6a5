"""certgraph-quorum: complete any N of a certification's courses.

The policy is pure: it reads only the facts it is given and returns a verdict.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from gql import PolicyFacts, Verdict, VerdictStatus, hookimpl


class QuorumConfig(BaseModel):
    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, title="quorum"
    )

    min_courses: int = Field(ge=1, description="How many courses complete the certification.")


class Quorum:
    name = "quorum"
    description = "Complete any N of the courses."
    config_model = QuorumConfig

    def evaluate(self, facts: PolicyFacts, config: QuorumConfig) -> Verdict:
        done = [c for c in facts.courses if c.completed]
        summary = f"{len(done)} of {config.min_courses} courses done"
        if len(done) >= config.min_courses:
            # The quorum was reached by the min_courses-th completion, not the latest one.
            times = sorted(c.completed_at for c in done if c.completed_at is not None)
            return Verdict(
                status=VerdictStatus.COMPLETE,
                progress=1.0,
                completed_at=times[config.min_courses - 1],
                explanation=summary,
            )
        started = bool(done) or any(c.percent > 0 for c in facts.courses)
        return Verdict(
            status=VerdictStatus.IN_PROGRESS if started else VerdictStatus.NOT_STARTED,
            progress=len(done) / config.min_courses,
            remaining=tuple(
                c.course_id
                for c in sorted(facts.courses, key=lambda c: c.position)
                if not c.completed
            ),
            explanation=summary,
        )


@hookimpl
def certgraph_completion_policies() -> list[object]:
    return [Quorum()]
