"""Evaluations through HTTP: stored on create and change, re-scored on demand, kept per
version, refused input, the ``record_evaluated`` hook, tenancy and roles."""

from __future__ import annotations

import json
import uuid

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

import tests.sample_plugin as sample
from servq.cli import make_cli
from servq.core.models import Action, AuditEvent, Clock, Evaluation, Record
from servq.core.records.evaluate import evaluate_records
from servq.core.records.pipeline import RecordInvalid

RECORDS = "/api/v1/records"
NOTE = "sample.note"


# Every test here runs with tests/sample_plugin.py loaded as ``sample`` (conftest.py).
pytestmark = pytest.mark.sample_plugin


def put_standard(tenant, code: str, *, document=None, overrides=None) -> int:
    """Store a new version of one of ``tenant``'s standards through
    ``PUT /api/v1/standards/<code>``; returns its version number."""
    url = f"/api/v1/standards/{code}"
    current = tenant.api.get(url)
    etag = current.headers["ETag"] if current.status_code == 200 else None
    body = {"document": document} if document is not None else {"overrides": overrides}
    r = tenant.api.put(url, json=body, etag=etag)
    assert r.status_code in (200, 201), r.json
    return r.json["version"]


def note(tenant, **data):
    body = {"kind": NOTE, "occurred_at": "2026-03-02T09:00:00+08:00",
            "data": {"text": "Guest asked for towels", "priority": 2, **data}}
    r = tenant.api.post(RECORDS, json=body)
    assert r.status_code == 201, r.json
    return r.json


def rows(tenant, model=Evaluation) -> list:
    with tenant.session() as s:
        return list(s.scalars(select(model)))


def test_evaluation_stored_on_create(acme):
    acme.enable("sample")
    record = note(acme)
    r = acme.api.get(f"{RECORDS}/{record['id']}/evaluation")
    assert r.status_code == 200, r.json
    e = r.json
    assert e["record_id"] == record["id"]
    assert (e["standard_code"], e["standard_version"]) == ("sample.note_quality", 1)
    # reviewed (3) fails, priority 2 is even (1), no rude words (1): 2 of 5.
    assert (e["total"], e["max_total"], e["percent"]) == (2.0, 5.0, 40.0)
    assert (e["grade"], e["passed"], e["complete"], e["failed_critical"]) == ("poor", False, True, [])
    outcomes = {item["code"]: item["outcome"] for item in e["items"]}
    assert outcomes == {"reviewed": "fail", "priority_even": "pass", "polite": "pass"}
    polite = next(item for item in e["items"] if item["code"] == "polite")
    assert polite["evidence"]["phrases"][0] == {"phrase": "不知道", "kind": "forbidden", "found": False,
                                                "at": [], "matched": []}
    assert len(rows(acme)) == 1


def test_phrases_fold_traditional_characters_and_stay_within_sentences(acme):
    acme.enable("sample")
    put_standard(acme, "sample.note_quality",
                 overrides={"items": {"polite": {"rule": {"required": ["再见"]}}}})

    def polite(text):
        record = note(acme, text=text)
        e = acme.api.get(f"{RECORDS}/{record['id']}/evaluation").json
        item = next(item for item in e["items"] if item["code"] == "polite")
        return item["outcome"], {p["phrase"]: p["matched"] for p in item["evidence"]["phrases"]}, e

    # Traditional characters: 再見 is the required 再见.
    assert polite("您好，請稍等。再見")[:2] == ("pass", {"不知道": [], "再见": ["再見"]})
    # "不" ends a sentence, "知道" starts the next: the forbidden 不知道 was not said.
    assert polite("您看行不？知道您着急。再见")[:2] == ("pass", {"不知道": [], "再见": ["再见"]})
    outcome, matched, e = polite("這個我不，知道。再見")
    assert (outcome, matched["不知道"]) == ("fail", ["不，知道"])
    assert e["failed_critical"] == ["polite"] and e["percent"] == 0


def test_evaluation_replaced_on_change(acme):
    acme.enable("sample")
    record = note(acme)
    first = acme.api.get(f"{RECORDS}/{record['id']}/evaluation").json
    r = acme.api.update(f"{RECORDS}/{record['id']}",
                        {"data": {"text": "Towels brought", "priority": 4, "reviewed": True}})
    assert r.status_code == 200, r.json
    e = acme.api.get(f"{RECORDS}/{record['id']}/evaluation").json
    assert (e["percent"], e["grade"], e["passed"]) == (100.0, "good", True)
    assert e["id"] == first["id"] and e["evaluated_at"] >= first["evaluated_at"]
    assert len(rows(acme)) == 1
    # A change that changes nothing does not re-score.
    r = acme.api.update(f"{RECORDS}/{record['id']}", {"status": "open"})
    assert r.status_code == 200
    assert acme.api.get(f"{RECORDS}/{record['id']}/evaluation").json["evaluated_at"] == e["evaluated_at"]


