"""``servq records import``: JSON Lines and CSV files, validated and scored like
``POST /records``, written in bulk, all or nothing."""

from __future__ import annotations

import json
import uuid

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from servq import cli
import tests.sample_plugin as sample
from servq.core.models import Action, AuditEvent, Evaluation, Record, Site, Staff
from servq.core.standards import change_standard

NOTE = "sample.note"


# Every test here runs with tests/sample_plugin.py loaded as ``sample`` (conftest.py).
pytestmark = pytest.mark.sample_plugin


@pytest.fixture
def servq(app):
    """``servq(*args, input=None)``: run the command line against the test app."""

    def run(*args, input=None):
        return CliRunner().invoke(cli.make_cli(app_factory=lambda: app), list(args), input=input)

    return run


@pytest.fixture
def places(acme):
    """A site ``lobby`` and a staff member ``S1`` in acme; returns their ids."""
    with acme.session() as s:
        site = Site(code="lobby", name="Lobby")
        staff = Staff(code="S1", name="Li Lei")
        s.add_all([site, staff])
        s.commit()
        return site.id, staff.id


def count(tenant, model, *where) -> int:
    with tenant.session() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def nothing_written(tenant) -> bool:
    return (all(count(tenant, model) == 0 for model in (Record, Evaluation, Action))
            and count(tenant, AuditEvent, AuditEvent.entity == "records") == 0)


def jsonl(tmp_path, *records, name="records.jsonl"):
    path = tmp_path / name
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n"
                            for r in records), encoding="utf-8")
    return str(path)


def note(text="Guest asked for towels", **data):
    return {"kind": NOTE, "occurred_at": "2026-03-02T09:00:00+08:00",
            "data": {"text": text, "priority": 2, **data}}


def clean_failure(result, *messages):
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output and "Traceback" not in result.stderr
    for message in messages:
        assert message in result.stderr, result.stderr
    return True


def test_jsonl_import_writes_records_audit_events_and_evaluations(servq, acme, places, tmp_path):
    acme.enable("sample")
    site_id, staff_id = places
    path = jsonl(tmp_path,
                 note(reviewed=True, priority=4),
                 note("不知道，问别人去"),                      # the critical item fails
                 "",                                             # blank lines are skipped
                 {**note("Lift fixed"), "site": "lobby", "staff": "S1", "status": "done"},
                 {"kind": "observation", "occurred_at": "2026-03-02T10:00:00+00:00",
                  "site_id": str(site_id), "data": {"title": "Wet floor", "tags": ["lobby"]}})
    result = servq("records", "import", "--tenant", "acme", path)
    assert result.exit_code == 0, result.output
    assert "created 4 record(s) (1 observation, 3 sample.note) and 3 evaluation(s)" in result.stdout

    with acme.session() as s:
        records = {r.data.get("text") or r.data["title"]: r for r in s.scalars(select(Record))}
        evaluations = {e.record_id: e for e in s.scalars(select(Evaluation))}
        events = list(s.scalars(select(AuditEvent).where(AuditEvent.entity == "records")))
        actions = list(s.scalars(select(Action)))
    assert set(records) == {"Guest asked for towels", "不知道，问别人去", "Lift fixed", "Wet floor"}
    lift = records["Lift fixed"]
    assert (lift.site_id, lift.staff_id, lift.status) == (site_id, staff_id, "done")
    assert records["Wet floor"].data == {"title": "Wet floor", "description": "", "severity": "low",
                                         "tags": ["lobby"]}   # stored as POST /records stores it
    assert records["Guest asked for towels"].occurred_at.isoformat() == "2026-03-02T01:00:00+00:00"
    # one audit event per record, with what was created
    assert sorted(e.entity_id for e in events) == sorted(r.id for r in records.values())
    assert all(e.action == "created" and e.changes["kind"][1] == records_kind(records, e.entity_id)
               for e in events)
    # every note scored against the sample standard; the observation has no standard
    assert set(evaluations) == {r.id for r in records.values() if r.kind == NOTE}
    assert evaluations[records["Guest asked for towels"].id].percent == 100
    rude = evaluations[records["不知道，问别人去"].id]
    assert (rude.percent, rude.passed, rude.failed_critical) == (0, False, ["polite"])
    assert [(a.record_id, a.item_code) for a in actions] == [(records["不知道，问别人去"].id, "polite")]
    # the plugins heard of every record
    assert len(sample.calls("record_created")) == 4 and len(sample.calls("record_evaluated")) == 3


def records_kind(records, record_id):
    return next(r.kind for r in records.values() if r.id == record_id)


