"""Tokens and accounts of `matforge serve` (issue #18 section 4): tokens that expire, revoking one
token by id, listing a user's tokens, disabling a user; and job results that follow the current
access to the projects they were computed from. On SQLite and (with MATFORGE_TEST_PG_URL)
PostgreSQL."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from matforge.server import ServerSettings, create_app  # noqa: E402
from matforge.server.auth import (  # noqa: E402
    AccountError,
    add_user,
    list_tokens,
    new_token,
    parse_duration,
    revoke_token,
    set_user_disabled,
)
from matforge.server.testing import user_headers, wait_for_job  # noqa: E402

API = "/api/v1"
T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock(monkeypatch):
    """The server's clock, frozen at T0 until a test moves it (``clock.now = ...``)."""
    state = SimpleNamespace(now=T0)
    monkeypatch.setattr("matforge.server.clock.now", lambda: state.now)
    return state


@pytest.fixture
def server(store_url, tmp_path):
    settings = ServerSettings(model_root=tmp_path / "models", job_poll_s=0.05)
    app = create_app(store_url, settings)
    engine = app.state.matforge.engine
    with TestClient(app) as client:
        yield SimpleNamespace(client=client, app=app, engine=engine, url=store_url)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- expiry --------------------------------------------------------------------------------


def test_durations_are_days_hours_or_minutes():
    assert parse_duration("90d") == timedelta(days=90)
    assert parse_duration("12h") == timedelta(hours=12)
    assert parse_duration("30m") == timedelta(minutes=30)
    for bad in ("", "0d", "-1d", "90", "1y", "1.5h", "d", "12 hours"):
        with pytest.raises(AccountError, match="invalid duration"):
            parse_duration(bad)


def test_an_expired_token_is_a_401_that_says_it_expired(server, clock):
    c = server.client
    add_user(server.engine, "alice")
    token = new_token(server.engine, "alice", expires_in=timedelta(hours=12))
    forever = new_token(server.engine, "alice")
    assert c.get(f"{API}/me", headers=bearer(token)).json() == {"name": "alice"}

    clock.now = T0 + timedelta(hours=12) - timedelta(seconds=1)
    assert c.get(f"{API}/me", headers=bearer(token)).status_code == 200
    clock.now = T0 + timedelta(hours=12)
    r = c.get(f"{API}/me", headers=bearer(token))
    assert r.status_code == 401
    assert "expired" in r.json()["detail"] and "2026-12-07T00:00:00Z" in r.json()["detail"]
    assert r.headers["www-authenticate"] == "Bearer"
    # OPTIMADE refuses it the same way
    r = c.get("/optimade/v1/structures", headers=bearer(token))
    assert r.status_code == 401 and "expired" in r.text
    # a token without expiry is not affected, and listing shows which one expired
    clock.now = T0 + timedelta(days=3650)
    assert c.get(f"{API}/me", headers=bearer(forever)).status_code == 200
    states = [(t.expires_at, t.state()) for t in list_tokens(server.engine, "alice")]
    assert states == [(T0 + timedelta(hours=12), "expired"), (None, "active")]


def test_a_token_cannot_be_made_already_expired(server):
    add_user(server.engine, "alice")
    with pytest.raises(AccountError, match="future"):
        new_token(server.engine, "alice", expires_in=timedelta(0))


# --- revoke one, list, disable ---------------------------------------------------------------


def test_one_token_is_revoked_by_id_and_the_others_keep_working(server, clock):
    c = server.client
    add_user(server.engine, "alice")
    laptop = new_token(server.engine, "alice", "laptop")
    robot = new_token(server.engine, "alice", "robot")
    ids = {t.label: t.id for t in list_tokens(server.engine, "alice")}
    clock.now = T0 + timedelta(minutes=1)
    info = revoke_token(server.engine, ids["robot"])
    assert info.label == "robot" and info.revoked_at == T0 + timedelta(minutes=1)
    assert info.state() == "revoked"
    r = c.get(f"{API}/me", headers=bearer(robot))
    assert r.status_code == 401 and "revoked" in r.json()["detail"]
    assert c.get(f"{API}/me", headers=bearer(laptop)).status_code == 200
    # again: nothing changes; an unknown id is an error that says what to do
    assert revoke_token(server.engine, ids["robot"]).revoked_at == T0 + timedelta(minutes=1)
    with pytest.raises(AccountError, match="no token with id 999"):
        revoke_token(server.engine, 999)


