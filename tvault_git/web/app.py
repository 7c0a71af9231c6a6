"""The app factory: routes, the Host/token checks and security headers of the live ``git tvault ui``.

Routes only parse the request and pick a template; the page contexts come from
pages.py and every registry read happens below that, in registry/.
"""

from __future__ import annotations

import hmac
import json
import os
import tempfile
from typing import Any

import pygit2
from flask import Flask, Response, g, render_template, request, send_file

from tvault_git.errors import InvalidInput, RefNotFound, TvaultError
from tvault_git.gitutil.repo import open_repo
from tvault_git.registry import query
from tvault_git.textfmt import fmt_config, fmt_value, short_date
from tvault_git.web import pages
from tvault_git.web.links import Links, download_name

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATES = os.path.join(HERE, "templates")
STATIC = os.path.join(HERE, "static")
PER_PAGE = 50
MAX_PER_PAGE = 500
MAX_COMPARE = 50
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
LOOPBACK_NAMES = ["localhost", "127.0.0.1", "::1", "[::1]"]
TOKEN_COOKIE = "tvault_token"


def jinja_setup(app: Flask) -> None:
    """Autoescaping everywhere and the value filters the templates use (live app and export alike)."""
    app.jinja_env.autoescape = True  # every template, whatever its extension
    app.jinja_env.filters["v"] = lambda x: "-" if x is None else fmt_value(x)
    app.jinja_env.filters["cfg"] = fmt_config
    app.jinja_env.filters["date"] = short_date
    app.jinja_env.filters["short"] = lambda s: (s or "")[:10]
    app.jinja_env.filters["shape"] = lambda s: (
        "(" + ", ".join(str(d) for d in (s or [])) + ("," if s and len(s) == 1 else "") + ")"
    )
    app.jinja_env.filters["num"] = lambda x: "-" if x is None else (f"{x:.4g}" if isinstance(x, float) else str(x))
    app.jinja_env.filters["json"] = lambda x: json.dumps(x, sort_keys=True)


def create_app(repo_path: str = ".", *, host: str | None = None, token: str | None = None) -> Flask:
    """The live app over the repository at ``repo_path`` (read on every request).

    DNS rebinding: a web page whose name re-resolves to 127.0.0.1 would otherwise read every page
    and weight. Only loopback names and the bound ``host`` are answered (``TRUSTED_HOSTS``; other
    ``Host`` headers get 400). ``token``: required on every request (``?token=`` once, then a
    cookie), for a server bound to a non-loopback address, where any Host must be allowed.
    """
    app = Flask("tvault_git.web", template_folder=TEMPLATES, static_folder=STATIC, static_url_path="/static")
    allowed = {h.strip("[]").lower() for h in LOOPBACK_NAMES + ([host] if host else [])}
    jinja_setup(app)
    path = open_repo(repo_path).path  # fail fast, one line, when this is not a repository
    L = Links()

    def repo() -> pygit2.Repository:
        return pygit2.Repository(path)

    def page(template: str, status: int = 200, **ctx: Any) -> Response:
        return Response(render_template(template, L=L, **ctx), status=status, mimetype="text/html")

    @app.errorhandler(TvaultError)
    def _tvault_error(e: TvaultError) -> Response:
        status = 404 if isinstance(e, RefNotFound) else 400
        return page("error.html", status=status, message=str(e))

    @app.errorhandler(404)
    def _not_found(e: Any) -> Response:
        return page("error.html", status=404, message="no such page")

    @app.before_request
    def _check_host_and_token() -> Response | None:
        if token is None:
            raw = request.headers.get("Host", "")
            name = raw[1 : raw.index("]")] if raw.startswith("[") and "]" in raw else raw.rsplit(":", 1)[0]
            if name.lower() not in allowed:
                return Response(
                    "tvault ui answers only its own address (localhost)\n", status=400, mimetype="text/plain"
                )
            return None
        given = request.args.get("token")
        if given is not None and hmac.compare_digest(given, token):
            g.tvault_set_token = True  # remembered in a cookie (after_request): later links need no token
            return None
        if hmac.compare_digest(request.cookies.get(TOKEN_COOKIE, ""), token):
            return None
        return page(
            "error.html", status=403, message="this server needs its access token: open the URL it printed at start"
        )

    @app.after_request
    def _headers(resp: Response) -> Response:
        if token is not None and g.get("tvault_set_token"):
            resp.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="Strict")
        resp.headers["Content-Security-Policy"] = CSP
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["X-Frame-Options"] = "DENY"
        return resp

    @app.get("/")
    def entries() -> Response:
        f = pages.Filters.from_args(request.args)
        pg = _int(request.args.get("page"), 1)
        per = min(_int(request.args.get("per"), PER_PAGE), MAX_PER_PAGE)
        ctx = pages.entries_page(repo(), f, pg, per)
        return page("entries.html", status=400 if ctx["error"] else 200, **ctx)

    @app.get("/entry/<ref>")
    def entry(ref: str) -> Response:
        return page("entry.html", **pages.entry_page(repo(), ref))

    @app.get("/compare")
    def compare() -> Response:
        r = repo()
        ids = [i for v in request.args.getlist("ids") for i in v.split(",") if i.strip()]
        a, b = request.args.get("a"), request.args.get("b")
        if a and not b:
            prev = pages.previous_of(r, a)
            if prev is None:
                raise RefNotFound(f"entry {a[:10]} has no earlier entry with the same name to compare with")
            a, b = prev, a
        if a and b:
            return page("compare.html", **pages.compare_page(r, a, b))
        if len(ids) == 2:
            return page("compare.html", **pages.compare_page(r, ids[0], ids[1]))
        if len(ids) < 2:
            raise InvalidInput("pick at least two entries to compare")
        if len(ids) > MAX_COMPARE:
            raise InvalidInput(f"pick at most {MAX_COMPARE} entries to compare")
        return page("compare_many.html", t=pages.metrics_table(r, ids))

    @app.get("/models")
    def models_index() -> Response:
        return page("models.html", **pages.models_page(repo()))

    @app.get("/model/<path:name>")
    def model(name: str) -> Response:
        return page("history.html", **pages.history_page(repo(), name))

    @app.get("/download/<eid>.safetensors")
    def download(eid: str) -> Response:
        from tvault_git.api import read

        r = repo()
        e = query.lookup(r, eid)
        fd, tmp = tempfile.mkstemp(suffix=".safetensors")
        os.close(fd)
        try:
            read.export(e.id, tmp, r)
            fh = open(tmp, "rb")
        finally:
            os.unlink(tmp)  # the open handle keeps the bytes until the response is sent
        name = f"{e.manifest.get('name') or 'entry'}-{e.short}.safetensors"
        return send_file(fh, mimetype="application/octet-stream", as_attachment=True, download_name=download_name(name))

    return app


def _int(v: Any, default: int) -> int:
    try:
        return int(v)
    except (TypeError, ValueError):
        return default


__all__ = ["create_app", "jinja_setup"]