def test_soft_delete_keeps_the_evaluation_but_hides_it(acme):
    acme.enable("sample")
    record = note(acme)
    assert acme.api.remove(f"{RECORDS}/{record['id']}").status_code == 204
    assert acme.api.get(f"{RECORDS}/{record['id']}/evaluation").status_code == 404
    assert len(rows(acme)) == 1


def test_critical_failure_scores_zero_and_opens_an_action(acme):
    acme.enable("sample")
    record = note(acme, text="我不知道", reviewed=True)
    e = acme.api.get(f"{RECORDS}/{record['id']}/evaluation").json
    assert (e["total"], e["percent"], e["passed"], e["failed_critical"]) == (0.0, 0.0, False, ["polite"])
    [action] = rows(acme, Action)
    assert (action.source, action.item_code, action.standard_code) == ("critical", "polite",
                                                                       "sample.note_quality")
    # fix_within = "2 days" after the record's occurred_at (2026-03-02T01:00Z).
    assert action.due_at.isoformat() == "2026-03-04T01:00:00+00:00"


def test_reevaluate_uses_the_version_in_force_older_records_keep_theirs(app, acme):
    acme.enable("sample")
    old = note(acme)
    assert acme.api.get(f"{RECORDS}/{old['id']}/evaluation").json["standard_version"] == 1
    # The tenant makes "reviewed" count for less: version 2.
    assert put_standard(acme, "sample.note_quality",
                        overrides={"items": {"reviewed": {"weight": 1}}}) == 2
    new = note(acme)
    e_new = acme.api.get(f"{RECORDS}/{new['id']}/evaluation").json
    assert (e_new["standard_version"], e_new["percent"]) == (2, pytest.approx(200 / 3))
    # The older record keeps version 1 until it is scored again.
    e_old = acme.api.get(f"{RECORDS}/{old['id']}/evaluation").json
    assert (e_old["standard_version"], e_old["percent"]) == (1, 40.0)
    r = acme.api.post(f"{RECORDS}/{old['id']}/evaluate")
    assert r.status_code == 200, r.json
    assert [(e["standard_version"], e["percent"]) for e in r.json] == [(2, pytest.approx(200 / 3))]
    assert acme.api.get(f"{RECORDS}/{old['id']}/evaluation").json["standard_version"] == 2
    assert len(rows(acme)) == 2


def test_several_standards_one_row_each(app, acme):
    acme.enable("sample")
    put_standard(acme, "acme.note_length", document={
        "title": {"en": "Note length", "zh": "备注长度"}, "applies_to": [NOTE],
        "method": "deduction", "pass_mark": 50,
        "items": [{"code": "typos", "title": {"en": "Typos", "zh": "错别字"},
                   "dimension": "reliability", "rule": {"type": "deduction", "points": 10}}]})
    record = note(acme)
    r = acme.api.get(f"{RECORDS}/{record['id']}/evaluations")
    assert r.status_code == 200
    assert [e["standard_code"] for e in r.json] == ["acme.note_length", "sample.note_quality"]
    assert r.headers["X-Pagination"]
    # The first by code by default; ?standard= picks one.
    assert acme.api.get(f"{RECORDS}/{record['id']}/evaluation").json["standard_code"] == "acme.note_length"
    one = acme.api.get(f"{RECORDS}/{record['id']}/evaluation?standard=sample.note_quality").json
    assert one["standard_code"] == "sample.note_quality"
    r = acme.api.get(f"{RECORDS}/{record['id']}/evaluation?standard=nope")
    assert r.status_code == 404 and "nope" in r.json["message"]
    assert acme.api.get(f"{RECORDS}/{record['id']}/evaluation?standard=Bad%20Code").status_code == 422


def test_record_without_standard_has_no_evaluation(acme):
    r = acme.api.post(RECORDS, json={"kind": "observation", "data": {"title": "Lobby floor wet"}})
    assert r.status_code == 201
    rid = r.json["id"]
    assert acme.api.get(f"{RECORDS}/{rid}/evaluation").status_code == 404
    assert acme.api.get(f"{RECORDS}/{rid}/evaluations").json == []
    r = acme.api.post(f"{RECORDS}/{rid}/evaluate")
    assert r.status_code == 200 and r.json == []
    assert rows(acme) == []


