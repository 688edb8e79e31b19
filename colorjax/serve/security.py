"""The app's outer layer, in front of every route: the Host check and the security headers of every answer.

- Host: a page on another site can point its own name at 127.0.0.1 (DNS rebinding) and then read the app as if it
  were that site; the browser still sends that site's name in `Host`. So the app answers only the names it was
  started for (`allowed_hosts`: the loopback names, `--host` and `--allowed-hosts`) and refuses any other with 400.
- Headers: the app's pages are never framed (`X-Frame-Options: DENY` and CSP `frame-ancestors 'none'`: a page on
  another port of the same host could otherwise frame the history with its Delete buttons), run only the app's own
  script and style files (no inline script or style: the templates carry none), leak no URL to other sites
  (`Referrer-Policy`), and a file is never re-interpreted as another type (`nosniff`). The API pages /docs and
  /redoc (Swagger UI and ReDoc from `fastapi-offline`) start with an inline script or style of the package's own,
  and show no user data: they get the same policy but with inline script and style allowed.

A pure ASGI middleware (not Starlette's BaseHTTPMiddleware): it only adds headers to the start of the answer, so
image files still stream.
"""

from __future__ import annotations

from collections.abc import Iterable

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
APP_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
DOCS_PAGES = ("/docs", "/redoc", "/docs/oauth2-redirect")
SECURITY_HEADERS = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


def allowed_hosts(host: str, extra: Iterable[str] = ()) -> list[str]:
    """The Host names a server bound to `host` answers: the loopback names, `host` itself unless it is a wildcard
    address (0.0.0.0, ::: every name of the machine, which the user lists in `extra`), and `extra`."""
    names = [*LOOPBACK_HOSTS]
    if host not in ("0.0.0.0", "::", ""):
        names.append(host)
    names.extend(extra)
    return sorted({_normalize(name) for name in names if name.strip()})


def host_name(header: str) -> str:
    """The name in a Host header, without its port and brackets, lower case: "[::1]:8000" -> "::1"."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    if header.count(":") == 1:  # name:port (a bare IPv6 address without brackets is not a valid Host)
        return header.split(":", 1)[0]
    return header


def _normalize(name: str) -> str:
    return host_name(name.strip().strip("[]") if name.count(":") > 1 else name)


class SecurityMiddleware:
    """Refuses requests for other Host names (when `hosts` is given) and adds the security headers to every answer."""

    def __init__(self, app, hosts: Iterable[str] | None):
        self.app = app
        self.hosts = None if hosts is None else {_normalize(name) for name in hosts}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if self.hosts is not None:
            given = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
            if host_name(given) not in self.hosts:
                return await _refuse_host(given, sorted(self.hosts), send)
        policy = DOCS_POLICY if scope["path"] in DOCS_PAGES else APP_POLICY
        extra = [(k.encode(), v.encode()) for k, v in {**SECURITY_HEADERS, "content-security-policy": policy}.items()]

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _refuse_host(given: str, hosts: list[str], send) -> None:
    body = (
        f"This server does not answer to the Host {given[:100]!r}; it answers to {', '.join(hosts)} "
        "(start it with --allowed-hosts NAME to add a name).\n"
    ).encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
    await send({"type": "http.response.start", "status": 400, "headers": headers})
    await send({"type": "http.response.body", "body": body})
