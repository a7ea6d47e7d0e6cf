"""Routes for the Streamlit workspace: browser sessions and editor drafts, and the API docs
served from local files. Registered by `study.api.create_app`, which passes its dependency
aliases in (importing them from study.api would make an import circle).

No `from __future__ import annotations` here: FastAPI reads these routes' annotations at
definition time, and some of them are the aliases passed in as arguments.
"""

from typing import Annotated, Any

from fastapi import Depends, FastAPI, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.security import HTTPAuthorizationCredentials
from fastapi.staticfiles import StaticFiles

from study.records import DraftSpec, DraftView, SessionView

DOCS_ASSETS = "/docs-assets"


def add_workspace_routes(app: FastAPI, service_dep: Any, principal: Any, bearer: Any) -> None:
    Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]

    @app.post("/v1/sessions", tags=["workspace"], status_code=201)
    def open_session(service: service_dep, creds: Credentials) -> SessionView:
        """Trade a participant token for a workspace session secret (shown once): the
        browser keeps the secret, never the token, and a reload stays signed in."""
        return service.open_web_session(creds.credentials if creds else None)

    @app.delete("/v1/sessions/current", tags=["workspace"], status_code=204)
    def end_session(service: service_dep, creds: Credentials) -> Response:
        """Sign out: the session secret in the Authorization header stops working."""
        service.end_web_session(creds.credentials if creds else None)
        return Response(status_code=204)

    @app.get("/v1/drafts/latest", tags=["workspace"])
    def latest_draft(service: service_dep, me: principal) -> DraftView | None:
        """The editor text last saved by the caller (null before the first save)."""
        return service.latest_draft(me)

    @app.put("/v1/drafts/latest", tags=["workspace"])
    def save_draft(spec: DraftSpec, service: service_dep, me: principal) -> DraftView:
        """Save the editor's text; saves within half a minute of each other replace one
        another, so the stored history is one version per half minute of typing."""
        return service.save_draft(me, spec)


def serve_docs_offline(app: FastAPI) -> None:
    """Swagger UI at /docs from the files the `swagger-ui-bundle` package ships, not a CDN:
    the API docs work on a machine with no internet. (Create the app with docs_url=None.)"""
    import swagger_ui_bundle

    app.mount(DOCS_ASSETS, StaticFiles(directory=swagger_ui_bundle.swagger_ui_path),
              name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title} — API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png")
