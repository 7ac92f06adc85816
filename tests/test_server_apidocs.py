"""The API documentation pages (`/docs`, `/redoc`) work offline: they reference no file outside
the server, and the server serves every file they reference."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient  # noqa: E402

from matforge.server import ServerSettings, create_app  # noqa: E402

REFERENCE = re.compile(r"""(?:src|href|url)\s*[=:(]\s*['"]?([^'")\s>]+)""")


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("apidocs")
    app = create_app(f"sqlite:///{tmp / 'store.db'}", ServerSettings(model_root=tmp / "models"))
    with TestClient(app) as c:
        yield c


@pytest.mark.parametrize(
    ("page", "needed"),
    [("/docs", {"swagger-ui-bundle.js", "swagger-ui.css"}), ("/redoc", {"redoc.standalone.js"})],
)
def test_docs_pages_load_nothing_from_outside(client, page, needed):
    r = client.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html, re.I), html
    refs = [ref for ref in REFERENCE.findall(html) if not ref.startswith("#")]
    assert needed <= {ref.rsplit("/", 1)[-1] for ref in refs}, refs
    for ref in refs:
        if ref == "/openapi.json":
            continue
        asset = client.get(ref)
        assert asset.status_code == 200, ref
        assert len(asset.content) > 500, ref  # a real file, not an error page


def test_swagger_ui_is_recent_enough_for_our_openapi_version(client):
    """FastAPI writes OpenAPI 3.1, which Swagger UI renders from version 5 on (4.x shows
    "Unable to render this definition")."""
    assert client.get("/openapi.json").json()["openapi"].startswith("3.1")
    js = client.get("/docs/vendor/swagger-ui-bundle.js")
    assert js.headers["content-type"].startswith("text/javascript")
    version = re.search(r'PACKAGE_VERSION:"(\d+)\.\d+\.\d+"', js.text)
    assert version and int(version.group(1)) >= 5
    assert "openapi: 3.1.x" in js.text  # the versions it says it renders
