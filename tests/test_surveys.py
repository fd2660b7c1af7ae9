"""Survey instruments, surveys, invitations and triggers through HTTP.

Public answering is in ``test_public_surveys.py``, results in ``test_survey_results.py``;
both import the helpers defined here.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import uuid

import pytest
from marshmallow import Schema, fields, validate
from sqlalchemy import func, select

from servq.core.models import AuditEvent, OutboxEvent, SurveyInvitation, SurveyTrigger
from servq.core.plugins import RecordKind, hookimpl

SURVEYS = "/api/v1/surveys"
INSTRUMENTS = "/api/v1/surveys/instruments"
PUBLIC = "/api/v1/public/surveys"

#: A small instrument whose results are easy to compute by hand: two dimensions, a
#: reverse-scored item and an optional one.
MINI = {
    "code": "mini",
    "title": {"en": "Mini", "zh": "小问卷"},
    "scale": {"min": 1, "max": 7, "labels": {"1": {"en": "Poor", "zh": "差"}, "7": {"en": "Great"}}},
    "dimensions": [
        {"code": "a", "title": {"en": "Dimension A", "zh": "维度甲"}},
        {"code": "b", "title": {"en": "Dimension B"}},
    ],
    "items": [
        {"code": "x1", "dimension": "a", "text": {"en": "X one", "zh": "甲一"}},
        {"code": "x2", "dimension": "a", "text": {"en": "X two (negative)", "zh": "甲二"}, "reverse": True},
        {"code": "y1", "dimension": "b", "text": {"en": "Y one"}},
        {"code": "y2", "dimension": "b", "text": {"en": "Y two", "zh": "乙二"}, "required": False},
    ],
}


class VisitCustomer(Schema):
    name = fields.String()
    email = fields.Email()
    phone = fields.String()
    language = fields.String(validate=validate.OneOf(("en", "zh")))


class VisitData(Schema):
    customer = fields.Nested(VisitCustomer, allow_none=True)
    customer_name = fields.String()
    customer_phone = fields.String()


class SurveyTestPlugin:
    """A record kind whose data names the customer, to drive triggers."""

    @hookimpl
    def register_record_kinds(self):
        return [RecordKind(name="svtest.visit", schema=VisitData, statuses=("open", "done"))]


@pytest.fixture
def app_config(app_config):
    app_config["EXTRA_PLUGINS"] = [("svtest", SurveyTestPlugin())]
    return app_config


# -- helpers (also used by the other survey test modules) -------------------------------


def make_instrument(tenant, doc=MINI):
    r = tenant.api.post(INSTRUMENTS, json=doc)
    assert r.status_code == 201, r.json
    return r.json


def make_survey(tenant, instrument="servqual", **settings):
    body = {"title": {"en": "How did we do?", "zh": "我们做得怎么样?"}, "instrument": instrument, **settings}
    r = tenant.api.post(SURVEYS, json=body)
    assert r.status_code == 201, r.json
    return r.json


def invite(tenant, survey_id, **body):
    body.setdefault("customer", {"name": "Jane Doe", "email": "jane.doe@example.com",
                                 "phone": "+86 138 0013 8000"})
    r = tenant.api.post(f"{SURVEYS}/{survey_id}/invitations", json=body)
    assert r.status_code == 201, r.json
    return r.json


def answer(client, token, answers, importance=None, **extra):
    body = {"answers": answers, **extra}
    if importance is not None:
        body["importance"] = importance
    return client.post(f"{PUBLIC}/{token}", json=body)


def respond(tenant, client, survey_id, answers, importance=None, **invitation):
    """Invite and answer at once; returns the invitation."""
    inv = invite(tenant, survey_id, **invitation)
    r = answer(client, inv["token"], answers, importance)
    assert r.status_code == 201, r.json
    return inv


def observation(tenant, **extra):
    body = {"kind": "observation", "data": {"title": "Lobby"}, **extra}
    r = tenant.api.post("/api/v1/records", json=body)
    assert r.status_code == 201, r.json
    return r.json


def visit(tenant, status=None, customer=..., **flat):
    """A ``svtest.visit`` record (the tenant must have enabled ``svtest``)."""
    if customer is ...:
        customer = {"name": "Li Lei", "email": "li@example.com", "language": "zh"}
    data = {**flat}
    if customer is not None:
        data["customer"] = customer
    body = {"kind": "svtest.visit", "data": data}
    if status:
        body["status"] = status
    r = tenant.api.post("/api/v1/records", json=body)
    assert r.status_code == 201, r.json
    return r.json


def invitations_in_db(tenant):
    with tenant.session() as s:
        return list(s.scalars(select(SurveyInvitation).order_by(SurveyInvitation.created_at)))


def outbox(tenant, event_type="survey.invited"):
    with tenant.session() as s:
        return list(s.scalars(select(OutboxEvent).where(OutboxEvent.type == event_type)))


# -- instruments ----------------------------------------------------------------------------


def test_builtin_servqual_has_22_items_in_five_dimensions(acme):
    r = acme.api.get(f"{INSTRUMENTS}/builtin")
    assert r.status_code == 200
    codes = [i["code"] for i in r.json]
    assert codes == ["csat", "nps", "servqual", "servqual_1991"]
    servqual = acme.api.get(f"{INSTRUMENTS}/servqual").json
    assert servqual["builtin"] is True and servqual["id"] is None
    assert servqual["scale"]["min"] == 1 and servqual["scale"]["max"] == 7
    assert [d["code"] for d in servqual["dimensions"]] == [
        "tangibles", "reliability", "responsiveness", "assurance", "empathy"]
    items = servqual["items"]
    assert len(items) == 22
    by_dim = {}
    for n, item in enumerate(items, start=1):
        by_dim.setdefault(item["dimension"], []).append(n)
        assert item["text"]["en"] and item["text"]["zh"]
    assert by_dim == {"tangibles": [1, 2, 3, 4], "reliability": [5, 6, 7, 8, 9],
                      "responsiveness": [10, 11, 12, 13], "assurance": [14, 15, 16, 17],
                      "empathy": [18, 19, 20, 21, 22]}
    # The 1988 wording: 10-13 and 18-22 are negatively worded, hence reverse scored.
    assert [n for n, i in enumerate(items, start=1) if i["reverse"]] == [10, 11, 12, 13, 18, 19, 20, 21, 22]
    assert items[9]["text"]["en"].startswith("The company does not tell customers")
    # Reverse-scored items have no reading in the zone of tolerance's three columns.
    assert servqual["forms"] == ["single", "two_column"]
    revised = acme.api.get(f"{INSTRUMENTS}/servqual_1991").json
    assert len(revised["items"]) == 22 and not any(i["reverse"] for i in revised["items"])
    assert revised["forms"] == ["single", "two_column", "three_column"]
    nps = acme.api.get(f"{INSTRUMENTS}/nps").json
    assert nps["scale"]["min"] == 0 and nps["scale"]["max"] == 10 and nps["forms"] == ["single"]
    csat = acme.api.get(f"{INSTRUMENTS}/csat").json
    assert (csat["scale"]["min"], csat["scale"]["max"]) == (1, 5)


def test_custom_instrument_crud(acme):
    created = make_instrument(acme)
    assert created["builtin"] is False and created["version"] == 1
    assert [i["code"] for i in created["items"]] == ["x1", "x2", "y1", "y2"]
    assert created["items"][3]["required"] is False and created["items"][1]["reverse"] is True
    r = acme.api.get(INSTRUMENTS)
    assert [i["code"] for i in r.json] == ["mini"] and '"total": 1' in r.headers["X-Pagination"]

    url = f"{INSTRUMENTS}/mini"
    assert acme.api.patch(url, json={"title": {"en": "Mini 2"}}).status_code == 428
    assert acme.api.patch(url, json={"title": {"en": "Mini 2"}}, etag='"stale"').status_code == 412
    r = acme.api.update(url, {"title": {"en": "Mini 2"}})
    assert r.status_code == 200, r.json
    assert r.json["title"] == {"en": "Mini 2"} and r.json["version"] == 2
    # A change that breaks the document is refused and changes nothing.
    bad_items = [{"code": "x1", "dimension": "nope", "text": {"en": "X"}}]
    r = acme.api.update(url, {"items": bad_items})
    assert r.status_code == 422 and "items" in r.json["errors"]["json"]
    assert acme.api.get(url).json["version"] == 2

    assert acme.api.post(INSTRUMENTS, json=MINI).status_code == 409
    assert acme.api.post(INSTRUMENTS, json={**MINI, "code": "servqual"}).status_code == 409
    assert acme.api.update(f"{INSTRUMENTS}/servqual", {"title": {"en": "Mine"}}).status_code == 409
    assert acme.api.remove(url).status_code == 204
    assert acme.api.get(url).status_code == 404


@pytest.mark.parametrize("change, where", [
    ({"items": []}, "items"),
    ({"scale": {"min": 5, "max": 5}}, "scale"),
    ({"scale": {"min": 1, "max": 7, "labels": {"9": {"en": "x"}}}}, "scale"),
    ({"items": [{"code": "x", "text": {}}]}, "items"),
    ({"items": [{"code": "x", "text": {"en": "a"}}, {"code": "x", "text": {"en": "b"}}]}, "items"),
    ({"items": [{"code": "n", "text": {"en": "a"}, "metric": "nps"}]}, "items"),
    ({"items": [{"code": "x", "text": {"en": "a"}, "dimension": "zz"}]}, "items"),
    ({"code": "Bad Code"}, "code"),
    ({"tenant_id": "x"}, "tenant_id"),
])
def test_invalid_instruments_are_refused(acme, change, where):
    r = acme.api.post(INSTRUMENTS, json={**MINI, **change})
    assert r.status_code == 422, r.json
    assert where in r.json["errors"]["json"]
    assert acme.api.get(INSTRUMENTS).json == []


@pytest.mark.cross_tenant("GET /api/v1/surveys/instruments/<string:code>",
                          "PATCH /api/v1/surveys/instruments/<string:code>",
                          "DELETE /api/v1/surveys/instruments/<string:code>",
                          "GET /api/v1/surveys/instruments",
                          "POST /api/v1/surveys/instruments")
def test_instruments_are_per_tenant_and_need_manage(acme, globex):
    make_instrument(acme)
    url = f"{INSTRUMENTS}/mini"
    assert globex.api.get(url).status_code == 404
    assert globex.api.patch(url, json={"title": {"en": "x"}}, etag="*").status_code == 404
    assert globex.api.delete(url, etag="*").status_code == 404
    assert globex.api.get(INSTRUMENTS).json == []
    # globex may use the same code for its own instrument.
    make_instrument(globex)
    viewer = acme.as_role("viewer")
    agent = acme.as_role("agent")
    assert viewer.get(url).status_code == 200
    assert viewer.post(INSTRUMENTS, json={**MINI, "code": "other"}).status_code == 403
    assert agent.post(INSTRUMENTS, json={**MINI, "code": "other"}).status_code == 403
    etag = acme.api.get(url).headers["ETag"]
    assert viewer.patch(url, json={"title": {"en": "x"}}, etag=etag).status_code == 403
    assert viewer.delete(url, etag=etag).status_code == 403
    assert acme.api.get(url).json["title"] == MINI["title"]


# -- surveys --------------------------------------------------------------------------------


def test_survey_crud(acme):
    survey = make_survey(acme, instrument="servqual_1991", form="three_column", importance="optional",
                         language="zh", link_lifetime_days=7)
    assert survey["instrument_code"] == "servqual_1991" and survey["form"] == "three_column"
    assert len(survey["instrument"]["items"]) == 22
    assert survey["importance"] == "optional" and survey["language"] == "zh"
    url = f"{SURVEYS}/{survey['id']}"
    assert acme.api.get(url).json["link_lifetime_days"] == 7
    assert [s["id"] for s in acme.api.get(SURVEYS).json] == [survey["id"]]

    assert acme.api.patch(url, json={"active": False}).status_code == 428
    r = acme.api.update(url, {"active": False, "title": {"en": "Thanks"}})
    assert r.status_code == 200 and r.json["active"] is False and r.json["title"] == {"en": "Thanks"}
    assert [s["id"] for s in acme.api.get(f"{SURVEYS}?active=false").json] == [survey["id"]]
    assert acme.api.get(f"{SURVEYS}?active=true").json == []
    # The instrument and the form are fixed once the survey exists.
    r = acme.api.update(url, {"form": "single"})
    assert r.status_code == 422 and "form" in r.json["errors"]["json"]
    assert acme.api.remove(url).status_code == 204
    assert acme.api.get(url).status_code == 404


def test_survey_defaults_and_validation(acme):
    servqual = make_survey(acme)
    assert servqual["form"] == "two_column" and servqual["importance"] == "none"
    assert servqual["language"] == "en" and servqual["link_lifetime_days"] == 30
    nps = make_survey(acme, instrument="nps")
    assert nps["form"] == "single"
    cases = [
        ({"instrument": "nope"}, "instrument"),
        ({"instrument": "nps", "form": "two_column"}, "form"),
        ({"instrument": "csat", "importance": "required"}, "importance"),
        ({"form": "four_column"}, "form"),
        ({"language": "fr"}, "language"),
        ({"link_lifetime_days": 0}, "link_lifetime_days"),
        ({"triggers": [{"kind": "no_such_kind", "status": "closed"}]}, "triggers"),
        ({"triggers": [{"kind": "observation", "status": "archived"}]}, "triggers"),
        ({"triggers": [{"kind": "observation", "status": "closed"}] * 2}, "triggers"),
    ]
    for change, where in cases:
        body = {"title": {"en": "T"}, "instrument": "servqual", **change}
        r = acme.api.post(SURVEYS, json=body)
        assert r.status_code == 422, (change, r.json)
        assert where in r.json["errors"]["json"], (change, r.json)
    assert len(acme.api.get(SURVEYS).json) == 2


def test_survey_of_a_custom_instrument_keeps_its_copy(acme):
    make_instrument(acme)
    survey = make_survey(acme, instrument="mini")
    assert survey["instrument_version"] == 1 and survey["form"] == "two_column"
    acme.api.update(f"{INSTRUMENTS}/mini", {"items": [{"code": "z", "text": {"en": "Z"}}], "dimensions": []})
    again = acme.api.get(f"{SURVEYS}/{survey['id']}").json
    assert [i["code"] for i in again["instrument"]["items"]] == ["x1", "x2", "y1", "y2"]
    assert make_survey(acme, instrument="mini")["instrument_version"] == 2


def test_survey_with_invitations_cannot_be_deleted(acme):
    survey = make_survey(acme)
    invite(acme, survey["id"])
    r = acme.api.remove(f"{SURVEYS}/{survey['id']}")
    assert r.status_code == 409 and "deactivate" in r.json["message"]
    assert acme.api.get(f"{SURVEYS}/{survey['id']}").status_code == 200


@pytest.mark.cross_tenant("GET /api/v1/surveys/<uuid:survey_id>",
                          "PATCH /api/v1/surveys/<uuid:survey_id>",
                          "DELETE /api/v1/surveys/<uuid:survey_id>",
                          "GET /api/v1/surveys",
                          "GET /api/v1/surveys/<uuid:survey_id>/invitations",
                          "POST /api/v1/surveys/<uuid:survey_id>/invitations")
def test_surveys_cross_tenant_and_roles(acme, globex):
    survey = make_survey(acme)
    url = f"{SURVEYS}/{survey['id']}"
    assert globex.api.get(url).status_code == 404
    assert globex.api.patch(url, json={"active": False}, etag="*").status_code == 404
    assert globex.api.delete(url, etag="*").status_code == 404
    assert globex.api.get(SURVEYS).json == []
    assert globex.api.get(f"{url}/results").status_code == 404
    assert globex.api.get(f"{url}/invitations").status_code == 404
    assert globex.api.post(f"{url}/invitations", json={"customer": {"name": "x"}}).status_code == 404
    viewer = acme.as_role("viewer")
    agent = acme.as_role("agent")
    body = {"title": {"en": "T"}, "instrument": "nps"}
    assert viewer.post(SURVEYS, json=body).status_code == 403
    assert agent.post(SURVEYS, json=body).status_code == 403
    etag = acme.api.get(url).headers["ETag"]
    assert viewer.patch(url, json={"active": False}, etag=etag).status_code == 403
    assert agent.patch(url, json={"active": False}, etag=etag).status_code == 403
    assert viewer.delete(url, etag=etag).status_code == 403
    assert viewer.get(url).status_code == 200 and viewer.get(f"{url}/results").status_code == 200
    assert acme.api.get(url).json["active"] is True
    assert len(acme.api.get(SURVEYS).json) == 1


@pytest.mark.cross_tenant("POST /api/v1/surveys")
def test_a_survey_cannot_use_another_tenants_instrument(acme, globex):
    make_instrument(acme)
    ours = make_survey(acme, instrument="mini")
    r = globex.api.post(SURVEYS, json={"title": {"en": "T"}, "instrument": "mini"})
    assert r.status_code == 422 and "instrument" in r.json["errors"]["json"], r.json
    r = globex.api.post(SURVEYS, json={"title": {"en": "T"}, "instrument": "nps",
                                       "tenant_id": str(acme.id)})
    assert r.status_code == 422 and "tenant_id" in r.json["errors"]["json"]
    assert globex.api.get(SURVEYS).json == []
    assert [s["id"] for s in acme.api.get(SURVEYS).json] == [ours["id"]]
    assert acme.api.get(f"{SURVEYS}/{ours['id']}").json["instrument"]["code"] == "mini"


# -- invitations -------------------------------------------------------------------------------


def test_invitation_is_a_single_use_link_stored_hashed(acme):
    survey = make_survey(acme, language="zh", link_lifetime_days=10)
    before = datetime.now(timezone.utc)
    inv = invite(acme, survey["id"])
    assert inv["token"].startswith(f"sv_{acme.id.hex}_")
    assert inv["link"] == f"/api/v1/public/surveys/{inv['token']}"
    assert inv["status"] == "pending" and inv["source"] == "manual" and inv["language"] == "zh"
    expires = datetime.fromisoformat(inv["expires_at"])
    assert timedelta(days=10) - timedelta(minutes=1) < expires - before < timedelta(days=10, minutes=1)
    (row,) = invitations_in_db(acme)
    assert inv["token"] not in (row.token_hash, row.customer_email)
    assert len(row.token_hash) == 64
    # The customer gets it through the tenant's webhooks: one survey.invited event.
    (event,) = outbox(acme)
    assert event.payload["link"] == inv["link"] and event.payload["customer"]["email"] == "jane.doe@example.com"
    # send=false: the caller delivers the link itself.
    invite(acme, survey["id"], send=False)
    assert len(outbox(acme)) == 1
    # The token is shown once: reading the invitation never shows it again.
    again = acme.api.get(f"{SURVEYS}/{survey['id']}/invitations/{inv['id']}").json
    assert "token" not in again and "link" not in again


def test_customer_contacts_are_masked_without_personal_data(acme):
    survey = make_survey(acme)
    inv = invite(acme, survey["id"])
    url = f"{SURVEYS}/{survey['id']}/invitations/{inv['id']}"
    manager = acme.as_role("manager")
    assert manager.get(url).json["customer"] == {"name": "Jane Doe", "email": "jane.doe@example.com",
                                                 "phone": "+86 138 0013 8000"}
    for role in ("agent", "viewer", "inspector"):
        client = acme.as_role(role)
        masked = client.get(url).json["customer"]
        assert masked["email"] == "j***@example.com", role
        assert "Doe" not in masked["name"] and "0013" not in masked["phone"], role
        listed = client.get(f"{SURVEYS}/{survey['id']}/invitations").json
        assert listed[0]["customer"] == masked
    # An agent may invite, but sees what it sent masked, like any other read.
    agent = acme.as_role("agent")
    r = agent.post(f"{SURVEYS}/{survey['id']}/invitations", json={"customer": {"email": "li@example.com"}})
    assert r.status_code == 201 and r.json["customer"]["email"] == "l***@example.com" and r.json["token"]
    # Clear reads are audited.
    with acme.session() as s:
        reads = s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.entity == "survey_invitations", AuditEvent.action == "personal_data_read"))
    assert reads >= 1


def test_invitation_validation(acme, globex):
    survey = make_survey(acme)
    url = f"{SURVEYS}/{survey['id']}/invitations"
    theirs = observation(globex)
    now = datetime.now(timezone.utc)
    cases = [
        ({"customer": {}}, "customer"),
        ({"customer": {"email": "not-an-email"}}, "customer"),
        ({"customer": {"phone": "call me"}}, "customer"),
        ({"customer": {"name": "A"}, "language": "fr"}, "language"),
        ({"customer": {"name": "A"}, "expires_at": (now - timedelta(hours=1)).isoformat()}, "expires_at"),
        ({"customer": {"name": "A"}, "expires_at": (now + timedelta(days=400)).isoformat()}, "expires_at"),
        ({"customer": {"name": "A"}, "expires_at": "2030-01-01T00:00:00"}, "expires_at"),
        ({"customer": {"name": "A"}, "record_id": theirs["id"]}, "record_id"),
        ({"customer": {"name": "A"}, "tenant_id": str(globex.id)}, "tenant_id"),
    ]
    for body, where in cases:
        r = acme.api.post(url, json=body)
        assert r.status_code == 422, (body, r.json)
        assert where in r.json["errors"]["json"], (body, r.json)
    assert invitations_in_db(acme) == [] and outbox(acme) == []


def test_one_invitation_per_record_and_survey(acme):
    survey = make_survey(acme)
    other = make_survey(acme, instrument="nps")
    record = observation(acme)
    invite(acme, survey["id"], record_id=record["id"])
    r = acme.api.post(f"{SURVEYS}/{survey['id']}/invitations",
                      json={"customer": {"name": "B"}, "record_id": record["id"]})
    assert r.status_code == 409
    invite(acme, other["id"], record_id=record["id"])
    assert len(invitations_in_db(acme)) == 2 and len(outbox(acme)) == 2
    listed = acme.api.get(f"{SURVEYS}/{survey['id']}/invitations?record_id={record['id']}").json
    assert [i["record_id"] for i in listed] == [record["id"]]


def test_inactive_survey_invites_nobody(acme):
    survey = make_survey(acme, active=False)
    r = acme.api.post(f"{SURVEYS}/{survey['id']}/invitations", json={"customer": {"name": "A"}})
    assert r.status_code == 409 and invitations_in_db(acme) == []


def test_revoke_and_list_by_status(acme, client):
    survey = make_survey(acme, instrument="nps")
    base = f"{SURVEYS}/{survey['id']}/invitations"
    answered = respond(acme, client, survey["id"], {"recommend": 9})
    revoked = invite(acme, survey["id"])
    pending = invite(acme, survey["id"])
    expired = invite(acme, survey["id"])
    with acme.session() as s:
        row = s.get(SurveyInvitation, (acme.id, uuid.UUID(expired["id"])))
        row.expires_at = datetime.now(timezone.utc) - timedelta(minutes=1)
        s.commit()
    url = f"{base}/{revoked['id']}"
    assert acme.api.delete(url).status_code == 428
    viewer = acme.as_role("viewer")
    assert viewer.delete(url, etag=acme.api.get(url).headers["ETag"]).status_code == 403
    assert acme.api.remove(url).status_code == 204
    assert acme.api.get(url).json["status"] == "revoked"
    assert client.get(f"{PUBLIC}/{revoked['token']}").status_code == 410
    r = acme.api.remove(f"{base}/{answered['id']}")
    assert r.status_code == 409
    for status, inv in (("answered", answered), ("revoked", revoked), ("pending", pending),
                        ("expired", expired)):
        listed = acme.api.get(f"{base}?status={status}").json
        assert [i["id"] for i in listed] == [inv["id"]], status
        assert listed[0]["status"] == status
    assert len(acme.api.get(base).json) == 4
    assert acme.api.get(f"{base}?status=lost").status_code == 422


@pytest.mark.cross_tenant("GET /api/v1/surveys/<uuid:survey_id>/invitations/<uuid:invitation_id>",
                          "DELETE /api/v1/surveys/<uuid:survey_id>/invitations/<uuid:invitation_id>")
def test_invitations_cross_tenant(acme, globex):
    survey = make_survey(acme)
    inv = invite(acme, survey["id"])
    url = f"{SURVEYS}/{survey['id']}/invitations/{inv['id']}"
    assert globex.api.get(url).status_code == 404
    assert globex.api.delete(url, etag="*").status_code == 404
    assert acme.api.get(url).json["status"] == "pending"
    # An invitation is only reachable under its own survey.
    other = make_survey(acme, instrument="nps")
    assert acme.api.get(f"{SURVEYS}/{other['id']}/invitations/{inv['id']}").status_code == 404
    viewer = acme.as_role("viewer")
    r = viewer.post(f"{SURVEYS}/{survey['id']}/invitations", json={"customer": {"name": "A"}})
    assert r.status_code == 403
    assert len(invitations_in_db(acme)) == 1


# -- triggers ------------------------------------------------------------------------------------


def test_trigger_on_status_change_invites_once(acme):
    acme.enable("svtest")
    survey = make_survey(acme, triggers=[{"kind": "svtest.visit", "status": "done"}])
    assert survey["triggers"] == [{"kind": "svtest.visit", "status": "done"}]
    # A record that names no customer contact: nobody to invite.
    anonymous = visit(acme, customer={"name": "Nobody"})
    acme.api.update(f"/api/v1/records/{anonymous['id']}", {"status": "done"})
    assert invitations_in_db(acme) == []

    record = visit(acme)
    url = f"/api/v1/records/{record['id']}"
    assert invitations_in_db(acme) == []  # created "open": the trigger waits for "done"
    r = acme.api.update(url, {"status": "done"})
    assert r.status_code == 200, r.json
    (inv,) = invitations_in_db(acme)
    assert str(inv.record_id) == record["id"] and inv.source == "trigger" and inv.language == "zh"
    assert (inv.customer_name, inv.customer_email) == ("Li Lei", "li@example.com")
    # Reopened and done again: still exactly one invitation, one event.
    acme.api.update(url, {"status": "open"})
    acme.api.update(url, {"status": "done"})
    assert len(invitations_in_db(acme)) == 1 and len(outbox(acme)) == 1
    # The link works.
    assert inv.expires_at > datetime.now(timezone.utc)


def test_trigger_on_creation_and_flat_customer_fields(acme):
    acme.enable("svtest")
    make_survey(acme, instrument="nps", triggers=[{"kind": "svtest.visit", "status": None}])
    done_survey = make_survey(acme, instrument="csat", triggers=[{"kind": "svtest.visit", "status": "done"}])
    record = visit(acme, customer=None, customer_phone="+86 139 1234 5678", customer_name="Han Mei")
    (inv,) = invitations_in_db(acme)
    assert inv.customer_phone == "+86 139 1234 5678" and inv.customer_email is None
    assert inv.language == "en"  # the survey's language: the record names none
    # Created straight in the triggering status: it enters that status too.
    visit(acme, status="done")
    assert len(invitations_in_db(acme)) == 3
    assert {str(i.survey_id) for i in invitations_in_db(acme)} >= {done_survey["id"]}
    assert record["id"] in {str(i.record_id) for i in invitations_in_db(acme)}


def test_records_created_in_bulk_fire_triggers_of_their_kind_only(acme, monkeypatch):
    """``POST /records/batch`` (the import's path): a trigger watching ``svtest.visit``
    invites each visit's customer; a batch of a kind no trigger watches never reaches the
    survey hook (``record_created.wants``), so its records are written without ORM objects."""
    import servq.core.surveys.plugin as survey_hooks

    acme.enable("svtest")
    make_survey(acme, instrument="nps", triggers=[{"kind": "svtest.visit", "status": None}])
    heard = []
    hook = survey_hooks.invite_for_record
    monkeypatch.setattr(survey_hooks, "invite_for_record",
                        lambda session, record, *a, **k: heard.append(record.kind) or hook(session, record, *a, **k))
    notes = [{"kind": "observation", "data": {"title": f"n{n}"}}
             for n in range(3)]
    r = acme.api.post("/api/v1/records/batch", json={"records": notes})
    assert r.status_code == 201, r.json
    assert heard == [] and invitations_in_db(acme) == []
    visits = [{"kind": "svtest.visit", "data": {"customer": {"name": f"Guest {n}", "email": f"g{n}@example.com"}}}
              for n in range(3)]
    r = acme.api.post("/api/v1/records/batch", json={"records": visits + notes[:1]})
    assert r.status_code == 201, r.json
    assert sorted(heard) == ["observation"] + ["svtest.visit"] * 3  # one chunk: all heard
    assert sorted(i.customer_email for i in invitations_in_db(acme)) == \
        ["g0@example.com", "g1@example.com", "g2@example.com"]


def test_triggers_replaced_and_inactive_surveys_do_not_fire(acme):
    acme.enable("svtest")
    survey = make_survey(acme, triggers=[{"kind": "svtest.visit", "status": "done"},
                                         {"kind": "svtest.visit", "status": None}])
    url = f"{SURVEYS}/{survey['id']}"
    r = acme.api.update(url, {"triggers": [{"kind": "svtest.visit", "status": "open"}]})
    assert r.status_code == 200 and r.json["triggers"] == [{"kind": "svtest.visit", "status": "open"}]
    with acme.session() as s:
        assert s.scalar(select(func.count()).select_from(SurveyTrigger)) == 1
    acme.api.update(url, {"active": False})
    visit(acme)
    assert invitations_in_db(acme) == []
    acme.api.update(url, {"active": True})
    visit(acme)
    assert len(invitations_in_db(acme)) == 1
    # A kind the tenant has not enabled cannot trigger.
    r = acme.api.update(url, {"triggers": [{"kind": "svtest.other", "status": "open"}]})
    assert r.status_code == 422


def test_trigger_kinds_must_be_enabled(acme, globex):
    acme.enable("svtest")
    make_survey(acme, triggers=[{"kind": "svtest.visit", "status": "done"}])
    r = globex.api.post(SURVEYS, json={"title": {"en": "T"}, "instrument": "nps",
                                       "triggers": [{"kind": "svtest.visit", "status": "done"}]})
    assert r.status_code == 422 and "triggers" in r.json["errors"]["json"]


def _complaint_available(app) -> bool:
    from servq.core.plugins.app import get_plugins

    kind = get_plugins(app).kinds.get("complaint")
    return kind is not None and kind.workflow is not None and kind.workflow.transition("resolved", "confirm")


def test_complaint_closed_under_a_trigger_invites_the_customer_exactly_once(acme, app):
    if not _complaint_available(app):
        pytest.skip("the complaint kind (core/records/kinds/complaint.py) is not there yet")
    survey = make_survey(acme, instrument="servqual", triggers=[{"kind": "complaint", "status": "closed"}])
    r = acme.api.post("/api/v1/records", json={"kind": "complaint", "data": {
        "channel": "phone", "description": "The repair man never came.",
        "customer": {"name": "Wang Fang", "email": "wang.fang@example.com", "phone": "+86 139 0000 1111"}}})
    assert r.status_code == 201, r.json
    record = r.json
    url = f"/api/v1/records/{record['id']}"

    def take(action):
        etag = acme.api.get(url).headers["ETag"]
        r = acme.api.post(f"{url}/transitions", json={"action": action}, headers={"If-Match": etag})
        assert r.status_code in (200, 201), (action, r.json)
        return r.json

    take("acknowledge")
    take("resolve")
    assert invitations_in_db(acme) == []
    assert take("confirm")["status"] == "closed"
    (inv,) = invitations_in_db(acme)
    assert str(inv.record_id) == record["id"] and str(inv.survey_id) == survey["id"]
    assert inv.customer_email == "wang.fang@example.com" and inv.source == "trigger"
    (event,) = outbox(acme)
    assert event.payload["customer"]["email"] == "wang.fang@example.com"
    assert event.payload["record_id"] == record["id"] and "/public/surveys/sv_" in event.payload["link"]
    # Reopened and closed again: the customer is not asked twice.
    take("reopen")
    take("resolve")
    take("confirm")
    assert len(invitations_in_db(acme)) == 1 and len(outbox(acme)) == 1
    listed = acme.api.get(f"{SURVEYS}/{survey['id']}/invitations").json
    assert [i["record_id"] for i in listed] == [record["id"]]


@pytest.fixture
def rls_only(app_config):
    """Row-level security as the only layer: the ORM filter is off (PostgreSQL only)."""
    app_config["ORM_TENANT_FILTER"] = False
    return app_config


@pytest.mark.postgres
def test_rls_alone_keeps_surveys_apart(rls_only, factory, client):
    acme = factory.tenant("acme")
    globex = factory.tenant("globex")
    make_instrument(acme)
    survey = make_survey(acme, instrument="mini")
    inv = invite(acme, survey["id"])
    r = client.post(f"{PUBLIC}/{inv['token']}", json={"answers": {
        "x1": {"expectation": 5, "perception": 5}, "x2": {"expectation": 5, "perception": 5},
        "y1": {"expectation": 5, "perception": 5}}})
    assert r.status_code == 201, r.json
    base = f"{SURVEYS}/{survey['id']}"
    for url in (base, f"{base}/results", f"{base}/invitations", f"{base}/invitations/{inv['id']}",
                f"{INSTRUMENTS}/mini"):
        assert globex.api.get(url).status_code == 404, url
    assert globex.api.get(SURVEYS).json == [] and globex.api.get(INSTRUMENTS).json == []
    assert globex.api.post(f"{base}/invitations", json={"customer": {"name": "x"}}).status_code == 404
    assert acme.api.get(f"{base}/results").json["responses"] == 1
    with globex.session() as s:
        assert s.info["orm_filter"] is False
        assert s.scalars(select(SurveyInvitation)).all() == []
