"""Property-based API testing with schemathesis: every GET/POST operation of the OpenAPI schema,
valid and invalid inputs, authenticated — no 5xx, every status code and body as documented."""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, Phase, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from matforge.server import ServerSettings, create_app  # noqa: E402
from matforge.server.testing import user_headers  # noqa: E402

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
_HEADERS: dict[str, str] = {}


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory, tiny_xrd_model):
    from fastapi.testclient import TestClient
    from schemathesis.config import SchemathesisConfig

    tmp = tmp_path_factory.mktemp("fuzz")
    app = create_app(
        f"sqlite:///{tmp / 'store.db'}",
        ServerSettings(
            model_root=tmp / "models", max_upload_bytes=20_000, max_upload_rows=200, job_workers=1,
            xrd_model=tiny_xrd_model,
        ),
    )
    headers = user_headers(app.state.matforge.engine, "fuzzer")
    user_headers(app.state.matforge.engine, "other")
    _HEADERS.update(headers)
    with TestClient(app) as client:  # some data, so that lists and OPTIMADE have entries
        pid = client.post(
            "/api/v1/projects", json={"name": "seed", "visibility": "public"}, headers=headers
        ).json()["id"]
        rows = [{"formula": f, "value": v} for f, v in [("Fe2O3", 2.1), ("NiO", 3.7), ("ZnO", 3.3)]]
        client.post(
            f"/api/v1/projects/{pid}/measurements",
            headers=headers,
            json={"property": "band_gap", "unit": "eV", "rows": rows, "source": "10.1000/seed"},
        )
    config = SchemathesisConfig()
    config.projects.default.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
        max_examples=25,
        deterministic=True,
        database="none",
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)
    yield schema.include(method=["GET", "POST"])
    app.state.matforge.store.close()


def test_api_conforms_to_its_schema(api_schema):
    """25 valid and 25 invalid examples per operation (deterministic); all failures listed."""
    from hypothesis import given
    from hypothesis.errors import Unsatisfiable

    failures = []
    n_operations = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        n_operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=25,
                deadline=None,
                derandomize=True,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def run(case):
                case.call_and_validate(headers=_HEADERS, checks=CHECKS)

            try:
                run()
            except Unsatisfiable:  # no invalid input exists (an operation without parameters)
                assert mode is GenerationMode.NEGATIVE
            except Exception as exc:  # noqa: BLE001 — collect, report all at the end
                failures.append(
                    f"{operation.label} [{mode.value}]: {type(exc).__name__}: {exc}"[:3000]
                )
    assert n_operations >= 25
    assert not failures, "\n\n".join(failures)