def test_csv_import_reads_columns_codes_and_typed_data(servq, acme, places, tmp_path):
    acme.enable("sample")
    site_id, staff_id = places
    path = tmp_path / "records.csv"
    path.write_text(
        "\ufeffkind,occurred_at,status,site,staff,data.text,data.priority,data.reviewed,data.title,data.tags,data\n"
        'sample.note,2026-03-02T09:00:00+08:00,,lobby,S1,"Towels, two",4,true,,,\n'
        "\n"
        'observation,2026-03-02T09:30:00+08:00,closed,,,,,,Broken lamp,"[""room"", ""lamp""]",'
        '"{""severity"": ""high""}"\n', encoding="utf-8")
    result = servq("records", "import", "--tenant", "acme", str(path))
    assert result.exit_code == 0, result.output
    assert "created 2 record(s)" in result.stdout and "1 evaluation(s)" in result.stdout
    with acme.session() as s:
        towels = s.scalar(select(Record).where(Record.kind == NOTE))
        lamp = s.scalar(select(Record).where(Record.kind == "observation"))
        evaluation = s.scalar(select(Evaluation))
    assert towels.data == {"text": "Towels, two", "priority": 4, "reviewed": True}
    assert (towels.site_id, towels.staff_id, towels.status) == (site_id, staff_id, "open")
    assert lamp.data == {"title": "Broken lamp", "description": "", "severity": "high",
                         "tags": ["room", "lamp"]}
    assert lamp.status == "closed" and lamp.site_id is None
    assert evaluation.record_id == towels.id and evaluation.percent == 100


def test_bad_lines_are_each_named_with_their_field_and_nothing_is_written(servq, acme, places, tmp_path):
    acme.enable("sample")
    path = jsonl(tmp_path,
                 note(),
                 {"kind": NOTE, "occurred_at": "2026-03-02T09:00:00+08:00", "data": {"priority": 9}},
                 note(),
                 "{not json",
                 {**note(), "site": "attic"},
                 {**note(), "occurred_at": "2026-03-02T09:00:00", "colour": "red"},
                 {"kind": "hotel.room", "data": {}},
                 "[1, 2]")
    # chunks of one: the first record is written before the bad ones are met, and still
    # nothing is left afterwards
    result = servq("records", "import", "--tenant", "acme", "--chunk", "1", path)
    assert clean_failure(
        result,
        "line 2: data.text: Missing data for required field.",
        "line 2: data.priority: Must be greater than or equal to 1 and less than or equal to 5.",
        "line 4: record: Not valid JSON",
        "line 5: site: No site with code 'attic' in this tenant.",
        "line 6: occurred_at: Not a valid aware datetime.",
        "line 6: colour: Unknown field.",
        "line 7: kind: Unknown record kind 'hotel.room'",
        "line 8: record: Each line must be a JSON object",
        "error: 6 bad line(s); nothing was written")
    assert "line 1:" not in result.stderr and "line 3:" not in result.stderr
    assert nothing_written(acme)


def test_another_tenants_site_and_a_disabled_kind_are_refused(servq, acme, globex, tmp_path):
    with globex.session() as s:
        theirs = Site(code="hq", name="Globex HQ")
        s.add(theirs)
        s.commit()
    path = jsonl(tmp_path,
                 {"kind": "observation", "site_id": str(theirs.id), "data": {"title": "x"}},
                 {"kind": "observation", "site": "hq", "data": {"title": "x"}},
                 note())                               # acme has not enabled the sample plugin
    result = servq("records", "import", "--tenant", "acme", path)
    assert clean_failure(result, "line 1: site_id: No such site in this tenant.",
                         "line 2: site: No site with code 'hq' in this tenant.",
                         "line 3: kind: Unknown record kind 'sample.note'")
    assert nothing_written(acme) and nothing_written(globex)


def test_a_value_the_standard_cannot_judge_names_the_line_and_field(app, servq, acme, tmp_path):
    with app.app_context(), acme.session() as s:
        change_standard(s, "acme.observations", document={
            "title": {"en": "Observations", "zh": "观察"}, "applies_to": ["observation"],
            "method": "weighted", "pass_mark": 50,
            "items": [{"code": "verdict", "title": {"en": "Verdict", "zh": "结论"},
                       "dimension": "reliability", "rule": {"type": "check", "field": "description"}}]})
        s.commit()
    good = {"kind": "observation", "data": {"title": "ok", "description": "pass"}}
    path = jsonl(tmp_path, good, good, {"kind": "observation", "data": {"title": "?", "description": "maybe"}})
    result = servq("records", "import", "--tenant", "acme", "--chunk", "2", path)
    assert clean_failure(result, "line 3: data.description:", "a check is answered")
    assert count(acme, Record) == 0 and count(acme, Evaluation) == 0

    result = servq("records", "import", "--tenant", "acme", jsonl(tmp_path, good, good, name="ok.jsonl"))
    assert result.exit_code == 0, result.output
    with acme.session() as s:
        assert [e.percent for e in s.scalars(select(Evaluation))] == [100, 100]


