"""The dashboard's static files, in process: public, strict policy, uniform errors."""

from __future__ import annotations

from starlette.testclient import TestClient

from service.edge import DASHBOARD_CSP


def test_the_page_and_its_files_are_public_with_the_strict_policy(client: TestClient) -> None:
    for path, media in (
        ("/ui/", "text/html"),
        ("/ui/app.js", "text/javascript"),
        ("/ui/app.css", "text/css"),
        ("/ui/vendor/uplot/uPlot.iife.min.js", "text/javascript"),
    ):
        answer = client.get(path, headers={"X-API-Key": ""})
        assert answer.status_code == 200, path
        assert answer.headers["content-type"].startswith(media)
        assert answer.headers["content-security-policy"] == DASHBOARD_CSP.decode()
        assert answer.headers["x-request-id"]


def test_other_routes_keep_their_policy_and_a_missing_file_is_a_uniform_404(
    client: TestClient,
) -> None:
    assert client.get("/v1/sets").headers["content-security-policy"] == "frame-ancestors 'none'"
    missing = client.get("/ui/nothing.js")
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"
    assert "request_id" in missing.json()


def test_the_page_loads_only_its_own_files(client: TestClient) -> None:
    page = client.get("/ui/").text
    assert 'src="vendor/uplot/uPlot.iife.min.js"' in page
    assert 'src="app.js"' in page
    assert "http" not in page  # no other origin
    assert "<script>" not in page
    assert "style=" not in page
