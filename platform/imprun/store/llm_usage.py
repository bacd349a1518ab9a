"""What each application spent on the chat endpoint's LLM providers, per budget period (``llm_usage``).

One document per application and period, ``_id`` ``"{applicationId}/{periodStart}"`` (epoch
seconds of the period's start), counting the provider calls made for the application and the input
and output tokens the providers reported. ``record`` adds to it atomically (``$inc`` with upsert), so
concurrent chats and replicas count into the same document; ``usage`` reads it back (zeros when the
application made no call in the period). The AI gateway writes; the API reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from pymongo.database import Database

from imprun.store.mongo import Document, mongo_errors

__all__ = ["LlmUsage", "LlmUsageRepository", "period_start"]


def period_start(now: float, period_seconds: int) -> int:
    """The start (epoch seconds) of the fixed period of ``period_seconds`` that ``now`` falls in."""
    return int(now // period_seconds * period_seconds)


@dataclass(frozen=True, slots=True)
class LlmUsage:
    application_id: str
    period_start: int
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class LlmUsageRepository:
    def __init__(self, sys_db: Database[Document]) -> None:
        self._usage = sys_db.llm_usage

    def usage(self, application_id: str, period_start: int) -> LlmUsage:
        with mongo_errors():
            doc = self._usage.find_one({"_id": f"{application_id}/{period_start}"})
        if doc is None:
            return LlmUsage(application_id, period_start)
        return LlmUsage(
            application_id,
            period_start,
            calls=int(doc.get("calls", 0)),
            input_tokens=int(doc.get("inputTokens", 0)),
            output_tokens=int(doc.get("outputTokens", 0)),
        )

    def record(
        self,
        application_ids: Iterable[str],
        period_start: int,
        *,
        calls: int,
        input_tokens: int,
        output_tokens: int,
    ) -> None:
        with mongo_errors():
            for application_id in application_ids:
                self._usage.update_one(
                    {"_id": f"{application_id}/{period_start}"},
                    {
                        "$inc": {"calls": calls, "inputTokens": input_tokens, "outputTokens": output_tokens},
                        "$setOnInsert": {
                            "applicationId": application_id,
                            "periodStart": datetime.fromtimestamp(period_start, UTC),
                        },
                        "$currentDate": {"updatedAt": True},
                    },
                    upsert=True,
                )