def test_value_the_rule_cannot_judge_is_422_and_writes_nothing(app, acme):
    # A tenant standard that measures the observation's title: a text is not a number.
    put_standard(acme, "acme.titles", document={
        "title": {"en": "Titles", "zh": "标题"}, "applies_to": ["observation"],
        "method": "weighted", "pass_mark": 50,
        "items": [{"code": "length", "title": {"en": "Length", "zh": "长度"},
                   "dimension": "tangibles", "rule": {"type": "measure", "field": "title", "max": 10}}]})
    r = acme.api.post(RECORDS, json={"kind": "observation", "data": {"title": "Lobby floor wet"}})
    assert r.status_code == 422, r.json
    message = r.json["errors"]["json"]["data"]["title"][0]
    assert "length" in message and "acme.titles" in message
    with acme.session() as s:
        assert s.scalar(select(func.count()).select_from(Record)) == 0
        assert s.scalar(select(func.count()).select_from(Evaluation)) == 0
        assert s.scalar(select(func.count()).select_from(AuditEvent)
                        .where(AuditEvent.entity == "records")) == 0


def test_hook_record_evaluated(acme, globex):
    acme.enable("sample")
    record = note(acme)
    [call] = sample.calls("record_evaluated")
    assert call[1] == acme.id
    assert str(call[2]["record_id"]) == record["id"]
    assert call[2]["standards"] == [("sample.note_quality", 1, 40.0)]
    # Fired again on change and on POST .../evaluate, with the stored rows.
    acme.api.update(f"{RECORDS}/{record['id']}", {"data": {"text": "ok", "priority": 2, "reviewed": True}})
    acme.api.post(f"{RECORDS}/{record['id']}/evaluate")
    assert [c[2]["standards"] for c in sample.calls("record_evaluated")] == [
        [("sample.note_quality", 1, 40.0)], [("sample.note_quality", 1, 100.0)],
        [("sample.note_quality", 1, 100.0)]]
    # Not for a tenant that has not enabled the plugin, nor for a record nothing applies to.
    sample.CALLS.clear()
    assert globex.api.post(RECORDS, json={"kind": "observation", "data": {"title": "x"}}).status_code == 201
    assert sample.calls("record_evaluated") == []


def test_hook_records_evaluated(app, acme, globex, tmp_path):
    acme.enable("sample")
    record = note(acme)
    # One call per write: a record created over HTTP is a write of one.
    [call] = sample.calls("records_evaluated")
    assert call[1] == acme.id
    assert call[2]["records"] == [(uuid.UUID(record["id"]), NOTE, [("sample.note_quality", 40.0, 3)])]
    # A batch is one write: one call with every record, in the order given.
    sample.CALLS.clear()
    body = {"records": [{"kind": NOTE, "occurred_at": "2026-03-02T09:00:00+08:00",
                         "data": {"text": f"note {n}", "priority": 2, "reviewed": n % 2 == 0}} for n in range(3)]}
    r = acme.api.post(f"{RECORDS}/batch", json=body)
    assert r.status_code == 201, r.json
    [call] = sample.calls("records_evaluated")
    assert [(str(rid), scores) for rid, _kind, scores in call[2]["records"]] == [
        (item["id"], [("sample.note_quality", 100.0 if n % 2 == 0 else 40.0, 3)])
        for n, item in enumerate(r.json["records"])]
    # An import: one call per chunk (views of the rows, the evaluations' items decoded).
    sample.CALLS.clear()
    lines = [json.dumps({"kind": NOTE, "occurred_at": "2026-03-03T09:00:00+08:00",
                         "data": {"text": f"imported {n}", "priority": 2}}) for n in range(5)]
    path = tmp_path / "notes.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = CliRunner().invoke(make_cli(app_factory=lambda: app),
                                ["records", "import", "--tenant", acme.slug, "--chunk", "2", str(path)])
    assert result.exit_code == 0, result.output
    calls = sample.calls("records_evaluated")
    assert [len(c[2]["records"]) for c in calls] == [2, 2, 1]
    assert all(scores == [("sample.note_quality", 40.0, 3)] for c in calls for _i, _k, scores in c[2]["records"])
    # Not for a tenant that has not enabled the plugin.
    sample.CALLS.clear()
    assert globex.api.post(RECORDS, json={"kind": "observation", "data": {"title": "x"}}).status_code == 201
    assert sample.calls("records_evaluated") == []


