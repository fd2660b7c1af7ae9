"""Each request is served on its own: its own ``g``, its own authentication, its own
session, even when the process already has an application context pushed.

``servq serve`` runs gunicorn inside the CLI's application context, which every worker
inherits; Flask reuses a pushed context, so without care the first caller's identity
(``g.membership``) and session (``g.db``) would carry over to every later request.
"""

from __future__ import annotations

import pytest
from flask import g

from servq.core.auth.tokens import CallerMembership, CallerTenant, CallerUser


def test_a_pushed_app_context_does_not_carry_the_caller_over(app, client, acme, globex):
    with app.app_context():
        assert acme.api.get("/api/v1/me").json["tenant"]["slug"] == acme.slug
        # No token: refused, although the previous request of this context authenticated.
        r = client.get("/api/v1/me")
        assert r.status_code == 401
        assert client.get("/api/v1/records").status_code == 401
        # A bogus token is refused too, and another tenant's token is that tenant's.
        bogus = client.get("/api/v1/me", headers={"Authorization": "Bearer sq_" + "0" * 32 + "_" + "x" * 30})
        assert bogus.status_code == 401
        assert globex.api.get("/api/v1/me").json["tenant"]["slug"] == globex.slug
        assert acme.api.get("/api/v1/me").json["tenant"]["slug"] == acme.slug
        # Nothing of the requests is left in the surrounding context.
        assert "membership" not in g and "db" not in g


def test_a_pushed_app_context_does_not_share_records(app, client, acme, globex):
    with app.app_context():
        created = acme.api.post("/api/v1/records", json={"kind": "observation",
                                                          "data": {"title": "Wet floor"}})
        assert created.status_code == 201
        record = created.json["id"]
        assert globex.api.get(f"/api/v1/records/{record}").status_code == 404
        assert client.get(f"/api/v1/records/{record}").status_code == 401
        listed = globex.api.get("/api/v1/records")
        assert listed.status_code == 200 and listed.json == []


def test_caller_snapshots_are_read_only(app, acme):
    """``g.tenant``, ``g.membership`` and ``g.user`` are snapshots read with the token:
    assigning to them fails loudly instead of being silently lost."""
    seen = {}

    @app.get("/_caller_probe")
    def probe():  # pragma: no cover - body checked through the response
        from servq.core.api.context import authenticate_request

        authenticate_request()
        seen.update(tenant=g.tenant, membership=g.membership, user=g.user)
        try:
            g.membership.role = "viewer"
        except AttributeError:
            return {"frozen": True}
        return {"frozen": False}

    r = acme.api.get("/_caller_probe")
    assert r.status_code == 200 and r.json == {"frozen": True}
    assert isinstance(seen["tenant"], CallerTenant) and seen["tenant"].slug == acme.slug
    assert isinstance(seen["membership"], CallerMembership) and seen["membership"].role == "owner"
    assert isinstance(seen["user"], CallerUser) and seen["user"].email == acme.owner_email


def _authenticated(app, token):
    from servq.core.auth.tokens import authenticate
    from servq.core.db.session import new_session

    session = new_session(app)
    return session, authenticate(session, token)


