"""The web dashboard under ``/ui`` and the API docs under ``/docs``, both served from local files.

The dashboard is static HTML, CSS and JavaScript shipped inside the package (``api/static/ui``);
it talks to the API's own endpoints with the key the user types once per browser session, so it
never sees Neo4j's credentials. Swagger UI's assets come from the ``swagger-ui-bundle-v2`` wheel
(the swagger-ui-dist files, Apache-2.0) instead of FastAPI's default CDN: ``/docs`` works without
internet. ReDoc, which would load from a CDN too, is switched off in :func:`api.main.create_app`.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

STATIC = Path(__file__).resolve().parents[1] / "static" / "ui"
SWAGGER = Path(swagger_ui_path)

# Everything from this origin, nothing inline: the page can neither load nor send anything elsewhere.
UI_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
             "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
             "frame-ancestors 'none'")
UI_HEADERS = {"Content-Security-Policy": UI_POLICY, "X-Content-Type-Options": "nosniff",
              "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}


def install(app: FastAPI) -> None:
    """Mount the dashboard and the offline docs on ``app`` (created with ``docs_url=None``)."""
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")
    app.mount("/docs/static", StaticFiles(directory=SWAGGER), name="docs-static")

    @app.get("/ui", include_in_schema=False)
    async def ui_root() -> RedirectResponse:
        return RedirectResponse("/ui/")

    @app.get("/ui/", include_in_schema=False)
    async def ui_page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html", headers=UI_HEADERS)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title} API",
                                   swagger_js_url="/docs/static/swagger-ui-bundle.js",
                                   swagger_css_url="/docs/static/swagger-ui.css",
                                   swagger_favicon_url="/docs/static/favicon-32x32.png",
                                   oauth2_redirect_url="/docs/oauth2-redirect")

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def docs_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()
