"""What the OpenAPI document says beyond each route's own decorators, added in one place so
that every route, a plugin's included, gets it without asking: what a generated client
(``openapi-python-client``, docs/api-clients.md) needs to be pleasant.

- **operationId** on every operation, derived from the view's class name and the HTTP
  method (``Records`` GET → ``listRecords``, POST → ``createRecord``; ``RecordById`` GET →
  ``getRecord``, PATCH → ``updateRecord``); :data:`OPERATION_IDS` overrides the derived
  name where it reads poorly; a route may also set its own with
  ``@blp.doc(operationId=...)``. A plugin's operations carry the plugin's id
  (``listPropertySiteObligations``).
- **Error responses** each route can give, all with the ``Error`` schema: 400 (a body that
  is not JSON), 401 (every operation with bearer security, with ``WWW-Authenticate``),
  403 (a permission not every role holds), 404 (a path with an object id, a plugin's
  route), 409 (a write that conflicts with existing data), 422 (query or body refused),
  429 with ``Retry-After``; a route's own ``alt_response`` description is kept, its bare
  error responses get the schema.
- **required** on response schemas: a field a response-only schema always dumps (not
  ``load_only``, not marked ``metadata={"optional": True}``) is required, so generated
  models are not all optional. A schema also used in a request is left as declared.
  Nullable fields are ``allow_none`` (``nullable: true``), which is separate.
"""

from __future__ import annotations

import re

from apispec import BasePlugin
from apispec.ext.marshmallow import MarshmallowPlugin, OpenAPIConverter
from apispec.ext.marshmallow.common import get_fields

from servq.core.auth.permissions import PERMISSIONS, ROLES

#: operationIds where the derived name reads poorly: ``"endpoint method"`` → id.
OPERATION_IDS = {
    "auth.TokenResource post": "login",
    "auth.TokenResource delete": "logout",
    "auth.MeResource get": "getMe",
    "members.Members post": "addMember",
    "members.MemberById delete": "removeMember",
    "staff.StaffList get": "listStaff",
    "staff.StaffList post": "createStaff",
    "staff.StaffById get": "getStaff",
    "staff.StaffById patch": "updateStaff",
    "staff.StaffById delete": "deleteStaff",
    "records_batch.RecordsBatch post": "createRecordsBatch",
    "records.RecordHistory get": "listRecordHistory",
    "evaluations.RecordEvaluation get": "getRecordEvaluation",
    "evaluations.RecordEvaluations get": "listRecordEvaluations",
    "evaluations.RecordEvaluate post": "evaluateRecord",
    "workflows.Transitions get": "listRecordTransitions",
    "workflows.Transitions post": "transitionRecord",
    "clocks.RecordClocks get": "listRecordClocks",
    "plugins.PluginById put": "updatePluginSettings",
    "standards.StandardByCode put": "putStandard",
    "standards.StandardVersions get": "listStandardVersions",
    "standards.StandardVersionByNumber get": "getStandardVersion",
    "standards.StandardDiff get": "diffStandard",
    "standards.StandardRescoreRequest post": "rescoreStandard",
    "standards.StandardRescores get": "listStandardRescores",
    "standards.StandardRescoreById get": "getStandardRescore",
    "actions.ActionTransitions post": "transitionAction",
    "actions.ActionHistory get": "listActionHistory",
    "calendar.Calendar get": "getCalendar",
    "calendar.Calendar put": "putCalendar",
    "calendar.Preview get": "previewCalendar",
    "calendar.Days get": "listCalendarDays",
    "schedules.ScheduleCompliance get": "getScheduleCompliance",
    "webhooks.EventTypes get": "listWebhookEventTypes",
    "webhooks.Deliveries get": "listWebhookDeliveries",
    "webhooks.DeliveryById get": "getWebhookDelivery",
    "webhooks.Redeliver post": "redeliverWebhookDelivery",
    "webhooks.Ping post": "pingWebhook",
    "surveys.BuiltinInstruments get": "listBuiltinInstruments",
    "surveys.Results get": "getSurveyResults",
    "surveys.Invitations get": "listSurveyInvitations",
    "surveys.Invitations post": "createSurveyInvitation",
    "surveys.InvitationById get": "getSurveyInvitation",
    "surveys.InvitationById delete": "deleteSurveyInvitation",
    "public.PublicSurvey get": "getPublicSurvey",
    "public.PublicSurvey post": "answerPublicSurvey",
    "exports.Exports get": "listExports",
    "exports.Exports post": "createExport",
    "exports.ExportFile get": "downloadExport",
    "kpis.Kpis get": "queryKpis",
    "kpis.KpiMetrics get": "listKpiMetrics",
    "kpis.ParetoItems get": "getParetoItems",
    "kpis.ParetoComplaints get": "getParetoComplaints",
    "quality_files.StaffQualityFile get": "getStaffQualityFile",
    "quality_files.SiteQualityFile get": "getSiteQualityFile",
    "reports.Weekly get": "getWeeklyReport",
    "reports.RunById get": "getReportRun",
    "reports.RunFile get": "downloadReportRun",
}

