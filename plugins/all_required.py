"""all-required: complete when every course is completed in this cycle; flags are ignored."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from gql import CompletionPolicy, PolicyFacts, Verdict, hookimpl
from plugins._counting import verdict_for_required


class AllRequiredConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", title="all-required")


class AllRequired(CompletionPolicy):
    name = "all-required"
    description = "Complete when every course of the certification is completed in this cycle."
    config_model = AllRequiredConfig

    def evaluate(self, facts: PolicyFacts, config: AllRequiredConfig) -> Verdict:
        return verdict_for_required(facts, facts.courses, mandatory=False)


@hookimpl
def certgraph_completion_policies() -> list[object]:
    return [AllRequired()]
