"""The API documentation pages load nothing from outside the server, down to the files their
scripts fetch: the Content-Security-Policy would block it, and a lab network may have no
internet. (The HTML pages themselves are checked in tests/test_server_apidocs.py.)"""

from __future__ import annotations

import re

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient  # noqa: E402

from matforge.server import ServerSettings, create_app  # noqa: E402

REFERENCE = re.compile(r"""(?:src|href)\s*=\s*['"]([^'"]+)""")
#: what makes a browser fetch a URL by itself: an element's src (attribute or React prop) or
#: a CSS url(); a plain link (href) is only followed when clicked
EXTERNAL_LOAD = re.compile(r"""(?:\bsrc\s*[:=]\s*|url\(\s*)['"`]?(?:https?:)?//[a-z0-9.-]+""", re.I)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("docs")
    app = create_app(f"sqlite:///{tmp / 'store.db'}", ServerSettings(model_root=tmp / "models"))
    with TestClient(app) as c:
        yield c


@pytest.mark.parametrize("page", ["/redoc", "/docs"])
def test_docs_pages_and_their_assets_load_no_external_url(client, page):
    html = client.get(page).text
    assets = [ref for ref in REFERENCE.findall(html) if ref.startswith("/") and ref.endswith(
        (".js", ".css"))]  # fmt: skip
    assert assets, html
    for ref in assets:
        r = client.get(ref)
        assert r.status_code == 200, ref
        found = EXTERNAL_LOAD.findall(r.text)
        assert not found, (ref, found)


def test_redoc_bundle_has_no_redocly_cdn_logo_but_is_otherwise_intact(client):
    js = client.get("/docs/vendor/redoc.standalone.js")
    assert js.headers["content-type"].startswith("text/javascript")
    assert "cdn.redoc.ly" not in js.text
    assert 'alt:"redocly logo"' in js.text and len(js.content) > 1_000_000  # the same bundle