def test_listing_shows_every_token_but_never_its_secret(server, clock):
    add_user(server.engine, "alice")
    add_user(server.engine, "bob")
    secrets = [new_token(server.engine, "alice", "a"), new_token(server.engine, "bob", "b")]
    tokens = list_tokens(server.engine, "alice")
    assert [(t.user, t.label, t.created_at, t.revoked_at) for t in tokens] == [
        ("alice", "a", T0, None)
    ]
    assert not any(s in repr(tokens) for s in secrets)
    with pytest.raises(AccountError, match="no user 'nobody'"):
        list_tokens(server.engine, "nobody")


def test_last_use_is_recorded_off_the_request_and_coarsely(server, clock):
    if server.url.startswith("sqlite") and ":memory:" in server.url:
        pytest.skip("in-memory SQLite records no last use")
    add_user(server.engine, "alice")
    token = new_token(server.engine, "alice")
    assert list_tokens(server.engine, "alice")[0].last_used_at is None

    def last_used(expected):
        deadline = time.monotonic() + 30  # the write runs on a thread of its own
        while (seen := list_tokens(server.engine, "alice")[0].last_used_at) != expected:
            assert time.monotonic() < deadline, seen
            time.sleep(0.02)

    clock.now = T0 + timedelta(minutes=1)
    assert server.client.get(f"{API}/me", headers=bearer(token)).status_code == 200
    last_used(T0 + timedelta(minutes=1))
    clock.now = T0 + timedelta(minutes=2)  # within the resolution: not written again
    server.client.get(f"{API}/me", headers=bearer(token))
    clock.now = T0 + timedelta(minutes=7)
    server.client.get(f"{API}/me", headers=bearer(token))
    last_used(T0 + timedelta(minutes=7))


def test_a_disabled_user_is_refused_with_every_token_until_enabled(server):
    c = server.client
    A = user_headers(server.engine, "alice")
    second = bearer(new_token(server.engine, "alice"))
    B = user_headers(server.engine, "bob")
    set_user_disabled(server.engine, "alice", True)
    for headers in (A, second):
        r = c.get(f"{API}/projects", headers=headers)
        assert r.status_code == 401 and "disabled" in r.json()["detail"]
    assert c.get(f"{API}/me", headers=B).status_code == 200
    set_user_disabled(server.engine, "alice", False)
    assert c.get(f"{API}/me", headers=A).json() == {"name": "alice"}
    with pytest.raises(AccountError, match="no user"):
        set_user_disabled(server.engine, "nobody", True)


# --- the commands ----------------------------------------------------------------------------


def test_token_and_user_commands(server):
    from matforge.cli.main import app

    run = CliRunner().invoke
    db = ["--db", server.url]
    assert run(app, ["user", "add", "alice", *db]).exit_code == 0
    r = run(app, ["token", "new", "alice", "--expires", "90d", "--label", "laptop", *db])
    assert r.exit_code == 0, r.output
    token = r.output.strip().splitlines()[0]
    assert token.startswith("mf_")
    assert run(app, ["token", "new", "alice", "--expires", "soon", *db]).exit_code != 0

    r = run(app, ["token", "list", "alice", *db])
    assert r.exit_code == 0, r.output
    assert "laptop" in r.output and "active" in r.output and token not in r.output
    token_id = list_tokens(server.engine, "alice")[0].id
    expires = list_tokens(server.engine, "alice")[0].expires_at
    assert expires is not None and timedelta(days=89) < expires - datetime.now(UTC) <= timedelta(
        days=90
    )

    r = run(app, ["token", "revoke", str(token_id), *db])
    assert r.exit_code == 0 and "revoked" in r.output, r.output
    assert list_tokens(server.engine, "alice")[0].revoked_at is not None
    assert run(app, ["token", "revoke", "999", *db]).exit_code != 0
    # the old form still revokes every token of a user
    new_token(server.engine, "alice")
    r = run(app, ["token", "revoke", "--user", "alice", *db])
    assert r.exit_code == 0 and "revoked 1 token(s)" in r.output, r.output

    assert run(app, ["user", "disable", "alice", *db]).exit_code == 0
    assert "disabled" in run(app, ["user", "list", *db]).output
    assert run(app, ["user", "enable", "alice", *db]).exit_code == 0
    assert "disabled" not in run(app, ["user", "list", *db]).output
    assert run(app, ["user", "disable", "nobody", *db]).exit_code != 0


# --- job results follow access ---------------------------------------------------------------

GAPS = [("Fe2O3", 2.1), ("NiO", 3.7), ("ZnO", 3.3), ("TiO2", 3.0), ("MgO", 7.8), ("Al2O3", 8.8)]


