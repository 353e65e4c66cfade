"""Which Content-Types FastAPI parses as JSON, and what the 415 tells a client to send."""

from __future__ import annotations

import pytest

from stackcast.service.media_type import is_json, not_json


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/ld+json",
    ],
)
def test_json_content_types(content_type: str) -> None:
    assert is_json(content_type)


@pytest.mark.parametrize(
    "content_type",
    [None, "", "text/plain", "application/x-www-form-urlencoded", "text/json", "application/jsonl"],
)
def test_other_content_types(content_type: str | None) -> None:
    assert not is_json(content_type)


def test_the_message_names_what_was_sent_and_what_to_send() -> None:
    assert "application/json" in not_json("text/plain") and "'text/plain'" in not_json("text/plain")
    assert "no Content-Type" in not_json(None)