def test_dry_run_validates_and_scores_but_writes_nothing(servq, acme, tmp_path):
    acme.enable("sample")
    path = jsonl(tmp_path, note(), note("不知道"))
    result = servq("records", "import", "--tenant", "acme", "--dry-run", path)
    assert result.exit_code == 0, result.output
    assert "would create 2 record(s) (2 sample.note) and 2 evaluation(s)" in result.stdout
    assert "dry run: nothing written" in result.stdout
    assert nothing_written(acme)


def test_chunks_stdin_and_the_format_option(servq, acme, tmp_path):
    lines = "".join(json.dumps({"kind": "observation", "data": {"title": f"n{n}"}}) + "\n"
                    for n in range(5))
    result = servq("records", "import", "--tenant", "acme", "--chunk", "2", "--format", "jsonl", "-",
                   input=lines)
    assert result.exit_code == 0, result.output
    assert "created 5 record(s) (5 observation) and 0 evaluation(s) in 3 chunk(s)" in result.stdout
    csv_named_txt = tmp_path / "obs.txt"
    csv_named_txt.write_text("kind,data.title\nobservation,from csv\n")
    result = servq("records", "import", "--tenant", "acme", "--format", "csv", str(csv_named_txt))
    assert result.exit_code == 0, result.output
    assert count(acme, Record) == 6 and count(acme, AuditEvent, AuditEvent.entity == "records") == 6


def test_bad_csv_files(servq, acme, tmp_path):
    header = tmp_path / "header.csv"
    header.write_text("kind,colour,data.title\nobservation,red,x\n")
    result = servq("records", "import", "--tenant", "acme", str(header))
    assert clean_failure(result, "line 1: unknown column(s) 'colour'", "nothing was written")
    rows = tmp_path / "rows.csv"
    rows.write_text("kind,data.title,data.tags,data\n"
                    "observation,ok,,\n"
                    "observation,too,many,cells,here\n"
                    'observation,x,"[broken",\n'
                    "observation,x,,[1]\n"
                    "observation,,,\n")
    result = servq("records", "import", "--tenant", "acme", str(rows))
    assert clean_failure(result, "line 3: record: Has 5 cell(s); the header has 4 column(s).",
                         "line 4: data.tags: Not valid JSON", "line 5: data: Must be a JSON object.",
                         "line 6: data.title: Missing data for required field.",
                         "4 bad line(s); nothing was written")
    assert nothing_written(acme)


def test_unknown_tenant_and_missing_file(servq, tmp_path):
    path = jsonl(tmp_path, {"kind": "observation", "data": {"title": "x"}})
    assert clean_failure(servq("records", "import", "--tenant", "nobody", path), "no tenant with slug 'nobody'")
    result = servq("records", "import", "--tenant", "acme", str(tmp_path / "missing.jsonl"))
    assert result.exit_code == 2 and "No such file or directory" in result.stderr


def test_imported_records_belong_to_the_tenant_alone(servq, acme, globex, tmp_path):
    path = jsonl(tmp_path, {"kind": "observation", "data": {"title": "acme only"}})
    assert servq("records", "import", "--tenant", "acme", path).exit_code == 0
    listed = acme.api.get("/api/v1/records").json
    assert [r["data"]["title"] for r in listed] == ["acme only"]
    assert globex.api.get("/api/v1/records").json == []
    assert globex.api.get(f"/api/v1/records/{listed[0]['id']}").status_code == 404
    history = acme.api.get(f"/api/v1/records/{listed[0]['id']}/history").json
    assert [entry["action"] for entry in history] == ["created"]


