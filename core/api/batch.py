"""Bulk creation of records, all or nothing: ``POST /api/v1/records/batch``.

Up to 1,000 records in one request, each validated and scored exactly like
``POST /records`` (:mod:`core.records.ingest`); one bad record and nothing is written. The 422
names the index and the field of every bad record::

    {"code": 422, "status": "Unprocessable Entity", "message": "2 of 5 records are not valid; nothing was created.",
     "errors": {"json": {"records": {"3": {"data": {"title": ["Missing data for required field."]}},
                                     "4": {"site_id": ["No such site in this tenant."]}}}}}
"""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, fields, validate

from servq.core.api.blueprint import Blueprint
from servq.core.api.context import actor_id, enabled_kinds, require
from servq.core.api.records import RecordSchema
from servq.core.db.session import request_session
from servq.core.records.ingest import BATCH_LIMIT, BatchInvalid, create_batch
from servq.core.records.pipeline import RecordInputSchema

URL = "/records"
blp = Blueprint("records_batch", __name__, description="Bulk creation of records, all or nothing.")


class RecordItems(fields.List):
    """A list of records, documented as ``RecordInput`` items but loaded as they came,
    so that every record's structural and kind errors are reported together, by index."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, list):
            raise self.make_error("invalid")
        return list(value)


class BatchInputSchema(Schema):
    records = RecordItems(fields.Nested(RecordInputSchema), required=True,
                          validate=validate.Length(min=1, max=BATCH_LIMIT),
                          metadata={"description": f"1 to {BATCH_LIMIT} records, each as "
                                                  "POST /records takes one; 'site' and 'staff' "
                                                  "may give a code instead of an id."})


class BatchResultSchema(Schema):
    records = fields.List(fields.Nested(RecordSchema), metadata={
        "description": "The created records, in the order sent."})


@blp.route("/batch")
class RecordsBatch(MethodView):
    @require("write")
    @blp.arguments(BatchInputSchema())
    @blp.response(201, BatchResultSchema)
    def post(self, body):
        """Create up to 1,000 records at once, all or nothing; each is validated and
        scored like POST /records. A 422 names the index and field of each bad record."""
        session = request_session()
        items = body["records"]
        try:
            records = create_batch(session, enabled_kinds(), items, actor_id())
        except BatchInvalid as invalid:
            session.rollback()
            abort(422, message=f"{len(invalid.errors)} of {len(items)} records are not valid; "
                               "nothing was created.",
                  errors={"json": {"records": {str(index): problems for index, problems
                                               in sorted(invalid.errors.items())}}})
        session.commit()
        return {"records": records}