@pytest.mark.cross_tenant("GET /api/v1/records/<uuid:record_id>/evaluation",
                          "GET /api/v1/records/<uuid:record_id>/evaluations",
                          "POST /api/v1/records/<uuid:record_id>/evaluate")
def test_cross_tenant_404(acme, globex):
    acme.enable("sample")
    globex.enable("sample")
    record = note(acme)
    for url in (f"{RECORDS}/{record['id']}/evaluation", f"{RECORDS}/{record['id']}/evaluations"):
        r = globex.api.get(url)
        assert r.status_code == 404, url
    before = rows(acme)[0].evaluated_at
    assert globex.api.post(f"{RECORDS}/{record['id']}/evaluate").status_code == 404
    assert rows(acme)[0].evaluated_at == before
    assert rows(globex) == []


def test_roles(acme):
    acme.enable("sample")
    record = note(acme)
    viewer = acme.as_role("viewer")
    assert viewer.get(f"{RECORDS}/{record['id']}/evaluation").status_code == 200
    assert viewer.get(f"{RECORDS}/{record['id']}/evaluations").status_code == 200
    before = rows(acme)[0].evaluated_at
    assert viewer.post(f"{RECORDS}/{record['id']}/evaluate").status_code == 403
    assert rows(acme)[0].evaluated_at == before
    assert acme.as_role("agent").post(f"{RECORDS}/{record['id']}/evaluate").status_code == 200
    from tests.factories import ApiClient

    assert ApiClient(acme.api.client, None).get(f"{RECORDS}/{record['id']}/evaluation").status_code == 401


def test_bulk_evaluation(app, acme):
    """``evaluate_records`` (used by imports and batches): inserts, updates by key, removes
    rows of standards that stopped applying, opens actions, fires the hook per record."""
    acme.enable("sample")
    extra = {"title": {"en": "Priority", "zh": "优先级"}, "applies_to": [NOTE], "method": "weighted",
             "pass_mark": 50, "items": [{"code": "urgent", "title": {"en": "Urgent", "zh": "紧急"},
                                         "dimension": "responsiveness",
                                         "rule": {"type": "measure", "field": "priority", "max": 2}}]}
    put_standard(acme, "acme.priority", document=extra)
    ids = [note(acme, priority=p)["id"] for p in (1, 2, 4)]
    before = {(e.record_id, e.standard_code): e.id for e in rows(acme)}
    assert len(before) == 6
    # The extra standard stops applying to notes; the first note turns rude.
    put_standard(acme, "acme.priority", document={**extra, "applies_to": ["observation"]})
    sample.CALLS.clear()
    with app.app_context(), acme.session() as s:
        records = list(s.scalars(select(Record).order_by(Record.occurred_at, Record.id)))
        records = sorted(records, key=lambda r: ids.index(str(r.id)))
        records[0].data = {**records[0].data, "text": "不知道"}
        stored = evaluate_records(s, records)
        s.commit()
    assert [(str(r["record_id"]), r["standard_code"]) for r in stored] == \
        [(i, "sample.note_quality") for i in ids]
    after = rows(acme)
    assert {(e.record_id, e.standard_code): e.id for e in after} == \
        {key: value for key, value in before.items() if key[1] == "sample.note_quality"}
    percents = {str(e.record_id): e.percent for e in after}
    assert percents == {ids[0]: 0.0, ids[1]: 40.0, ids[2]: 40.0}
    [action] = rows(acme, Action)
    assert (str(action.record_id), action.item_code) == (ids[0], "polite")
    assert [c[2]["standards"] for c in sample.calls("record_evaluated")] == \
        [[("sample.note_quality", 1, p)] for p in (0.0, 40.0, 40.0)]


def test_bulk_evaluation_refuses_bad_values_by_position(app, acme):
    acme.enable("sample")
    ids = [note(acme)["id"] for _ in range(3)]
    with app.app_context(), acme.session() as s:
        records = sorted(s.scalars(select(Record)), key=lambda r: ids.index(str(r.id)))
        records[2].data = {**records[2].data, "priority": "high"}  # sample.even needs a number
        with pytest.raises(RecordInvalid) as caught:
            evaluate_records(s, records)
        assert list(caught.value.errors) == [2]
        assert "priority_even" in caught.value.errors[2]["data"]["priority"][0]
        s.rollback()
    assert {e.percent for e in rows(acme)} == {40.0} and len(rows(acme)) == 3