@pytest.mark.postgres
@pytest.mark.slow
def test_import_benchmark_runs_and_reports_both_rates(capsys, monkeypatch):
    """bench/records_import.py, small: the import and the executemany baseline write the
    same number of records, and the figures and their ratio are printed."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "bench" / "records_import.py"
    spec = importlib.util.spec_from_file_location("bench_records_import", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    monkeypatch.setattr(bench, "report", lambda name, result: None)  # keep bench/results/ real
    result = bench.main(["--count", "120", "--chunk", "50"])
    assert result["rows"]["records"] == result["rows"]["evaluations"] == 120
    assert result["rows"]["actions"] == 2 and result["servq"]["records_per_s"] > 0
    out = capsys.readouterr().out
    assert "servq records import" in out and "plain executemany" in out and "ratio" in out


def test_imported_records_read_back_exactly_as_posted_ones(servq, acme, places, tmp_path):
    """The bulk path (marshmallow fast path, one multi-row INSERT per chunk on PostgreSQL,
    sent without waiting) stores what ``POST /records`` stores, defaults and all."""
    site = acme.api.get("/api/v1/sites").json[0]["id"]
    bodies = [{"kind": "observation", "occurred_at": "2026-03-01T09:30:00+08:00", "site_id": site,
               "status": "closed", "data": {"title": "Wet floor", "tags": ["lobby", "clean"],
                                            "severity": "high", "description": "您好，地面有水"}},
              {"kind": "observation", "occurred_at": "2026-03-01T10:00:00Z", "data": {"title": "Plain"}}]
    path = jsonl(tmp_path, *bodies, *bodies)  # two of each: a multi-row chunk
    assert servq("records", "import", "--tenant", "acme", "--chunk", "3", path).exit_code == 0
    imported = acme.api.get("/api/v1/records?per_page=10").json
    for body in bodies:
        posted = acme.api.post("/api/v1/records", json=body).json
        twins = [r for r in imported if r["data"] == posted["data"]]
        assert len(twins) == 2
        for twin in twins:
            for name in ("kind", "occurred_at", "site_id", "staff_id", "status", "timestamps"):
                assert twin[name] == posted[name], name
            assert acme.api.get(f"/api/v1/records/{twin['id']}/evaluation").status_code == \
                acme.api.get(f"/api/v1/records/{posted['id']}/evaluation").status_code


@pytest.mark.parametrize("payload", [
    {"title": "a"}, {"title": "a", "tags": ["x", "y"], "severity": "high", "description": "d"},
    {"title": ""}, {"title": "a", "tags": [""]}, {"title": "a", "zz": 1}, {"title": "a", "severity": "bad"},
    {"title": "a", "tags": None}, {"title": None}, {}, {"title": 3}, {"title": "a", "tags": "x"},
    {"title": "a\x00"}, {"title": "a", "tags": ["x"] * 21}, {"title": b"bytes"}, [], "text",
])
def test_fast_data_path_matches_marshmallow(payload):
    """core.fastload answers exactly marshmallow's load + dump, or None (then marshmallow
    runs and its error stands)."""
    from marshmallow import ValidationError

    from servq.core.records.kinds.observation import ObservationData
    from servq.core.records.pipeline import _fast_data_loader

    fast = _fast_data_loader(ObservationData)
    assert fast is not None
    schema = ObservationData()
    try:
        expected = schema.dump(schema.load(payload))
    except ValidationError:
        expected = None
    got = fast(payload)
    assert got is None or got == expected
    if got is not None:
        assert list(got) == list(expected)  # same key order as the dump


@pytest.mark.parametrize("payload", [
    {"kind": "observation", "occurred_at": "2026-01-01T08:00:00+08:00", "status": "open",
     "site_id": "0b9b5f0e-6a43-4d1a-9d1b-3f4b6f7f8e90", "staff_id": None, "data": {"title": "x"}},
    {"kind": "observation"}, {"kind": ""}, {"kind": "x", "occurred_at": "2026-01-01T08:00:00"},
    {"kind": "x", "occurred_at": "not a date"}, {"kind": "x", "site_id": "nope"},
    {"kind": "x", "data": {1: 2}}, {"kind": "x", "data": []}, {"kind": "x", "extra": 1}, {"data": {}},
    {"kind": "x", "occurred_at": "0001-01-01T00:00:00+01:00"},
])
def test_fast_record_input_matches_marshmallow(payload):
    from marshmallow import ValidationError

    from servq.core.records.ingest import _FAST_INPUT, _INPUT

    try:
        expected = _INPUT.load(payload)
    except ValidationError:
        expected = None
    got = _FAST_INPUT(payload)
    assert got is None or got == expected


def _record_rows(tenant, count, **values):
    from servq.core.db import utcnow

    now = utcnow()
    return [{"tenant_id": tenant.id, "id": uuid.uuid4(), "kind": "observation",
             "site_id": None, "staff_id": None, "occurred_at": now, "status": "open",
             "data": {"title": f"r{n}"}, "timestamps": {}, "escalation_level": 0,
             "created_by": None, "created_at": now, "updated_at": now, "deleted_at": None,
             **values}
            for n in range(count)]


@pytest.mark.postgres
@pytest.mark.plain_postgres
def test_an_insert_sent_without_waiting_fails_the_next_statement(acme):
    """core.quality.bulk: INSERTs queued with ``wait=False`` are sent as one statement,
    not waited for; its error is raised before the connection's next statement, and
    rolling back leaves nothing behind."""
    import psycopg
    import sqlalchemy.exc

    from servq.core.db.fast import insert_tables, send_queued

    with acme.session() as s:
        s.execute(select(func.count()).select_from(Record)).scalar()  # a transaction is open
        rows = _record_rows(acme, 2, site_id=uuid.uuid4())  # no such site
        insert_tables(s.connection(), [(Record.__table__, rows)], wait=False)
        info = s.connection().connection.info
        assert len(info["servq.bulk.queued"]) == 1 and not info.get("servq.bulk.pending")
        send_queued(s.connection())
        assert info.get("servq.bulk.pending") and not info.get("servq.bulk.queued")  # sent
        with pytest.raises((psycopg.errors.ForeignKeyViolation, sqlalchemy.exc.IntegrityError)):
            s.execute(select(func.count()).select_from(Record)).scalar()
        s.rollback()
        assert s.execute(select(func.count()).select_from(Record)).scalar() == 0
        good = [dict(row, site_id=None, id=uuid.uuid4()) for row in rows]
        insert_tables(s.connection(), [(Record.__table__, good)], wait=False)
        s.commit()  # sends what is queued and collects the result first
    with acme.session() as s:
        assert s.execute(select(func.count()).select_from(Record)).scalar() == 2


@pytest.mark.postgres
@pytest.mark.plain_postgres
def test_queued_inserts_go_as_one_statement_and_rollback_drops_them(app, acme):
    """Several queued INSERTs (records, then their audit events) reach the server as one
    statement when the next one needs the connection; a rollback drops what is still
    queued without sending it (a row that would fail raises nothing)."""
    from sqlalchemy import event

    from servq.core.db.fast import insert_rows

    engine = app.extensions["servq.engine"]
    statements = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    with acme.session() as s:
        s.execute(select(func.count()).select_from(Record)).scalar()
        rows = _record_rows(acme, 3)
        insert_rows(s.connection(), Record.__table__, rows, wait=False)
        insert_rows(s.connection(), AuditEvent.__table__,
                    [{"tenant_id": acme.id, "entity": "records", "entity_id": row["id"],
                      "action": "created", "actor_user_id": None, "at": row["created_at"],
                      "changes": {"kind": [None, "observation"]}} for row in rows], wait=False)
        event.listen(engine, "before_cursor_execute", seen)
        try:
            assert s.execute(select(func.count()).select_from(Record)).scalar() == 3
        finally:
            event.remove(engine, "before_cursor_execute", seen)
        # One statement for both INSERTs, sent (and seen by the engine's listeners) first.
        assert len(statements) == 2 and statements[1].lstrip().startswith("SELECT")
        assert statements[0].startswith("WITH w0 AS (INSERT INTO records")
        assert statements[0].count("INSERT INTO") == 2 and "INSERT INTO audit_events" in statements[0]
        assert s.execute(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.entity_id.in_([row["id"] for row in rows]))).scalar() == 3
        insert_rows(s.connection(), Record.__table__, _record_rows(acme, 2, site_id=uuid.uuid4()),
                    wait=False)
        s.rollback()  # the bad rows were never sent
        assert not s.connection().connection.info.get("servq.bulk.queued")
        assert s.execute(select(func.count()).select_from(Record)).scalar() == 0


def test_lines_orjson_would_read_otherwise_are_read_by_json_as_before(servq, acme, tmp_path):
    """Lines are parsed by orjson, except where it would read them otherwise than Python's
    ``json``: an integer beyond 64 bits (a float for orjson), NaN and infinities (refused by
    orjson); those lines are read and reported as before. A number too large for a float
    is refused as the API refuses it (tests/test_bad_input.py)."""
    huge = 123456789012345678901234567890
    path = jsonl(tmp_path,
                 {"kind": "observation", "data": {"title": "fine"}},
                 f'{{"kind": "observation", "site": {huge}, "data": {{"title": "x"}}}}',
                 '{"kind": "observation", "data": {"title": NaN}}',
                 '{"kind": "observation", "data": {"title": "x", "tags": [-Infinity]}}',
                 '{"kind": "observation", "data": {"title": 1e400}}',
                 '{"kind": "observation", "data": {"title": "x"}, "kind": 12}',
                 '\t{"kind": "observation", "data": {"title": "fine too"}}\x0c')
    result = servq("records", "import", "--tenant", "acme", path)
    assert clean_failure(result,
                         f"line 2: site: No site with code {huge} in this tenant.",
                         "line 3: data.title: Not a valid string.",
                         "line 4: data.tags.0: Not a valid string.",
                         "line 5: record: The number 1e400 is too large (beyond ±1.8e308).",
                         "line 6: kind: Not a valid string.",
                         "error: 5 bad line(s); nothing was written")
    assert "line 7:" not in result.stderr
    assert nothing_written(acme)


def test_an_integer_beyond_64_bits_is_read_scored_and_stored_exactly(app, servq, acme, tmp_path):
    """An inspection's measured value beyond 64 bits (which orjson neither reads nor writes
    as it is) in a chunk of several records: the record, its audit event and its
    evaluation's evidence hold the very integer, as ``POST /records`` stores them."""
    from tests.test_evaluations import put_standard
    from tests.test_inspections import CODE, FRONT_DESK, GOOD

    put_standard(acme, CODE, document=FRONT_DESK)
    huge = 10 ** 30

    def inspection(value):
        return {"kind": "inspection", "occurred_at": "2026-03-02T10:00:00+08:00",
                "data": {"standard": CODE, "answers": {**GOOD, "wait": {"value": value}}}}

    result = servq("records", "import", "--tenant", "acme", jsonl(tmp_path, inspection(3), inspection(huge)))
    assert result.exit_code == 0, result.output
    assert "created 2 record(s) (2 inspection) and 2 evaluation(s)" in result.stdout
    with acme.session() as s:
        [record] = [r for r in s.scalars(select(Record)) if r.data["answers"]["wait"]["value"] != 3]
        evaluation = s.scalar(select(Evaluation).where(Evaluation.record_id == record.id))
        event = s.scalar(select(AuditEvent).where(AuditEvent.entity_id == record.id))
    value = record.data["answers"]["wait"]["value"]
    assert value == huge and type(value) is int
    [wait] = [item for item in evaluation.items if item["code"] == "wait"]
    assert wait["outcome"] == "fail" and wait["evidence"] == {"value": huge, "min": None, "max": 5.0}
    assert type(wait["evidence"]["value"]) is int
    assert event.changes["data"][1]["answers"]["wait"]["value"] == huge
    posted = acme.api.post("/api/v1/records", json=inspection(huge))
    assert posted.status_code == 201, posted.json
    with acme.session() as s:
        single = s.scalar(select(Evaluation).where(Evaluation.record_id == uuid.UUID(posted.json["id"])))
    assert single.items == evaluation.items


