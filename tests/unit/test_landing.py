"""The `/` page: what it says about the model, and links that work behind a proxy's root path."""

from __future__ import annotations

from stackcast.service.landing import Link, landing_html
from tests.html_links import read_page

LINKS = [Link("/docs", "API docs"), Link("/info", "the model", needs_key=True)]


def test_the_page_names_the_model_and_the_versions_held() -> None:
    html = landing_html("stackcast", "models:/stackcast@champion", ["3", "4"], LINKS)
    assert "models:/stackcast@champion" in html and "version 3, 4" in html
    assert read_page(html).links == ["/docs", "/info"]
    assert "needs X-API-Key" in html  # /info's link says so


def test_a_loading_model_is_said_to_be_loading() -> None:
    assert "the model is loading" in landing_html("stackcast", "models:/m/1", [], LINKS)


def test_without_a_model_the_page_points_to_info() -> None:
    html = landing_html("stackcast", None, ["3"], LINKS)
    assert "version" not in html and "/info" in html


def test_links_start_with_the_root_path() -> None:
    page = read_page(landing_html("stackcast", None, [], LINKS, root="/forecast"))
    assert page.links and all(link.startswith("/forecast/") for link in page.links), page.links


def test_text_is_escaped() -> None:
    html = landing_html("<b>", "models:/<script>@x", [], [Link("/a'b", "<i>")])
    assert "<script>" not in html and "<b>" not in html and "<i>" not in html
    assert read_page(html).links == ["/a'b"]