def test_stored_items_are_the_engines(app):
    """The fast serialisers write exactly what ``Evaluation.as_dict()`` gives."""
    import json
    from datetime import datetime, timezone

    from servq.core.evaluation.evaluations import items_json, json_items
    from servq.core.scoring import evaluate, parse_standard

    standard = parse_standard({
        "code": "x.all", "version": 1, "title": {"en": "All", "zh": "全部"}, "applies_to": ["x"],
        "method": "weighted", "pass_mark": 50, "items": [
            {"code": "c", "title": {"en": "c", "zh": "c"}, "dimension": "tangibles", "rule": {"type": "check"}},
            {"code": "m", "title": {"en": "m", "zh": "m"}, "dimension": "tangibles",
             "rule": {"type": "measure", "target": 5, "tolerance": 1}},
            {"code": "d", "title": {"en": "d", "zh": "d"}, "dimension": "reliability",
             "rule": {"type": "deduction", "points": 2, "cap": 3}},
            {"code": "p", "title": {"en": "p", "zh": "p"}, "dimension": "empathy",
             "rule": {"type": "phrases", "field": "t", "required": ["您好"], "forbidden": ["不知道"]}},
            {"code": "dl", "title": {"en": "dl", "zh": "dl"}, "dimension": "responsiveness",
             "rule": {"type": "deadline", "start": "a", "stop": "b", "limit": "1h"}},
            {"code": "open", "title": {"en": "o", "zh": "o"}, "dimension": "responsiveness",
             "rule": {"type": "deadline", "start": "a", "stop": "never", "limit": "1h"}}]})
    values = {"c": "pass", "m": 5.5, "d": ["late", "rude"], "t": "您好，我不知道",
              "a": "2026-01-01T09:00:00+08:00", "b": "2026-01-01T09:30:00+08:00"}
    result = evaluate(standard, values, datetime(2026, 1, 2, tzinfo=timezone.utc))
    assert json_items(result) == result.as_dict()["items"]
    assert json.loads(items_json(result)) == result.as_dict()["items"]


def test_items_serialised_by_orjson_are_what_json_writes():
    """``items_json`` (orjson, for bulk imports on PostgreSQL) writes the JSON ``json.dumps``
    writes of the JSON-safe items, whatever a rule put in its evidence, or falls back to
    it: NaN stays NaN (which PostgreSQL then refuses, as before), a key that is not a
    string becomes its ``str``, a huge integer stays exact."""
    import enum
    import json
    from datetime import datetime, timedelta, timezone
    from types import MappingProxyType

    from servq.core.evaluation.evaluations import items_json, json_items
    from servq.core.scoring import ItemOutcome, Outcome
    from servq.core.scoring.engine import Evaluation as Scored

    class Colour(enum.Enum):
        RED = "red"

    def scored(evidence, points=1.0):
        return Scored("x", 1, "weighted", datetime(2026, 1, 2, tzinfo=timezone.utc),
                      (ItemOutcome("a", Outcome.PASS, points, 1.0, None, evidence),),
                      1.0, 1.0, 100.0, None, True, (), True)

    cases = [scored(evidence) for evidence in (
        MappingProxyType({"x": frozenset({1})}), {"t": timedelta(seconds=90)}, {"e": Colour.RED},
        {1: "one", None: "none"}, {"big": 10 ** 30}, {"n": None, "nested": [(1, (2.5, "三"))]},
        {"at": datetime(2026, 1, 1, 8, tzinfo=timezone(timedelta(hours=8)))},
        {"nan": float("nan")}, {"inf": [1.0, float("-inf")]})]
    cases.append(scored({}, points=float("nan")))
    for result in cases:
        assert items_json(result).decode() == json.dumps(json_items(result), separators=(",", ":")) \
            or json.loads(items_json(result)) == json_items(result)
    assert b"NaN" in items_json(cases[-3]) and b"-Infinity" in items_json(cases[-2])
    assert b"NaN" in items_json(cases[-1])


