"""The message bus and the typed messages of the ReasonMed flow.

Knows nothing of agents, storage or the application: it is handed a
``Journal`` and ``Subscription``s.
"""

from .backoff import Backoff
from .bus import ConsumerStats, Handler, MessageBus, Subscription
from .codec import SchemaMismatch, decode, encode
from .journal import Ack, Backlog, Journal, Routed
from .gates import Gate
from .stop import StopRun, first_stop, root_cause
from .vocabulary import FailureKind, Stage
from .messages import (
    ALL_MESSAGES,
    LETTERS,
    SCHEMA_VERSION,
    CoTGenerated,
    Judgement,
    Message,
    Path,
    Provenance,
    Question,
    QuestionIngested,
    Ranked,
    RecordReady,
    Refined,
    RewriteInput,
    Scored,
    StageFailed,
    Summarized,
    TierAssigned,
    Verdict,
)

__all__ = [
    "FailureKind", "Gate", "Stage", "StopRun", "first_stop", "root_cause",
    "ALL_MESSAGES", "LETTERS", "SCHEMA_VERSION", "Ack", "Backlog", "Backoff", "CoTGenerated",
    "ConsumerStats", "Handler", "Journal", "Judgement", "Message", "MessageBus", "Path",
    "Provenance", "Question", "QuestionIngested", "Ranked", "RecordReady", "Refined", "RewriteInput", "Routed",
    "SchemaMismatch", "Scored", "StageFailed", "Subscription", "Summarized", "TierAssigned",
    "Verdict", "decode", "encode",
]