def test_records_written_in_bulk_are_ordinary_session_objects(app, acme):
    """``create_batch`` (``POST /records/batch``) returns its records as persistent objects
    of the session, without reading them back: the session finds them by key, and a change
    to one is flushed as for any loaded record."""
    from sqlalchemy import event as sa_event

    from servq.core.records.ingest import create_batch
    from servq.core.plugins.app import enabled_plugin_ids, get_plugins

    with app.app_context(), acme.session() as s:
        kinds = get_plugins(app).kinds_for(enabled_plugin_ids(s))
        records = create_batch(s, kinds, [{"kind": "observation", "data": {"title": f"r{n}"}}
                                          for n in range(3)], None)
        statements = []
        sa_event.listen(s.get_bind(), "before_cursor_execute",
                        lambda *args: statements.append(args[2]))
        assert all(r in s for r in records) and not s.dirty and not s.new
        assert s.get(Record, (acme.id, records[1].id)) is records[1]
        assert records[1].data["title"] == "r1" and not statements  # nothing read back
        records[1].status = "closed"
        s.flush()
        assert any(statement.lstrip().upper().startswith("UPDATE RECORDS") for statement in statements)
        s.commit()
    with acme.session() as s:
        assert {r.data["title"]: r.status for r in s.scalars(select(Record))} == \
            {"r0": "open", "r1": "closed", "r2": "open"}