def test_non_finite_numbers_are_found_wherever_items_json_skips_looking():
    """``items_json`` skips the phrases rule's evidence (``TextEvidence``: no float) and
    looks through shared read-only evidence once: a NaN anywhere else is still written as
    ``json`` writes it, however many times the same shared evidence comes."""
    import json
    from datetime import datetime, timezone

    from servq.core.evaluation.evaluations import items_json, json_items
    from servq.core.scoring import ItemOutcome, Outcome
    from servq.core.scoring.engine import Evaluation as Scored
    from servq.core.scoring.rules import FrozenEvidence, TextEvidence

    def scored(*evidences, share=None):
        return Scored("x", 1, "deduction", datetime(2026, 1, 2, tzinfo=timezone.utc),
                      tuple(ItemOutcome(f"i{n}", Outcome.PASS, 1.0, 1.0, share, evidence)
                            for n, evidence in enumerate(evidences)), 1.0, 1.0, 100.0, None, True, (), True)

    shared = FrozenEvidence({"limit": [1.0, float("nan")]})
    text = TextEvidence(phrases=[{"phrase": "您好", "found": False, "at": (), "matched": ()}])
    for result in (scored(text, shared), scored(shared), scored(text, {"v": float("inf")}),
                   scored(text, share=float("nan"))):
        assert items_json(result).decode() == json.dumps(json_items(result), separators=(",", ":"))
    plain = scored(text, FrozenEvidence({"value": None}))
    assert json.loads(items_json(plain)) == json_items(plain) == plain.as_dict()["items"]


@pytest.mark.usefixtures("present")  # its rows are dated in 2026 and must be past
def test_deadline_items_start_clocks_and_a_breach_opens_a_deadline_action(app, acme):
    acme.enable("sample")
    put_standard(acme, "acme.note_speed", document={
        "title": {"en": "Note speed", "zh": "备注时效"}, "applies_to": [NOTE], "method": "weighted",
        "pass_mark": 50, "items": [{"code": "handled", "title": {"en": "Handled", "zh": "已处理"},
                                    "dimension": "responsiveness", "critical": True, "fix_within": "1d",
                                    "rule": {"type": "deadline", "start": "occurred_at",
                                             "stop": "timestamps.done_at", "limit": "4h"}}]})
    record = note(acme)  # occurred 2026-03-02T01:00Z, never done: long breached
    e = acme.api.get(f"{RECORDS}/{record['id']}/evaluation?standard=acme.note_speed").json
    assert e["items"][0]["outcome"] == "breached" and e["failed_critical"] == ["handled"]
    with acme.session() as s:
        [clock] = s.scalars(select(Clock)).all()
        assert (str(clock.record_id), clock.standard_code, clock.item_code) == \
            (record["id"], "acme.note_speed", "handled")
        assert clock.due_at.isoformat() == "2026-03-02T05:00:00+00:00"
    [action] = [a for a in rows(acme, Action) if a.standard_code == "acme.note_speed"]
    assert action.source == "deadline" and action.due_at.isoformat() == "2026-03-03T01:00:00+00:00"


def test_an_action_opened_meanwhile_is_not_opened_twice(app, acme):
    """``open_failure_actions`` writes the new actions with one INSERT; when one of them
    exists already (opened meanwhile), the unique key refuses the INSERT and the actions
    are opened one by one, idempotently: still one action, and the transaction goes on.
    A caller with a bulk writer (a bulk import: no action can exist) but
    was wrong fails instead of writing a second one: its transaction cannot commit."""
    from sqlalchemy.exc import IntegrityError

    from servq.core.evaluation.actions import open_failure_actions
    from servq.core.db.fast import BulkWriter
    from servq.core.calendar import WALL
    from servq.core.standards import standards_for_kind

    acme.enable("sample")
    rude = note(acme, text="不知道")["id"]
    with app.app_context(), acme.session() as s:
        record = s.get(Record, (acme.id, uuid.UUID(rude)))
        [(version, compiled)] = standards_for_kind(s, NOTE)
        polite = compiled.standard.item("polite")
        failure = (record, version, compiled.standard, polite, "fail")
        assert open_failure_actions(s, [failure], WALL) == []  # it exists
        s.commit()
        s.get(Record, (acme.id, uuid.UUID(rude)))
        with pytest.raises(IntegrityError):
            # Refused at once (SQLite) or by the next statement (queued on PostgreSQL).
            open_failure_actions(s, [failure], WALL, writer=BulkWriter())
            s.execute(select(func.count()).select_from(Action)).scalar()
        s.rollback()
    [action] = rows(acme, Action)
    assert (str(action.record_id), action.item_code, action.source) == (rude, "polite", "critical")
    with acme.session() as s:
        audited = select(func.count()).select_from(AuditEvent).where(AuditEvent.entity == "actions")
        assert s.scalar(audited) == 1
