"""Provider error bodies become ``UpstreamFailed`` messages: the provider's words, no key material."""

from __future__ import annotations

import pytest

from imprun.ai.provider_errors import MAX_MESSAGE_CHARS, scrub_secrets, upstream_failure, upstream_message

KEY = "sk-proj-AbCdEfGh0123456789"


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ({"error": {"message": "Rate limit reached", "type": "requests"}}, "Rate limit reached"),
        ({"message": "model not found"}, "model not found"),  # OpenAI SDK hands over the inner "error"
        ({"type": "error", "error": {"type": "api_error", "message": "Overloaded"}}, "Overloaded"),
        ({"error": "plain error string"}, "plain error string"),
        ("upstream connect error", "upstream connect error"),
        ({"error": {"code": 7}}, "the fallback"),
        (None, "the fallback"),
    ],
)
def test_the_providers_message_is_found(body: object, said: str) -> None:
    assert upstream_message(body, "the fallback") == said


def test_keys_whole_masked_or_key_shaped_are_scrubbed() -> None:
    text = f"bad key {KEY}; we saw {KEY[:12]}***{KEY[-4:]}; also sk-ant-api03-ZZZZZZZZZZZZ"
    scrubbed = scrub_secrets(text, KEY)
    assert "AbCdEfGh" not in scrubbed and "sk-ant-api03" not in scrubbed
    assert scrubbed.startswith("bad key [redacted]; we saw ")


def test_upstream_failure_names_provider_and_status_and_bounds_the_message() -> None:
    failure = upstream_failure("openai", status=503, body={"message": "x" * 2000}, fallback="", api_key=KEY)
    assert failure.status == 502 and failure.code == "unavailable"
    assert failure.message.startswith("openai answered 503: xxx")
    assert len(failure.message) <= len("openai answered 503: ") + MAX_MESSAGE_CHARS + 1
    assert failure.details == {"provider": "openai", "status": 503}
    assert upstream_failure(
        "anthropic", status=None, body=None, fallback="timed out", api_key=""
    ).message == ("anthropic failed: timed out")