@pytest.mark.postgres
def test_bulk_rows_are_stored_as_the_orm_stores_them(acme):
    """core.quality.bulk on PostgreSQL (one binary array per column, or psycopg's arrays
    for what those cannot carry exactly): the same values as the ORM writes. A ``None``
    JSON value is JSON null, instants keep their instant whatever their offset, a
    left-out id is made by the server, a float that is not finite is stored as such."""
    from datetime import datetime, timedelta, timezone

    from servq.core.db.fast import insert_rows

    at = datetime(2026, 3, 2, 9, 30, 15, 123456, tzinfo=timezone(timedelta(hours=8)))
    with acme.session() as s:
        s.execute(select(func.count()).select_from(Record)).scalar()  # a transaction is open
        rows = [{"tenant_id": acme.id, "entity": "records", "entity_id": acme.id, "action": "x",
                 "actor_user_id": None, "at": at, "changes": changes}
                for changes in (None, {"a": [1, 2.5, "三"]}, {"big": 10 ** 30})]
        insert_rows(s.connection(), AuditEvent.__table__, rows[:2])  # binary arrays
        insert_rows(s.connection(), AuditEvent.__table__, rows)      # 10 ** 30: json's text
        s.commit()
    with acme.session() as s:
        events = list(s.scalars(select(AuditEvent).where(AuditEvent.action == "x")))
        nulls = s.execute(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "x", AuditEvent.changes.is_(None))).scalar()
    assert len({e.id for e in events}) == 5 and nulls == 0          # JSON null, not SQL NULL
    assert sorted((e.changes for e in events), key=repr) == sorted(
        [None, None, {"a": [1, 2.5, "三"]}, {"a": [1, 2.5, "三"]}, {"big": 10 ** 30}], key=repr)
    assert {e.at for e in events} == {at}


