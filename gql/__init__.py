"""certgraph: a GraphQL service for professional certifications.

This module is the public plugin API; everything a plugin needs is importable from here.
"""

from gql.hookspecs import hookimpl
from gql.policy import (
    CompletionPolicy,
    CourseFacts,
    Event,
    EvidenceFacts,
    PolicyFacts,
    UploadInfo,
    UploadRefusal,
    Verdict,
    VerdictStatus,
    player_order,
)

__all__ = [
    "CompletionPolicy",
    "CourseFacts",
    "Event",
    "EvidenceFacts",
    "PolicyFacts",
    "UploadInfo",
    "UploadRefusal",
    "Verdict",
    "VerdictStatus",
    "hookimpl",
    "player_order",
]
