"""certgraph: a GraphQL service for professional certifications.

This module is the public plugin API; everything a plugin needs is importable from here.
"""

from gql.events import (
    CertificationCompleted,
    CertificationDueSoon,
    CertificationExpired,
    CertificationExpiring,
    CertificationOverdue,
    CertificationRef,
    CourseRef,
    Enrolled,
    Event,
    EventData,
    EvidenceReviewed,
    EvidenceSubmitted,
    Person,
    ProgressRecorded,
    Started,
    Unassigned,
)
from gql.hookspecs import hookimpl
from gql.policy import (
    CompletionPolicy,
    CourseFacts,
    EvidenceFacts,
    Message,
    PolicyFacts,
    UploadInfo,
    UploadRefusal,
    Verdict,
    VerdictStatus,
    player_order,
)

__all__ = [
    "CertificationCompleted",
    "CertificationDueSoon",
    "CertificationExpired",
    "CertificationExpiring",
    "CertificationOverdue",
    "CertificationRef",
    "CompletionPolicy",
    "CourseFacts",
    "CourseRef",
    "Enrolled",
    "Event",
    "EventData",
    "EvidenceFacts",
    "EvidenceReviewed",
    "EvidenceSubmitted",
    "Message",
    "Person",
    "PolicyFacts",
    "ProgressRecorded",
    "Started",
    "Unassigned",
    "UploadInfo",
    "UploadRefusal",
    "Verdict",
    "VerdictStatus",
    "hookimpl",
    "player_order",
]
