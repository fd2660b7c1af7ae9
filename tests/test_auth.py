"""Authentication: logging in and out, bearer tokens, rehash on login, rate limits, roles."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, update

from servq.core.auth.tokens import tenant_of
from servq.core.models import Token, User
from tests.factories import PASSWORD, ApiClient

LOGIN = "/api/v1/auth/token"
BAD_LOGIN = "Wrong tenant, email or password."


def login(client, tenant="acme", email="owner@acme.test", password=PASSWORD, **extra):
    return client.post(LOGIN, json={"tenant": tenant, "email": email, "password": password, **extra})


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_login_issues_a_working_token(client, acme):
    manager = acme.add_user("manager")
    r = login(client, email=manager.upper(), label="laptop")
    assert r.status_code == 201, r.json
    body = r.json
    assert body["role"] == "manager" and body["tenant"] == "acme" and body["token_type"] == "Bearer"
    assert datetime.fromisoformat(body["expires_at"]).tzinfo is not None
    assert body["token"].startswith(f"sq_{acme.id.hex}_")
    me = client.get("/api/v1/me", headers=bearer(body["token"]))
    assert me.status_code == 200
    assert me.json["email"] == manager and me.json["role"] == "manager"
    assert me.json["tenant"]["slug"] == "acme" and me.json["tenant"]["id"] == str(acme.id)
    with acme.session() as s:
        assert s.scalar(select(Token.label).order_by(Token.created_at.desc()).limit(1)) == "laptop"


def test_login_failures_look_alike(client, acme, globex):
    attempts = [
        login(client, password="wrong password"),
        login(client, email="nobody@acme.test"),
        login(client, tenant="no-such-tenant"),
        # A member of globex only may not log in to acme, even with the right password.
        login(client, email="owner@globex.test"),
    ]
    for r in attempts:
        assert r.status_code == 401
        assert r.json["message"] == BAD_LOGIN
        assert "token" not in r.json


def test_login_of_deactivated_user_fails(client, factory, acme):
    with factory.session() as s:
        s.execute(update(User).where(User.email == "owner@acme.test").values(is_active=False))
        s.commit()
    r = login(client)
    assert r.status_code == 401 and r.json["message"] == BAD_LOGIN
    # Existing tokens stop working too.
    assert acme.api.get("/api/v1/me").status_code == 401


@pytest.mark.parametrize("body", [
    {},
    {"tenant": "acme", "email": "owner@acme.test"},
    {"tenant": "acme", "email": "not an email", "password": "x"},
    {"tenant": "", "email": "owner@acme.test", "password": "x"},
    {"tenant": "acme", "email": "owner@acme.test", "password": "x", "tenant_id": "x"},
])
def test_login_bad_body_is_422(client, acme, body):
    r = client.post(LOGIN, json=body)
    assert r.status_code == 422 and r.json["errors"]


def test_logout_revokes_the_token(client, acme):
    token = login(client).json["token"]
    other = login(client).json["token"]
    assert client.delete(LOGIN, headers=bearer(token)).status_code == 204
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 401
    assert client.delete(LOGIN, headers=bearer(token)).status_code == 401
    # Only the token used was revoked.
    assert client.get("/api/v1/me", headers=bearer(other)).status_code == 200


def test_expired_token_is_rejected(client, factory, acme):
    expired = factory.token(acme.id, acme.owner_email, ttl=timedelta(seconds=-1))
    r = client.get("/api/v1/me", headers=bearer(expired))
    assert r.status_code == 401 and "WWW-Authenticate" in r.headers
    # A live token that is then made to expire stops working at once.
    live = factory.token(acme.id, acme.owner_email)
    assert client.get("/api/v1/me", headers=bearer(live)).status_code == 200
    with acme.session() as s:
        s.execute(update(Token).values(expires_at=datetime.now().astimezone() - timedelta(minutes=1)))
        s.commit()
    assert client.get("/api/v1/me", headers=bearer(live)).status_code == 401


def test_malformed_and_forged_tokens_are_rejected(client, acme, globex):
    token = acme.api.token
    secret = token.split("_", 2)[2]
    forged = [
        "garbage",
        "sq_",
        "sq_nothex_" + secret,
        token + "x",
        token[:-1],
        token.upper(),
        # Tenant part switched to another real tenant, or to a tenant that does not exist.
        f"sq_{globex.id.hex}_{secret}",
        f"sq_{uuid.uuid4().hex}_{secret}",
        # Tenant part switched, secret of the other tenant's real token.
        f"sq_{acme.id.hex}_{globex.api.token.split('_', 2)[2]}",
        "sq_" + "0" * 32 + "_" + "A" * 40,
        "x" * 5000,
    ]
    for value in forged:
        r = client.get("/api/v1/me", headers=bearer(value))
        assert r.status_code == 401, value
        assert r.json["message"] == "A valid bearer token is required."
    for header in (f"Basic {token}", f"Bearer{token}", token, "Bearer", "Bearer    "):
        assert client.get("/api/v1/me", headers={"Authorization": header}).status_code == 401, header
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 200
    # The whole value must be a token: a trailing newline is not ignored.
    assert tenant_of(token) == acme.id and tenant_of(token + "\n") is None


def test_missing_authorization_is_401_with_challenge(client, acme):
    for method, url in (("get", "/api/v1/me"), ("get", "/api/v1/sites"), ("post", "/api/v1/sites"),
                        ("delete", LOGIN)):
        r = getattr(client, method)(url)
        assert r.status_code == 401, url
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
        assert r.json["message"] == "A valid bearer token is required."


def test_rehash_on_login(client, factory, acme):
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    old_hash = weak.hash(PASSWORD)
    with factory.session() as s:
        s.execute(update(User).where(User.email == acme.owner_email).values(password_hash=old_hash))
        s.commit()
    assert login(client).status_code == 201
    with factory.session() as s:
        new_hash = s.scalar(select(User.password_hash).where(User.email == acme.owner_email))
    assert new_hash != old_hash
    strong = PasswordHasher()
    assert strong.verify(new_hash, PASSWORD) and not strong.check_needs_rehash(new_hash)
    # The new hash is used from now on; a wrong password still fails.
    assert login(client).status_code == 201
    assert login(client, password="nope").status_code == 401


@pytest.fixture
def three_logins(app_config):
    """At most three login attempts a minute (set before the app is created)."""
    app_config["LOGIN_RATE_LIMIT"] = "3 per minute"
    return app_config


def test_login_rate_limit(three_logins, client, factory):
    factory.tenant("acme")
    for _ in range(3):
        assert login(client, password="wrong").status_code == 401
    r = login(client)  # even the right password is refused now
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) >= 1
    assert "Too many attempts" in r.json["message"]
    # The budget is per client address as well: another account from the same address.
    r = login(client, email="someone@acme.test")
    assert r.status_code == 429


def test_login_rate_limit_per_account_across_addresses(three_logins, client, factory):
    factory.tenant("acme")
    for i in range(3):
        r = client.post(LOGIN, json={"tenant": "acme", "email": "owner@acme.test", "password": "x"},
                        environ_base={"REMOTE_ADDR": f"10.0.0.{i}"})
        assert r.status_code == 401
    r = client.post(LOGIN, json={"tenant": "acme", "email": "owner@acme.test", "password": PASSWORD},
                    environ_base={"REMOTE_ADDR": "10.0.0.99"})
    assert r.status_code == 429


@pytest.mark.redis
def test_login_rate_limit_is_kept_in_redis(three_logins, client, factory, app):
    factory.tenant("acme")
    storage = app.extensions["servq.ratelimit"].storage
    assert "redis" in type(storage).__name__.lower()
    redis = app.extensions["servq.redis"]
    for _ in range(3):
        login(client, password="wrong")
    keys = [k.decode() if isinstance(k, bytes) else k for k in redis.keys("*")]
    assert any("login:acme:owner@acme.test" in k for k in keys), keys
    # A second app (another worker process) shares the same budget.
    from servq.core import create_app

    other = create_app(three_logins)
    try:
        r = login(other.test_client())
        assert r.status_code == 429 and r.headers["Retry-After"]
    finally:
        other.extensions["servq.engine"].dispose()


def test_viewer_may_read_but_not_write(acme):
    viewer = acme.as_role("viewer")
    r = viewer.post("/api/v1/sites", json={"code": "A", "name": "A"})
    assert r.status_code == 403
    assert "viewer" in r.json["message"] and "permission" in r.json["message"]
    assert viewer.get("/api/v1/sites").json == []
    assert viewer.get("/api/v1/me").json["role"] == "viewer"


def test_token_is_bound_to_its_membership(client, factory, acme, globex):
    """A user in two tenants gets one token per tenant; each sees only its tenant."""
    email = "consultant@example.test"
    factory.user(acme.id, email, "manager")
    factory.user(globex.id, email, "viewer")
    t_acme = login(client, tenant="acme", email=email).json
    t_globex = login(client, tenant="globex", email=email).json
    assert t_acme["role"] == "manager" and t_globex["role"] == "viewer"
    api_acme = ApiClient(client, t_acme["token"])
    api_globex = ApiClient(client, t_globex["token"])
    site = api_acme.post("/api/v1/sites", json={"code": "A", "name": "A"})
    assert site.status_code == 201
    assert api_globex.get(f"/api/v1/sites/{site.json['id']}").status_code == 404
    assert api_globex.post("/api/v1/sites", json={"code": "B", "name": "B"}).status_code == 403
    assert api_globex.get("/api/v1/me").json["tenant"]["slug"] == "globex"


@pytest.mark.parametrize("field", ["tenant", "email", "password", "label"])
def test_login_with_nul_bytes_is_a_client_error(client, acme, field):
    body = {"tenant": "acme", "email": "owner@acme.test", "password": PASSWORD}
    body[field] = body.get(field, "x") + "\x00"
    if field == "email":
        body[field] = "own\x00er@acme.test"
    r = client.post(LOGIN, json=body)
    assert 400 <= r.status_code < 500, r.json