def test_job_results_follow_the_current_access_to_their_project(server):
    """Bob trains a model on alice's shared project; when she makes it private again, or
    removes him, his job (status, metrics) is hidden like any object he cannot see."""
    c = server.client
    A, B = user_headers(server.engine, "alice"), user_headers(server.engine, "bob")
    r = c.post(f"{API}/projects", json={"name": "oxides", "visibility": "private"}, headers=A)
    pid = r.json()["id"]
    rows = [{"formula": f, "value": v} for f, v in GAPS]
    body = {"property": "band_gap", "unit": "eV", "rows": rows}
    assert c.post(f"{API}/projects/{pid}/measurements", json=body, headers=A).status_code == 201
    r = c.put(f"{API}/projects/{pid}/members/bob", json={"role": "viewer"}, headers=A)
    assert r.status_code in (200, 201), r.text
    body = {"project_id": pid, "property": "band_gap", "n_estimators": 10}
    r = c.post(f"{API}/models", json=body, headers=B)
    assert r.status_code == 202, r.text
    job_id = r.json()["job"]["id"]
    job = wait_for_job(c, B, job_id)
    assert job["status"] == "succeeded", job
    assert [j["id"] for j in c.get(f"{API}/jobs", headers=B).json()] == [job_id]

    def hidden_from_bob():
        missing = c.get(f"{API}/jobs/job_0000000000000000", headers=B)
        hidden = c.get(f"{API}/jobs/{job_id}", headers=B)
        assert hidden.status_code == missing.status_code == 404
        assert hidden.json() == missing.json()
        assert c.get(f"{API}/jobs", headers=B).json() == []

    # private again: bob keeps his membership row but not his access, nor his job's result
    assert c.patch(f"{API}/projects/{pid}", json={"visibility": "private"}, headers=A).is_success
    hidden_from_bob()
    # shared again: readable again (nothing was deleted)
    assert c.patch(f"{API}/projects/{pid}", json={"visibility": "shared"}, headers=A).is_success
    assert c.get(f"{API}/jobs/{job_id}", headers=B).json()["status"] == "succeeded"
    # removed from the project: hidden again
    assert c.delete(f"{API}/projects/{pid}/members/bob", headers=A).status_code == 204
    hidden_from_bob()
    # a public project is readable by everyone, so the job is bob's again
    assert c.patch(f"{API}/projects/{pid}", json={"visibility": "public"}, headers=A).is_success
    assert c.get(f"{API}/jobs/{job_id}", headers=B).status_code == 200


def test_upgrade_from_0005_gives_existing_jobs_their_projects(store_url):
    """0006: jobs queued before it get the projects they read back from what they name, and
    existing tokens keep working without expiry."""
    from alembic import command

    from matforge.store import Store, accounts
    from matforge.store import campaigns as t
    from matforge.store.database import _alembic_config
    from matforge.store.schema import projects

    Store(store_url).close()
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:
        command.downgrade(_alembic_config(conn), "0005")
    with engine.begin() as conn:
        assert "job_projects" not in sa.inspect(conn).get_table_names()
        uid = conn.execute(
            sa.insert(accounts.users).values(name="alice", created_at=T0)
        ).inserted_primary_key[0]
        conn.execute(
            sa.insert(accounts.api_tokens).values(
                user_id=uid, token_hash="0" * 64, label="old", created_at=T0
            )
        )
        p1, p2 = (
            conn.execute(sa.insert(projects).values(name=n, created_at=T0)).inserted_primary_key[0]
            for n in ("a", "b")
        )

        def job(kind, params):
            return conn.execute(
                sa.insert(accounts.jobs).values(
                    kind=kind, owner_id=uid, status="succeeded", params=params, created_at=T0
                )
            ).inserted_primary_key[0]

        train = job("train_model", {})
        model = conn.execute(
            sa.insert(accounts.models).values(
                owner_id=uid,
                project_id=p1,
                job_id=train,
                name="m",
                property="band_gap",
                unit="eV",
                created_at=T0,
            )
        ).inserted_primary_key[0]
        campaign = conn.execute(
            sa.insert(t.campaigns).values(
                name="c", config={}, created_at=T0, created_by="alice", project_id=p2
            )
        ).inserted_primary_key[0]
        screen = job("screen", {"model_id": model})
        design = job("generate_design", {"model_id": model})
        suggest = job("campaign_suggest", {"campaign_id": campaign, "n": 1})
        sample = job("generate_sample", {"n": 5})
    engine.dispose()
    with Store(store_url) as store:  # upgrades to head
        with store.engine.connect() as conn:
            jp = accounts.job_projects
            pairs = set(map(tuple, conn.execute(sa.select(jp.c.job_id, jp.c.project_id))))
        assert pairs == {(train, p1), (screen, p1), (design, p1), (suggest, p2)}
        assert sample not in {j for j, _ in pairs}
        (token,) = list_tokens(store.engine, "alice")
        assert token.label == "old" and token.expires_at is None and token.state() == "active"