@pytest.mark.postgres
def test_binary_arrays_store_every_column_type_as_the_orm_does(acme):
    """The binary arrays of core.db.fast.bulk (uuids, text, integers, floats, booleans,
    instants, dates, JSON) store exactly what the ORM stores for the same values: NULLs,
    non-finite floats, text beyond ASCII, an instant in another zone; a chunk with a value
    they do not carry (an id given as text) takes psycopg's arrays, with the same result."""
    from datetime import date, datetime, timedelta, timezone

    from servq.core.models import KpiDirtyDay
    from servq.core.db.fast import insert_rows

    columns = ("record_id", "standard_code", "standard_version", "evaluated_at", "total",
               "max_total", "percent", "grade", "passed", "complete", "failed_critical", "items")
    east = timezone(timedelta(hours=8))
    values = [
        (10.0, 10.0, 100.0, "A", True, True, [], [{"code": "x", "points": 1.5, "evidence": {"é": "三"}}]),
        (float("nan"), float("inf"), None, None, None, False, ["polite"], None),
        (-0.0, float("-inf"), 12.5, "C 😀", False, True, [{"deep": [1, None]}], [10 ** 30]),
    ]
    with acme.session() as s:
        records = [Record(kind="observation", occurred_at=datetime(2026, 3, 1, tzinfo=east),
                          data={"title": f"r{n}"}) for n in range(12)]
        s.add_all(records)
        s.flush()
        made = []
        for group, (via, ids) in enumerate((("orm", records[0:3]), ("binary", records[3:6]),
                                            ("binary", records[6:9]), ("psycopg", records[9:12]))):
            rows = []
            for record, (total, max_total, percent, grade, passed, complete, failed, items) in zip(ids, values):
                rows.append({"tenant_id": acme.id, "id": uuid.uuid4(),
                             "record_id": str(record.id) if via == "psycopg" else record.id,
                             "standard_code": f"s{group}", "standard_version": 3,
                             "evaluated_at": datetime(2026, 3, 2, 9, 30, 15, 123456,
                                                      tzinfo=east if group == 2 else timezone.utc),
                             "total": total, "max_total": max_total, "percent": percent,
                             "grade": grade, "passed": passed, "complete": complete,
                             "failed_critical": failed, "items": items})
            if via == "orm":
                s.add_all([Evaluation(**row) for row in rows])
                s.flush()
            else:
                insert_rows(s.connection(), Evaluation.__table__, rows, wait=group == 1)
            made.append(rows)
        days = [{"tenant_id": acme.id, "id": uuid.uuid4(), "day": date(1999, 12, 31) + timedelta(days=n),
                 "marked_at": datetime(2026, 1, 1, tzinfo=timezone.utc)} for n in range(3)]
        insert_rows(s.connection(), KpiDirtyDay.__table__, days)
        s.commit()
    with acme.session() as s:
        stored = {}
        for evaluation in s.scalars(select(Evaluation)):
            stored.setdefault(evaluation.standard_code, []).append(
                tuple(getattr(evaluation, name) for name in columns))
        nulls = s.execute(select(func.count()).select_from(Evaluation).where(
            Evaluation.items.is_(None))).scalar()
        assert sorted(s.scalars(select(KpiDirtyDay.day))) == [day["day"] for day in days]
    def comparable(row):  # all but the record, the standard and the instant
        return tuple("NaN" if value != value else value for value in row[2:3] + row[4:])

    orm = sorted(map(comparable, stored["s0"]), key=repr)
    for code in ("s1", "s2", "s3"):
        assert sorted(map(comparable, stored[code]), key=repr) == orm, code
    assert nulls == 0  # a None item list is JSON null, not SQL NULL
    utc = datetime(2026, 3, 2, 9, 30, 15, 123456, tzinfo=timezone.utc)
    assert {row[3] for row in stored["s0"] + stored["s1"] + stored["s3"]} == {utc}
    assert {row[3] for row in stored["s2"]} == {utc - timedelta(hours=8)}


