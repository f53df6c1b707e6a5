"""mandatory-subset: complete when every mandatory course is completed in this cycle.

If no course is flagged mandatory, every course is required. Optional courses never change
the verdict. The default policy for INTERNAL certifications.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from gql import CompletionPolicy, PolicyFacts, Verdict, hookimpl
from plugins._counting import verdict_for_required


class MandatorySubsetConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", title="mandatory-subset")


class MandatorySubset(CompletionPolicy):
    name = "mandatory-subset"
    description = (
        "Complete when every mandatory course is completed in this cycle "
        "(every course, when none is flagged mandatory)."
    )
    config_model = MandatorySubsetConfig

    def evaluate(self, facts: PolicyFacts, config: MandatorySubsetConfig) -> Verdict:
        mandatory = tuple(c for c in facts.courses if c.mandatory)
        if mandatory:
            return verdict_for_required(facts, mandatory, mandatory=True)
        return verdict_for_required(facts, facts.courses, mandatory=False)


@hookimpl
def certgraph_completion_policies() -> list[object]:
    return [MandatorySubset()]
