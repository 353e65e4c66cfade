"""The service in-process: real LitServe app, real inference workers, a real registry."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pytest
from fastapi.testclient import TestClient

from stackcast.service.metrics import sample_total
from tests.conftest import ServedStore, in_store
from tests.html_links import read_page
from tests.service_helpers import API_KEY, in_process, wait_healthy

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client(
    served_store: ServedStore, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    with in_process(served_store, tmp_path_factory.mktemp("runtime")) as test_client:
        test_client.health_seen = wait_healthy(test_client)  # type: ignore[attr-defined]
        yield test_client


def _offline(store: ServedStore, windows: np.ndarray) -> np.ndarray:
    with in_store(store.directory):
        return np.asarray(mlflow.pyfunc.load_model(store.uri).predict(windows))


def test_health_is_503_until_the_model_is_loaded(client: TestClient) -> None:
    seen = client.health_seen  # type: ignore[attr-defined]
    assert seen[0] == 503 and seen[-1] == 200
    assert set(seen) == {503, 200}


def test_forecasts_equal_the_registered_models_offline_predictions(
    client: TestClient, served_store: ServedStore
) -> None:
    rng = np.random.default_rng(0)
    windows = rng.uniform(50, 500, size=(5, 48)).astype(np.float32)
    body = {"series": [{"id": f"S{i}", "history": w.tolist()} for i, w in enumerate(windows)]}
    response = client.post("/predict", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["model"] == {
        "name": "tiny",
        "version": "1",
        "run_id": answer["model"]["run_id"],
    }
    assert [f["id"] for f in answer["forecasts"]] == ["S0", "S1", "S2", "S3", "S4"]
    served = np.array([f["mean"] for f in answer["forecasts"]])
    np.testing.assert_allclose(served, _offline(served_store, windows), rtol=1e-5)


def test_longer_history_uses_its_last_window_and_horizon_truncates(
    client: TestClient, served_store: ServedStore
) -> None:
    history = np.random.default_rng(1).uniform(50, 500, size=100).astype(np.float32)
    response = client.post(
        "/predict", json={"series": [{"history": history.tolist(), "horizon": 5}]}
    )
    mean = response.json()["forecasts"][0]["mean"]
    expected = _offline(served_store, history[None, -48:])[0, :5]
    np.testing.assert_allclose(mean, expected, rtol=1e-5)


def test_short_history_is_answered_from_its_padded_window(
    client: TestClient, served_store: ServedStore
) -> None:
    season = np.random.default_rng(2).uniform(50, 500, size=24).astype(np.float32)
    response = client.post("/predict", json={"series": [{"history": season.tolist()}]})
    assert response.status_code == 200
    expected = _offline(served_store, np.tile(season, 2)[None, :])[0]
    np.testing.assert_allclose(response.json()["forecasts"][0]["mean"], expected, rtol=1e-5)


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"series": [{"history": [1.0] * 10}]}, "series[0].history", "at least 24 points"),
        ({"series": [{"history": [1.0] * 48, "horizon": 13}]}, "series[0].horizon", "trained"),
        ({"series": [{"history": [1.0] * 47 + ["x"]}]}, "series[0].history[47]", "number"),
        ({"series": []}, "series", "at least 1 item"),
        ({"series": [{"history": [1.0] * 48}] * 257}, "series", "at most 256 series"),
        ({"rows": [[1.0]]}, "series", "Field required"),
    ],
)
def test_bad_input_gets_422_naming_field_and_reason(
    client: TestClient, body: dict[str, object], field: str, reason: str
) -> None:
    response = client.post("/predict", json=body)
    assert response.status_code == 422
    problems = response.json()["detail"]
    assert any(p["field"] == field and reason in p["msg"] for p in problems), problems


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_values_get_422_not_500(client: TestClient, literal: str) -> None:
    content = '{"series": [{"history": [' + "1.0, " * 47 + literal + "]}]}"
    response = client.post(
        "/predict", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    (problem,) = response.json()["detail"]
    assert problem["field"] == "series[0].history[47]" and "finite" in problem["msg"]


def test_malformed_json_gets_422(client: TestClient) -> None:
    response = client.post(
        "/predict", content=b'{"series": [', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert "invalid JSON" in response.json()["detail"][0]["msg"]


@pytest.mark.parametrize(
    ("content_type", "named"),
    [
        ("text/plain", "'text/plain'"),
        ("application/x-www-form-urlencoded", "'application/x-www-form-urlencoded'"),  # curl -d
        (None, "no Content-Type"),
    ],
)
def test_body_not_sent_as_json_gets_415_naming_application_json(
    client: TestClient, content_type: str | None, named: str
) -> None:
    body = json.dumps({"series": [{"history": [1.0] * 48}]})  # valid, but not labelled JSON
    headers = {"content-type": content_type} if content_type else {}
    response = client.post("/predict", content=body, headers=headers)
    assert response.status_code == 415
    detail = response.json()["detail"]
    assert "Content-Type: application/json" in detail and named in detail, detail


def test_values_past_the_bound_get_422(client: TestClient) -> None:
    response = client.post("/predict", json={"series": [{"history": [1.0] * 47 + [2e15]}]})
    assert response.status_code == 422
    (problem,) = response.json()["detail"]
    assert (
        problem["field"] == "series[0].history[47]"
        and "less than or equal to 1000000000000000" in problem["msg"]
    )


def test_oversized_payload_gets_413(client: TestClient) -> None:
    big = b'{"series": [{"history": [' + b"1.0," * 2_200_000 + b"1.0]}]}"  # > 8 MiB
    response = client.post("/predict", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert "STACKCAST_MAX_PAYLOAD_BYTES" in response.json()["detail"]


def test_info_describes_model_and_batching(client: TestClient) -> None:
    info = client.get("/info").json()
    model = info["model"]
    assert (model["name"], model["version"], model["alias"]) == ("tiny", "1", "champion")
    assert (model["cell"], model["num_layers"], model["input_size"], model["horizon"]) == (
        "lstm",
        2,
        48,
        12,
    )
    assert model["validation_metric"] == "val/owa" and model["validation_metric_value"] > 0
    # the data contract: integer ds (steps of 1), scored at the config's m
    assert model["data"] == {
        "source": "file",
        "frequency": "steps",
        "freq_alias": "1",
        "seasonality": 24,
    }
    assert model["device"] == "cpu"
    assert info["batching"]["max_batch_size"] == 64 and info["batching"]["batch_timeout"] > 0


def test_metrics_count_requests_errors_and_batches(client: TestClient) -> None:
    before = client.get("/metrics").text
    client.post("/predict", json={"series": [{"history": [1.0] * 48}] * 3})
    client.post("/predict", json={"series": []})
    after = client.get("/metrics").text
    for name, labels, grew in [
        ("stackcast_http_requests_total", {"code": "200", "path": "/predict"}, 1),
        ("stackcast_http_errors_total", {"code": "422", "path": "/predict"}, 1),
        ("stackcast_http_errors_total", {"code": "200"}, 0),
        ("stackcast_batch_series_sum", {}, 3),
        ("stackcast_batch_requests_count", {}, 1),
    ]:
        change = sample_total(after, name, **labels) - sample_total(before, name, **labels)
        assert change == grew, (name, labels)
    assert "stackcast_http_request_duration_seconds_bucket" in after


def test_api_key_guards_predict_and_info_but_not_health(
    served_store: ServedStore, tmp_path: Path
) -> None:
    with in_process(served_store, tmp_path, api_key=API_KEY) as keyed:
        assert wait_healthy(keyed)[-1] == 200  # health checks carry no key
        body = {"series": [{"history": [1.0] * 48}]}
        assert keyed.post("/predict", json=body).status_code == 401
        assert keyed.post("/predict", json=body, headers={"X-API-Key": "wrong"}).status_code == 401
        assert keyed.get("/info").status_code == 401
        good = {"X-API-Key": API_KEY}
        assert keyed.post("/predict", json=body, headers=good).status_code == 200
        assert keyed.get("/info", headers=good).status_code == 200
        assert keyed.get("/metrics").status_code == 200
        # The schema says so: a 401 where the key is checked, and only there.
        paths = keyed.get("/openapi.json").json()["paths"]
        says_401 = {
            path for path, ops in paths.items() for op in ops.values() if "401" in op["responses"]
        }
        assert says_401 == {"/predict", "/info", "/litserve/info"}
        assert all(keyed.get(path).status_code == 401 for path in says_401 - {"/predict"})
        # The landing page and the docs need no key; the page keeps /info's details behind it.
        landing = keyed.get("/")
        assert landing.status_code == 200 and "X-API-Key" in landing.text
        assert served_store.uri not in landing.text and "version 1" not in landing.text
        docs = keyed.get("/docs")
        assert docs.status_code == 200
        assert all(keyed.get(url).status_code == 200 for url in read_page(docs.text).loads)


def test_openapi_documents_the_request_and_response_models(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    predict = spec["paths"]["/predict"]["post"]
    body = predict["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    answer = predict["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert body.endswith("/ForecastRequest") and answer.endswith("/ForecastResponse")
    series = spec["components"]["schemas"]["SeriesIn"]["properties"]
    assert {"id", "history", "horizon"} <= set(series)
    error = spec["components"]["schemas"]["Error"]
    assert error["required"] == ["detail"]
    for code in ("413", "415", "503", "504"):  # each with a {"detail": ...} body
        assert predict["responses"][code]["content"]["application/json"]["schema"]["$ref"].endswith(
            "/Error"
        )
    assert not any(
        "401" in op["responses"] for ops in spec["paths"].values() for op in ops.values()
    )


def test_openapi_says_what_a_newcomer_must_know(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["info"]["title"] == "stackcast"
    description = spec["info"]["description"]
    assert "Content-Type: application/json" in description and "415" in description
    assert "±1e15" in description
    history = spec["components"]["schemas"]["SeriesIn"]["properties"]["history"]
    assert (history["items"]["minimum"], history["items"]["maximum"]) == (-1e15, 1e15)
    assert "1e15" in history["description"]


def test_openapi_gives_the_media_types_the_routes_answer_in(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    expected = {"/health": "text/plain", "/metrics": "text/plain", "/": "text/html"}
    for path, codes in {"/health": {"200", "503"}, "/metrics": {"200"}, "/": {"200"}}.items():
        documented = spec["paths"][path]["get"]["responses"]
        assert codes <= set(documented), path
        answer = client.get(path)
        [media_type] = documented[str(answer.status_code)]["content"]
        assert media_type.startswith(expected[path]), (path, media_type)
        assert answer.headers["content-type"].split(";")[0] == media_type.split(";")[0], path


def test_docs_load_only_assets_the_server_serves(client: TestClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    page = read_page(response.text)
    assert "stackcast" in page.title
    assert {url.rsplit("/", 1)[-1] for url in page.loads} >= {
        "swagger-ui-bundle.js",
        "swagger-ui.css",
    }
    assert all(url.startswith("/") and not url.startswith("//") for url in page.loads), page.loads
    types = {client.get(url).headers["content-type"].split(";")[0] for url in page.loads}
    assert {"text/javascript", "text/css"} <= types


def test_landing_page_names_the_model_and_links_the_routes(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = read_page(response.text)
    assert "stackcast" in page.title
    assert "models:/tiny@champion" in response.text and "version 1" in response.text
    assert {"/docs", "/health", "/info", "/metrics"} <= set(page.links)
    assert all(client.get(link).status_code == 200 for link in page.links), page.links
