"""external-evidence, the default policy for EXTERNAL certifications: complete when proof
submitted in this cycle is approved (or at once with ``requiresApproval: false``); its
config is documented on ExternalEvidenceConfig."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Literal

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from gql import (
    CompletionPolicy,
    EvidenceFacts,
    Message,
    PolicyFacts,
    Verdict,
    VerdictStatus,
    hookimpl,
)


class ExternalEvidenceConfig(BaseModel):
    """``requiresApproval: false`` completes on submission; ``completionDate`` picks the award
    date (the approval or submission time, or the day the learner states);
    ``requireMandatoryCourses`` refuses submissions until the mandatory courses are done."""

    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, title="external-evidence"
    )

    requires_approval: bool = True
    completion_date: Literal["approval", "learner"] = "approval"
    require_mandatory_courses: bool = False


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


class ExternalEvidence(CompletionPolicy):
    name = "external-evidence"
    description = (
        "Complete when a submission of proof in this cycle is approved "
        "(or submitted, with requiresApproval: false)."
    )
    config_model = ExternalEvidenceConfig

    def evaluate(self, facts: PolicyFacts, config: ExternalEvidenceConfig) -> Verdict:
        if not facts.evidence:
            return Verdict(
                status=VerdictStatus.NOT_STARTED,
                progress=0.0,
                explanation=Message("no proof submitted yet"),
            )
        accepted = [e for e in facts.evidence if self._accepted(e, config)]
        if accepted:
            first = accepted[0]
            return Verdict(
                status=VerdictStatus.COMPLETE,
                progress=1.0,
                completed_at=self._completion_time(first, config),
                explanation=(
                    Message("proof approved")
                    if config.requires_approval
                    else Message("proof submitted")
                ),
            )
        latest = facts.evidence[-1]
        if latest.status == "PENDING":
            return Verdict(
                status=VerdictStatus.PENDING_APPROVAL,
                progress=0.5,
                explanation=Message("proof submitted, waiting for review"),
            )
        return Verdict(
            status=VerdictStatus.REJECTED,
            progress=0.0,
            explanation=Message("proof rejected; submit new proof"),
        )

    def check_submission(self, facts: PolicyFacts, config: ExternalEvidenceConfig) -> str | None:
        """Why a new submission must be refused now, or None to accept it."""
        if config.require_mandatory_courses:
            mandatory = [c for c in facts.courses if c.mandatory] or list(facts.courses)
            missing = [c for c in mandatory if not c.completed]
            if missing:
                return Message(
                    "complete the {count} remaining mandatory course(s) first",
                    {"count": len(missing)},
                )
        return None

    @staticmethod
    def _accepted(evidence: EvidenceFacts, config: ExternalEvidenceConfig) -> bool:
        if evidence.status == "APPROVED":
            return True
        return not config.requires_approval and evidence.status != "REJECTED"

    @staticmethod
    def _completion_time(evidence: EvidenceFacts, config: ExternalEvidenceConfig) -> datetime:
        if config.completion_date == "learner" and evidence.completed_on is not None:
            return _start_of(evidence.completed_on)
        if config.requires_approval and evidence.reviewed_at is not None:
            return evidence.reviewed_at
        return evidence.submitted_at


@hookimpl
def certgraph_completion_policies() -> list[object]:
    return [ExternalEvidence()]