VERBS = {"get": "get", "post": "create", "put": "put", "patch": "update", "delete": "delete"}
ERROR_REF = {"$ref": "#/components/schemas/Error"}
WRITES = {"post", "put", "patch", "delete"}

#: Error responses added where a route can give them (name, status, description); named
#: apart from flask-smorest's own (``NOT_FOUND`` …), which stay for ``alt_response``.
ERROR_RESPONSES = {
    "MALFORMED_JSON": (400, "The body is not valid JSON (or is nested too deeply)."),
    "TOKEN_REQUIRED": (401, "No valid bearer token."),
    "ROLE_FORBIDDEN": (403, "The caller's role lacks the permission this operation needs."),
    "NOT_IN_TENANT": (404, "No such object in the caller's tenant (another tenant's object is a 404 too)."),
    "DATA_CONFLICT": (409, "The change conflicts with existing data (a duplicate code, a missing reference)."),
    "RATE_LIMITED": (429, "Too many attempts: retry after the seconds in Retry-After."),
}
RETRY_AFTER = {"description": "Seconds to wait before trying again.", "schema": {"type": "integer"}}
WWW_AUTHENTICATE = {"description": "`Bearer realm=\"servq\"`", "schema": {"type": "string"}}
ALWAYS = "x-servq-always-dumped"
#: Schemas that only document a body marshmallow does not dump: the fields always in it.
#: flask-smorest's error body has ``message`` and ``errors`` only when the error gave them.
DOCUMENTED_ONLY = {"Error": ["code", "status"]}


def camel(*words: str) -> str:
    parts = [p for w in words for p in re.split(r"[^0-9A-Za-z]+", w) if p]
    if not parts:
        return ""
    first, rest = parts[0], parts[1:]
    return first[0].lower() + first[1:] + "".join(p[0].upper() + p[1:] for p in rest)


def singular(name: str) -> str:
    if name.endswith("ies"):
        return name[:-3] + "y"
    if name.endswith("s") and not name.endswith("ss"):
        return name[:-1]
    return name


def derived_operation_id(endpoint: str, method: str, operation: dict, plugin: str | None) -> str:
    """``listRecords``, ``createRecord``, ``getRecord``, ``updateRecord``, ``deleteRecord``
    from the endpoint ``records.Records`` / ``records.RecordById`` and the method."""
    override = OPERATION_IDS.get(f"{endpoint} {method}")
    if override:
        return override
    view = endpoint.rpartition(".")[2]
    by_id = re.match(r"^(.+?)By[A-Z][A-Za-z]*$", view)
    name = by_id.group(1) if by_id else view
    prefix = plugin or ""
    if method == "get" and _returns_list(operation):
        return camel("list", prefix, name)
    if method == "post" and not by_id:
        return camel("create", prefix, singular(name))
    return camel(VERBS.get(method, method), prefix, singular(name) if by_id else name)


def _returns_list(operation: dict) -> bool:
    ok = operation.get("responses", {}).get("200") or operation.get("responses", {}).get(200)
    if not isinstance(ok, dict):
        return False
    schema = ok.get("content", {}).get("application/json", {}).get("schema", {})
    return isinstance(schema, dict) and schema.get("type") == "array"


class ServqConverter(OpenAPIConverter):
    """Notes, on each component schema, the fields every dump of it holds (removed again
    by :func:`finish_spec`, which makes them ``required`` on response-only schemas)."""

    def schema2jsonschema(self, schema):
        jsonschema = super().schema2jsonschema(schema)
        fields = get_fields(schema)
        jsonschema[ALWAYS] = sorted(
            field.data_key or name for name, field in fields.items()
            if not field.load_only and not field.metadata.get("optional"))
        return jsonschema


class ServqMarshmallowPlugin(MarshmallowPlugin):
    Converter = ServqConverter