@pytest.mark.postgres
@pytest.mark.plain_postgres
def test_foreign_key_checks_are_planned_again_as_the_import_grows(app, servq, acme, tmp_path):
    """PostgreSQL keeps a foreign-key check's plan per connection; planned while the
    tenant had only the first small chunk, it read every record of the tenant per check
    (5.9 ms of server time per record after 50,000 with 250-record chunks). The import
    has the plans made again (``DISCARD PLANS``) each time the records written double
    from 1,000, and the import is complete and scored either way."""
    from sqlalchemy import event

    engine = app.extensions["servq.engine"]
    seen = []

    def statement(conn, cursor, sql, parameters, context, executemany):
        seen.append(sql)

    acme.enable("sample")
    path = jsonl(tmp_path, *[note(f"Guest {n} asked for towels") for n in range(2_100)])
    event.listen(engine, "before_cursor_execute", statement)
    try:
        result = servq("records", "import", "--tenant", "acme", "--chunk", "250", path)
    finally:
        event.remove(engine, "before_cursor_execute", statement)
    assert result.exit_code == 0, result.output
    assert seen.count("DISCARD PLANS") == 2  # after 1,000 and 2,000 records
    inserts = [sql for sql in seen if "INSERT INTO records" in sql]
    # One statement per chunk, once the standards are read (the first chunks' records go
    # ahead when the shipped standards are installed and read).
    assert len(inserts) == 9 and all("INSERT INTO evaluations" in sql for sql in inserts[2:])
    assert sum("INSERT INTO evaluations" in sql for sql in seen) == 9
    assert count(acme, Record) == 2_100 and count(acme, Evaluation) == 2_100


def test_an_imported_failure_audits_and_announces_its_action(app, servq, acme, tmp_path):
    """The action a failed critical item opens during an import is audited, announced
    (``action.opened`` in the outbox) and delivered to the webhook subscribed to it, as
    one opened through the API is; the import queues all of it with its chunk."""
    from servq.core.models import OutboxEvent, WebhookDelivery
    from tests.test_notifications import Receiver, add_webhook, drain

    acme.enable("sample")
    receiver = Receiver((200,))
    try:
        hook = add_webhook(acme, receiver.url, event_types=("action.opened",))
        result = servq("records", "import", "--tenant", "acme",
                       jsonl(tmp_path, note("不知道，问别人去"), note(), note("我也不知道")))
        assert result.exit_code == 0, result.output
        drain(app)
        receiver.wait_for(2)  # inline jobs (SQLite) have sent them already
        with acme.session() as s:
            actions = {a.id: a for a in s.scalars(select(Action))}
            events = list(s.scalars(select(OutboxEvent).where(OutboxEvent.type == "action.opened")))
            deliveries = list(s.scalars(select(WebhookDelivery)))
            audited = list(s.scalars(select(AuditEvent).where(AuditEvent.entity == "actions")))
        assert len(actions) == 2
        assert sorted(e.dedupe_key for e in events) == sorted(f"action.opened:{i}" for i in actions)
        assert {e.payload["id"] for e in events} == {str(i) for i in actions}
        assert sorted(a.entity_id for a in audited) == sorted(actions)
        assert sorted(d.event_id for d in deliveries) == sorted(e.id for e in events)
        assert {str(d.webhook_id) for d in deliveries} == {hook["id"]}
        assert {d.status for d in deliveries} == {"delivered"}
        assert all(request["verified"] for request in receiver.requests)
        assert sorted(request["json"]["data"]["id"] for request in receiver.requests) == \
            sorted(map(str, actions))
    finally:
        receiver.close()
