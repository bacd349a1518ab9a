"""The pydantic base every domain document and value object shares: frozen, camelCase on the wire.

Field names are snake_case in Python and camelCase in the API and in MongoDB (``minReplicas``,
``createdAt``), matching the documents in docs/architecture.md. Both spellings validate; dumps use the
camelCase aliases unless ``by_alias=False`` is passed. Unknown fields are rejected so a typo in a
request or a stale stored field surfaces instead of being silently dropped; the store strips its own
bookkeeping fields (``_id``, ``lockedAt``) before validating a document.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class DomainModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        frozen=True,
        extra="forbid",
    )
