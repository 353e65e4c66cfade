"""Schemathesis fuzzes a real `stackcast serve` from its own OpenAPI schema: no 5xx, ever.

Every operation `/openapi.json` lists gets hypothesis-generated requests from schemathesis'
strategies, valid and invalid ones (`/predict` by far the most: the others take no input), and
`/predict` also gets the boundaries of the limits `/info` publishes: the most series, the
longest history, the largest values, and one past each. Most requests carry the API key; the
rest carry none or a wrong one. Every answer must be below 500 and one the schema documents
(status code, media type, body shape); every 4xx must say why in a JSON `detail`; a request to
a protected path without the right key must never succeed.

Driven through `operation.as_strategy` and hypothesis' `@given` rather than schemathesis'
pytest plugin: its fixture-backed schema (`schemathesis.pytest.from_fixture`, needed for a
server a fixture starts) sets `request.node._nodeid`, which pytest 9.2 no longer has.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import CheckFunction, not_a_server_error
from schemathesis.core.transport import Response
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from stackcast.service.schema import MAX_ABS_VALUE
from tests.conftest import ServedStore
from tests.e2e.servers import free_port, running_server
from tests.service_helpers import API_KEY, serve_command, serve_env

pytestmark = pytest.mark.slow

PREDICT_EXAMPLES = 500  # hypothesis cases for POST /predict, on top of its boundary cases
OTHER_EXAMPLES = 30  # the GETs take no input: a few distinct cases each, times three keys
MIN_REQUESTS = 500
PROTECTED = frozenset({"/predict", "/info"})  # the X-API-Key is required there
KEYS = ("right",) * 6 + ("none", "wrong")  # three requests in four carry the key
HEADERS: dict[str, dict[str, str]] = {
    "right": {"X-API-Key": API_KEY},
    "none": {},
    "wrong": {"X-API-Key": "not-the-key-0123456789"},
}
# Every answer, under any key, must be one the published schema lists, in the media type and
# shape it gives (service/openapi.py documents the plain-text routes and the error answers).
CONFORMANCE: list[CheckFunction] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,  # e.g. a NaN forecast, which goes out as JSON null
]
# With the key, what the schema forbids is refused and what it allows is answered.
DATA_CHECKS: dict[str, list[CheckFunction]] = {
    "POST /predict": [negative_data_rejection, positive_data_acceptance],
}
FUZZ_SETTINGS = settings(
    deadline=None,
    database=None,  # nothing written into the repo
    derandomize=True,  # the same requests on every run: a red CI is a reproducible bug
    phases=[Phase.explicit, Phase.generate],  # no shrinking: the failing request is shown whole
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@dataclass
class Traffic:
    """Every request sent: (operation, key) -> statuses."""

    statuses: dict[tuple[str, str], Counter[int]] = field(default_factory=dict)

    def record(self, label: str, key: str, status: int) -> None:
        self.statuses.setdefault((label, key), Counter())[status] += 1

    def count(
        self,
        label: str | None = None,
        keys: tuple[str, ...] = tuple(HEADERS),
        status: int | None = None,
    ) -> int:
        return sum(
            n
            for (op, key), codes in self.statuses.items()
            if label in (None, op) and key in keys
            for code, n in codes.items()
            if status in (None, code)
        )

    def summary(self) -> dict[str, dict[str, dict[str, int]]]:
        """{operation: {key: {status: requests}}}."""
        out: dict[str, dict[str, dict[str, int]]] = {}
        for (op, key), codes in sorted(self.statuses.items()):
            out.setdefault(op, {})[key] = {str(c): n for c, n in sorted(codes.items())}
        return out


@pytest.fixture(scope="module")
def server_url(
    served_store: ServedStore, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    port = free_port()
    env = serve_env(served_store, port, reload_interval="0", api_key=API_KEY)
    log = tmp_path_factory.mktemp("fuzz") / "serve.log"
    url = f"http://127.0.0.1:{port}"
    with running_server(serve_command(), f"{url}/health", log, env):
        yield url


def _says_why(response: Response) -> str:
    """A 4xx's message: the non-empty `detail` of its JSON body, else ''."""
    try:
        body = json.loads(response.content)
    except ValueError:
        return ""
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list):  # a 422: one {field, msg, ...} per problem
        return "; ".join(str(p.get("msg") or "") for p in detail if isinstance(p, dict))
    return str(detail or "")


