"""A browser page uses the server's cookie: its POSTs need Jupyter's XSRF token, like any API."""

from __future__ import annotations

import json
from http.cookies import SimpleCookie

from tornado.httpclient import AsyncHTTPClient


async def test_cookie_posts_need_the_xsrf_token(api, jp_serverapp, jp_base_url, jp_http_port):
    client = AsyncHTTPClient()
    token = jp_serverapp.identity_provider.token
    root = f"http://127.0.0.1:{jp_http_port}{jp_base_url}"
    login = await client.fetch(
        f"{root}tree?token={token}", raise_error=False, follow_redirects=False
    )
    cookies = SimpleCookie()
    for header in login.headers.get_list("Set-Cookie"):
        cookies.load(header)
    assert any(name.startswith("username-") for name in cookies), login.headers
    if "_xsrf" not in cookies:
        page = await client.fetch(
            f"{root}login", raise_error=False, headers={"Cookie": _cookie_header(cookies)}
        )
        for header in page.headers.get_list("Set-Cookie"):
            cookies.load(header)
    xsrf = cookies["_xsrf"].value
    body = json.dumps({"command": "echo from-browser", "sessionId": "__DISABLE_SESSION__"})

    refused = await client.fetch(
        f"{api.url}/api/execute",
        method="POST",
        body=body,
        headers={"Cookie": _cookie_header(cookies)},
        raise_error=False,
    )
    assert refused.code == 403
    assert json.loads(refused.body)["code"] == "PERMISSION_DENIED"

    allowed = await client.fetch(
        f"{api.url}/api/execute",
        method="POST",
        body=body,
        raise_error=False,
        headers={"Cookie": _cookie_header(cookies), "X-XSRFToken": xsrf},
    )
    assert allowed.code == 200, allowed.body
    assert json.loads(allowed.body)["stdout"] == "from-browser\n"


def _cookie_header(cookies: SimpleCookie) -> str:
    return "; ".join(f"{name}={morsel.value}" for name, morsel in cookies.items())