def test_authentication_brings_the_tenant_facts_along(app, acme, globex):
    """One query gives the caller and what every request needs about its tenant: the
    enabled plugins, the standards revision, the kinds its survey triggers watch."""
    from sqlalchemy import update

    from servq.core.standards.store import STANDARDS_REVISION
    from servq.core.surveys.invitations import SURVEY_TRIGGER_KINDS
    from servq.core.models import Survey, SurveyTrigger, Tenant

    with app.app_context():
        session, caller = _authenticated(app, acme.api.token)
        assert caller.tenant.id == acme.id and caller.membership.role == "owner"
        assert session.info[STANDARDS_REVISION] == (acme.id, 0)
        assert session.info[SURVEY_TRIGGER_KINDS] == (acme.id, frozenset())
        session.close()

        with acme.session() as s:
            s.execute(update(Tenant).where(Tenant.id == acme.id)
                      .values(standards_revision=Tenant.standards_revision + 3))
            surveys = [Survey(title={"en": name}, instrument_code="csat", instrument_version=1,
                              instrument={}, form="single", active=active)
                       for name, active in (("live", True), ("retired", False))]
            s.add_all(surveys)
            s.flush()
            s.add_all([SurveyTrigger(survey_id=surveys[0].id, kind="observation", status=None),
                       SurveyTrigger(survey_id=surveys[0].id, kind="complaint", status="closed"),
                       SurveyTrigger(survey_id=surveys[1].id, kind="inspection", status=None)])
            s.commit()

        session, caller = _authenticated(app, acme.api.token)
        assert session.info[STANDARDS_REVISION] == (acme.id, 3)
        assert session.info[SURVEY_TRIGGER_KINDS] == (acme.id, frozenset({"observation", "complaint"}))
        session.close()
        # Another tenant sees none of it.
        session, caller = _authenticated(app, globex.api.token)
        assert caller.tenant.id == globex.id
        assert session.info[STANDARDS_REVISION] == (globex.id, 0)
        assert session.info[SURVEY_TRIGGER_KINDS] == (globex.id, frozenset())
        session.close()


def test_revoked_expired_and_unknown_tokens_authenticate_nobody(app, acme):
    from datetime import timedelta

    from sqlalchemy import update

    from servq.core.auth.tokens import hash_token
    from servq.core.db import utcnow
    from servq.core.models import Token

    with app.app_context():
        session, caller = _authenticated(app, acme.api.token[:-2] + "zz")
        assert caller is None and session.tenant_id is None
        session.close()
        for values in ({"expires_at": utcnow() - timedelta(seconds=1)}, {"revoked_at": utcnow()}):
            with acme.session() as s:
                s.execute(update(Token).where(Token.token_hash == hash_token(acme.api.token))
                          .values(**{"expires_at": utcnow() + timedelta(days=1), "revoked_at": None,
                                     **values}))
                s.commit()
            session, caller = _authenticated(app, acme.api.token)
            assert caller is None and session.tenant_id is None
            session.close()
            assert acme.api.get("/api/v1/me").status_code == 401


def test_nul_characters_are_refused_wherever_they_hide(acme):
    """The before-request check looks at the raw body first: only a body that can hold a
    NUL (the escape \\u0000 or a zero byte) is parsed and walked."""
    import json

    escaped = json.dumps({"code": "N1", "name": "a\x00b"})  # NUL as the JSON escape
    assert "\\u0000" in escaped
    r = acme.api.post("/api/v1/sites", data=escaped, headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json["errors"]["json"] == {"name": ["NUL characters are not allowed."]}
    nested = acme.api.post("/api/v1/records", json={"kind": "observation",
                                                    "data": {"title": "t", "tags": ["ok", "b\x00d"]}})
    assert nested.status_code == 422 and "data" in nested.json["errors"]["json"]
    utf16 = json.dumps({"code": "N2", "name": "a\x00b"}).encode("utf-16")
    r = acme.api.post("/api/v1/sites", data=utf16, headers={"Content-Type": "application/json"})
    assert r.status_code == 422
    assert acme.api.get("/api/v1/sites?q=a%00b").status_code == 422
    # A backslash followed by "u0000" is text, not a NUL: accepted as it is.
    literal = acme.api.post("/api/v1/sites", json={"code": "N3", "name": "a\\u0000b"})
    assert literal.status_code == 201 and literal.json["name"] == "a\\u0000b"
    assert [s["code"] for s in acme.api.get("/api/v1/sites").json] == ["N3"]


def test_there_is_no_cookie_session(app, acme):
    """Bearer tokens only: no Set-Cookie, and writing to ``flask.session`` is refused."""
    from flask import session

    r = acme.api.get("/api/v1/me", headers={"Cookie": "session=forged.value"})
    assert r.status_code == 200 and "Set-Cookie" not in r.headers
    with app.test_request_context("/"):
        app.preprocess_request()
        assert dict(session) == {}
        with pytest.raises(RuntimeError, match="no cookie session"):
            session["user"] = "x"
