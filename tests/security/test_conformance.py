"""The API answers as its OpenAPI schema says (issue #18 §5, schemathesis's conformance findings):

* a method a path does not offer is a 405 naming the ones it does (``Allow``), OPTIMADE included;
* a string the schema calls valid is not refused for being blank: fields that are stripped of
  surrounding spaces are patterned to hold a non-space character, so ``" "`` is invalid by the
  schema itself, not only by the server.

The 400s that remain for schema-valid requests depend on the content (a range whose minimum is
above its maximum, a formula or element symbol that does not exist, a page cursor the server did
not make, an OPTIMADE sort field or response format not offered); they are listed in
docs/security.md.
"""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
jsonschema_rs = pytest.importorskip("jsonschema_rs")

from fastapi.testclient import TestClient  # noqa: E402

from matforge.server import ServerSettings, create_app  # noqa: E402

METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def app_and_schema(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("conformance")
    app = create_app(f"sqlite:///{tmp / 'store.db'}", ServerSettings(model_root=tmp / "models"))
    with TestClient(app) as client:
        yield client, client.get("/openapi.json").json()
    app.state.matforge.store.close()


def _concrete(path: str) -> str:
    # any value will do: routing, not the handler, answers an unsupported method
    return path.replace("{", "").replace("}", "")


def test_an_unsupported_method_is_a_405_naming_the_allowed_ones(app_and_schema):
    client, schema = app_and_schema
    checked = 0
    for path, operations in schema["paths"].items():
        documented = {m for m in operations if m in METHODS}
        for method in sorted(set(METHODS) - documented):
            r = client.request(method.upper(), _concrete(path))
            assert r.status_code == 405, (method, path, r.status_code, r.text)
            allowed = {m.strip().lower() for m in r.headers.get("allow", "").split(",") if m}
            assert documented <= allowed, (method, path, r.headers.get("allow"))
            checked += 1
    assert any(p.startswith("/optimade") for p in schema["paths"]) and checked > 100


def _stripped_fields():
    """(model.field, JSON schema of the field) of every request field the server strips."""
    import inspect

    from pydantic import BaseModel, TypeAdapter

    from matforge.server import schemas

    for name, model in vars(schemas).items():
        if not (inspect.isclass(model) and issubclass(model, BaseModel)):
            continue
        for field, info in model.model_fields.items():
            if any(getattr(m, "strip_whitespace", False) for m in info.metadata):
                annotated = info.rebuild_annotation()
                yield f"{name}.{field}", TypeAdapter(annotated).json_schema()


def test_blank_strings_are_invalid_by_the_schema_wherever_the_server_strips_them():
    """A field the server strips of surrounding spaces must refuse "   " in its schema, else a
    schema-valid request is refused (a 422 on valid data, schemathesis's positive-data check)."""
    fields = dict(_stripped_fields())
    assert {"MeasurementBatch.unit", "ProjectCreate.name", "DesignCreate.goal"} <= set(fields)
    allowed_blank = [name for name, spec in fields.items() if jsonschema_rs.is_valid(spec, "   ")]
    assert allowed_blank == []
    assert all(jsonschema_rs.is_valid(spec, "x") for spec in fields.values())