def _send(case: Case, key: str, traffic: Traffic) -> None:
    """Send one request and hold its answer to the rules in the module docstring."""
    label = case.operation.label
    response = case.call(headers=HEADERS[key], timeout=30)
    status = response.status_code
    traffic.record(label, key, status)
    assert status < 500, f"{label} ({key} key): {status} {response.text[:1000]}"
    if 400 <= status < 500:
        assert _says_why(response), f"{label} ({key} key): {status} {response.text[:200]!r}"
    checks = CONFORMANCE + (DATA_CHECKS.get(label, []) if key == "right" else [])
    case.validate_response(response, checks=checks)
    if key != "right" and case.operation.path in PROTECTED:
        assert status >= 400, f"{label} answered {status} to a request with {key} key"


def _boundaries(limits: dict[str, int]) -> list[dict[str, Any]]:
    """`/predict` bodies at the edges of what the server says it accepts, and one past each."""
    short, long = limits["min_history"], limits["max_history_length"]
    most, horizon = limits["max_series_per_request"], limits["max_horizon"]
    level = [float(i % 24) for i in range(short)]
    return [
        {"series": [{"history": level, "id": str(i)} for i in range(most)]},  # ~40 KB answer
        {"series": [{"history": level} for _ in range(most + 1)]},
        {"series": [{"history": [float(i) for i in range(long)], "horizon": horizon}]},
        {"series": [{"history": [1.0] * (long + 1)}]},
        {"series": [{"history": level[:-1]}]},
        {"series": [{"history": level, "horizon": horizon + 1}]},
        {"series": [{"history": [MAX_ABS_VALUE, -MAX_ABS_VALUE] * short}]},
        {"series": [{"history": [*level[:-1], MAX_ABS_VALUE * 10]}]},
        {"series": [{"history": level, "horizon": 2.0, "id": "x" * 256}]},
        {"series": []},
        {},
    ]


def _fuzzer(operation: APIOperation, traffic: Traffic) -> Callable[[], None]:
    """A hypothesis test sending this operation's valid and invalid cases under a drawn key."""
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )
    examples = PREDICT_EXAMPLES if operation.label == "POST /predict" else OTHER_EXAMPLES

    @settings(FUZZ_SETTINGS, max_examples=examples)
    @given(case=cases, key=st.sampled_from(KEYS))
    def fuzz(case: Case, key: str) -> None:
        _send(case, key, traffic)

    return fuzz


def test_fuzzed_requests_get_no_5xx_and_every_4xx_says_why(
    server_url: str, record_property: Callable[[str, object], None]
) -> None:
    schema = schemathesis.openapi.from_url(f"{server_url}/openapi.json")
    limits = httpx.get(f"{server_url}/info", headers=HEADERS["right"]).json()["limits"]
    traffic = Traffic()
    for result in schema.get_all_operations():
        operation = result.ok()
        fuzz = _fuzzer(operation, traffic)
        if operation.label == "POST /predict":
            for body in _boundaries(limits):
                case = operation.Case(body=body, media_type="application/json")
                fuzz = example(case=case, key="right")(fuzz)
        fuzz()

    summary = traffic.summary()
    record_property("fuzz_statuses", json.dumps(summary))
    print(f"\nfuzzing: {traffic.count()} requests\n{json.dumps(summary, indent=1)}")
    assert traffic.count() >= MIN_REQUESTS, summary
    assert traffic.count("POST /predict", ("right",), status=200) > 50, "too few were valid"
    for op in ("GET /info", "GET /health", "GET /metrics"):
        assert traffic.count(op, ("right",)) > 0, f"{op} was never fuzzed"
    for op in ("POST /predict", "GET /info"):
        assert traffic.count(op, ("none", "wrong"), status=401) > 0, f"{op}: no 401 seen"
