"""The dashboard at /ui: static files (service/ui/) that read the v1 API from the browser.

Public like the OpenAPI page (the data comes from /v1, with the visitor's key), served with
a strict Content-Security-Policy (`service.edge.DASHBOARD_CSP`): the page has no
inline script or style and loads nothing from another origin.
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

UI_DIRECTORY = Path(__file__).resolve().parent / "ui"


def build_dashboard() -> Starlette:
    return Starlette(routes=[Mount("/", StaticFiles(directory=UI_DIRECTORY, html=True), name="ui")])