class ServqSpecPlugin(BasePlugin):
    """apispec plugin: operationIds and error responses on every operation (module doc)."""

    def __init__(self, app):
        self.app = app

    def init_spec(self, spec):
        super().init_spec(spec)
        for name, (status, description) in ERROR_RESPONSES.items():
            response = {"description": description, "content": {"application/json": {"schema": ERROR_REF}}}
            if status == 401:
                response["headers"] = {"WWW-Authenticate": WWW_AUTHENTICATE}
            if status == 429:
                response["headers"] = {"Retry-After": RETRY_AFTER}
            spec.components.response(name, response, lazy=True)

    def operation_helper(self, path=None, operations=None, **kwargs):
        rule = kwargs.get("rule")
        if rule is None or not operations:
            return
        plugin = self._plugin_of(rule.endpoint)
        for method, op in operations.items():
            if method not in VERBS:
                continue
            op.setdefault("operationId", derived_operation_id(rule.endpoint, method, op, plugin))
            self._document_errors(method, op, has_id=bool(rule.arguments), plugin=plugin is not None)

    def _plugin_of(self, endpoint: str) -> str | None:
        """The plugin id when ``endpoint``'s view is not core's (its blueprint's name)."""
        view = self.app.view_functions.get(endpoint)
        module = getattr(getattr(view, "view_class", view), "__module__", "") or ""
        if module.startswith("servq.core."):
            return None
        return endpoint.partition(".")[0]

    def _document_errors(self, method: str, op: dict, *, has_id: bool, plugin: bool) -> None:
        responses = op.setdefault("responses", {})
        secured = bool(op.get("security"))
        permission = op.get("x-permission")
        add = []
        if "requestBody" in op:
            add.append("MALFORMED_JSON")
        if secured:
            add.append("TOKEN_REQUIRED")
        if permission and PERMISSIONS[permission] != frozenset(ROLES):
            add.append("ROLE_FORBIDDEN")
        if has_id or plugin:
            add.append("NOT_IN_TENANT")
        if method in WRITES and secured:
            add.append("DATA_CONFLICT")
        for name in add:
            status = str(ERROR_RESPONSES[name][0])
            if status not in responses and int(status) not in responses:
                responses[status] = name
        for status, response in list(responses.items()):
            code = str(status)
            if not isinstance(response, dict) or "$ref" in response or not code.isdigit() or int(code) < 400:
                continue
            response.setdefault("content", {"application/json": {"schema": ERROR_REF}})
            if code == "429":
                response.setdefault("headers", {}).setdefault("Retry-After", RETRY_AFTER)
            if code == "401":
                response.setdefault("headers", {}).setdefault("WWW-Authenticate", WWW_AUTHENTICATE)


def finish_spec(spec) -> None:
    """After every route is documented: ``required`` on the response-only schemas (the
    fields their dumps always hold), and the working notes removed."""
    schemas = spec.components.schemas
    request_side, response_side = set(), set()
    for item in spec._paths.values():
        for method, op in item.items():
            if method not in VERBS:
                continue
            _refs({k: v for k, v in op.items() if k != "responses"}, request_side)
            _refs(op.get("responses", {}), response_side)
    for side in (request_side, response_side):
        todo = list(side)
        while todo:
            found: set = set()
            _refs(schemas.get(todo.pop(), {}), found)
            todo.extend(found - side)
            side |= found
    for name, schema in schemas.items():
        always = DOCUMENTED_ONLY.get(name, schema.pop(ALWAYS, None))
        schema.pop(ALWAYS, None)
        if always and name in response_side and name not in request_side:
            declared = set(schema.get("required", []))
            schema["required"] = sorted(declared | set(always))
    _error_extras(schemas.get("Error"))


def _error_extras(error: dict | None) -> None:
    """The fields servq adds to flask-smorest's error body: the request id of every error
    (core/api/ops.py) and what a refused workflow step says; a refusal may add others, so
    the schema stays open to them."""
    if error is None:
        return
    properties = error.setdefault("properties", {})
    properties.setdefault("request_id", {
        "type": "string", "description": "The request's X-Request-ID (in every error body)"})
    properties.setdefault("allowed", {
        "type": "array", "items": {"type": "string"},
        "description": "409 of a workflow step: the actions allowed from the current status"})
    properties.setdefault("unmet", {
        "type": "array", "items": {"type": "object"},
        "description": "409 of a guarded transition: each condition not met ({field, requires, message})"})
    error["additionalProperties"] = True


def _refs(node, out: set) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            out.add(ref.rsplit("/", 1)[1])
        for value in node.values():
            _refs(value, out)
    elif isinstance(node, list):
        for value in node:
            _refs(value, out)


def binary_content(*content_types: str) -> dict:
    """The ``content`` of a response that is a file: each type a binary body (a generated
    client answers it as a file, e.g. openapi-python-client's ``File``). For
    ``@blp.doc(responses={200: {"content": binary_content("application/pdf")}})``."""
    return {ct: {"schema": {"type": "string", "format": "binary"}} for ct in content_types}
