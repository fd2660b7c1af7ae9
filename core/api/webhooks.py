"""Webhooks, the notification outbox and deliveries.

``/api/v1/webhooks`` (the tenant's endpoints, their delivery logs, ping and redelivery)
and ``/api/v1/notifications`` (the outbox: every notification, whether or not a webhook
received it). The blueprint is mounted at ``/api/v1`` (``URL = ""``) so that it can
serve both. The outbox is :mod:`core.notify.outbox`, the delivery mechanics
:mod:`core.notify.delivery`; the receiver's side is in docs/webhooks.md.
"""

from __future__ import annotations

import uuid
from contextlib import contextmanager

from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, ValidationError, fields, validate, validates, validates_schema

from servq.core.api.blueprint import Blueprint
from servq.core.api.context import actor_id, require
from servq.core.api.pagination import PAGINATION_HEADER_DOC, PageArgs, paginate
from servq.core.db.session import request_session
from servq.core.models import Webhook, WebhookDelivery
from servq.core.notify import webhooks
from servq.core.notify.delivery import STATUSES
from servq.core.notify.outbox import check_pattern, events_statement, find_event, tenant_event_types

URL = ""
blp = Blueprint("webhooks", __name__, description="Webhooks, the notification outbox and deliveries.")

SECRET = validate.Regexp(r"^[\x21-\x7e]{16,200}$",
                         error="A secret is 16 to 200 printable ASCII characters without spaces.")
TYPE_FILTER = validate.Regexp(r"^(\*|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*(\.\*)?)$",
                              error="An event type ('clock.breached'), a prefix pattern ('clock.*') or '*'.")


class WebhookSchema(Schema):
    id = fields.UUID(dump_only=True)
    url = fields.URL(required=True, schemes={"http", "https"}, require_tld=False,
                     validate=validate.Length(max=2000),
                     metadata={"description": "http or https endpoint that receives POSTed events; its host "
                                              "must be a public address (loopback, private and link-local "
                                              "ones are refused)"})
    event_types = fields.List(
        fields.String(validate=validate.Length(min=1, max=100)), required=True,
        validate=validate.Length(min=1, max=50),
        metadata={"description": "Event types ('clock.breached'), prefix patterns ('clock.*') or '*'; "
                                 "see GET /api/v1/webhooks/event-types"})
    description = fields.String(load_default="", validate=validate.Length(max=500))
    active = fields.Boolean(load_default=True)
    secret = fields.String(load_only=True, validate=SECRET,
                           metadata={"description": "Signing secret; generated when left out. "
                                                    "Shown only in the answer to the creation."})
    created_at = fields.AwareDateTime(dump_only=True)
    updated_at = fields.AwareDateTime(dump_only=True)

    @validates("url")
    def _no_credentials(self, value, **kwargs):
        refusal = webhooks.url_refusal(value)
        if refusal:
            raise ValidationError(refusal)

    @validates("event_types")
    def _known_types(self, value, **kwargs):
        types = tenant_event_types(request_session())
        errors = {i: [reason] for i, pattern in enumerate(value)
                  if (reason := check_pattern(pattern, types)) is not None}
        if errors:
            raise ValidationError(errors)


class WebhookCreatedSchema(WebhookSchema):
    secret = fields.String(dump_only=True,
                           metadata={"description": "The signing secret: store it now, it is never shown again."})


class WebhookQuery(PageArgs):
    active = fields.Boolean()


class EventTypeSchema(Schema):
    type = fields.String()
    description = fields.String()


class DeliverySchema(Schema):
    id = fields.UUID(dump_only=True, metadata={"description": "Sent as X-Servq-Delivery; the same on every retry"})
    webhook_id = fields.UUID(dump_only=True)
    event_id = fields.UUID(dump_only=True)
    event_type = fields.String(dump_only=True)
    status = fields.String(dump_only=True, metadata={"description": "pending, delivered or failed"})
    attempts = fields.Integer(dump_only=True)
    last_status_code = fields.Integer(dump_only=True, allow_none=True)
    last_error = fields.String(dump_only=True, allow_none=True)
    last_duration_ms = fields.Integer(dump_only=True, allow_none=True)
    redelivery_of = fields.UUID(dump_only=True, allow_none=True)
    created_at = fields.AwareDateTime(dump_only=True)
    last_attempt_at = fields.AwareDateTime(dump_only=True, allow_none=True)
    next_attempt_at = fields.AwareDateTime(dump_only=True, allow_none=True)
    delivered_at = fields.AwareDateTime(dump_only=True, allow_none=True)


class DeliveryQuery(PageArgs):
    status = fields.String(validate=validate.OneOf(STATUSES))
    event_type = fields.String(validate=validate.Length(max=100))


class NotificationSchema(Schema):
    id = fields.UUID(dump_only=True)
    type = fields.String(dump_only=True)
    data = fields.Dict(attribute="payload", dump_only=True)
    roles = fields.List(fields.String(), dump_only=True)
    dedupe_key = fields.String(dump_only=True, allow_none=True)
    created_at = fields.AwareDateTime(dump_only=True)


class NotificationQuery(PageArgs):
    type = fields.String(validate=[validate.Length(max=100), TYPE_FILTER],
                         metadata={"description": "An event type, a prefix pattern ('clock.*') or '*'"})
    since = fields.AwareDateTime(metadata={"description": "Created at or after"})
    until = fields.AwareDateTime(metadata={"description": "Created before"})

    @validates_schema
    def _ordered(self, data, **kwargs):
        if data.get("since") and data.get("until") and data["until"] <= data["since"]:
            raise ValidationError("until must be after since.", "until")


def get_webhook(webhook_id: uuid.UUID) -> Webhook:
    """The current tenant's webhook or 404."""
    webhook = webhooks.find_webhook(request_session(), webhook_id)
    if webhook is None:
        abort(404, message="Webhook not found.")
    return webhook


def get_delivery(webhook_id: uuid.UUID, delivery_id: uuid.UUID, *, reload: bool = False) -> WebhookDelivery:
    """The current tenant's delivery of that webhook or 404."""
    delivery = webhooks.find_delivery(request_session(), webhook_id, delivery_id, reload=reload)
    if delivery is None:
        abort(404, message="Delivery not found.")
    return delivery


@contextmanager
def conflict_as_409():
    """Turn :class:`~core.notify.webhooks.WebhookConflict` into a 409."""
    try:
        yield
    except webhooks.WebhookConflict as exc:
        abort(409, message=exc.message)


@blp.route("/webhooks")
class Webhooks(MethodView):
    @require("manage")
    @blp.arguments(WebhookQuery(), location="query")
    @blp.response(200, WebhookSchema(many=True), headers=PAGINATION_HEADER_DOC)
    def get(self, args):
        """List the tenant's webhooks, oldest first (secrets are never shown)."""
        stmt = webhooks.webhooks_statement(args.get("active"))
        headers = {}
        return paginate(request_session(), stmt, args, headers), 200, headers

    @require("admin")
    @blp.arguments(WebhookSchema())
    @blp.created(WebhookCreatedSchema, etag_schema=WebhookSchema)
    def post(self, body):
        """Register a webhook. The answer shows the signing secret, once."""
        session = request_session()
        webhook = webhooks.create_webhook(session, body, actor_id())
        session.commit()
        return webhook


@blp.route("/webhooks/event-types")
class EventTypes(MethodView):
    @require("read")
    @blp.response(200, EventTypeSchema(many=True))
    def get(self):
        """The event types webhooks of this tenant may subscribe to (besides patterns such as
        'clock.*' and '*'): core's and those of the plugins the tenant has enabled."""
        return [{"type": name, "description": text}
                for name, text in tenant_event_types(request_session()).items()]


@blp.route("/webhooks/<uuid:webhook_id>")
class WebhookById(MethodView):
    @require("manage")
    @blp.etag
    @blp.response(200, WebhookSchema)
    def get(self, webhook_id):
        """Get a webhook (without its secret)."""
        return get_webhook(webhook_id)

    @require("admin")
    @blp.etag
    @blp.arguments(WebhookSchema(partial=True))
    @blp.response(200, WebhookSchema)
    def patch(self, body, webhook_id):
        """Change a webhook: URL, event types, description, active, or a new secret (needs If-Match)."""
        session = request_session()
        webhook = get_webhook(webhook_id)
        blp.check_etag(webhook, WebhookSchema)
        webhooks.change_webhook(session, webhook, body, actor_id())
        session.commit()
        return webhook

    @require("admin")
    @blp.etag
    @blp.response(204)
    def delete(self, webhook_id):
        """Delete a webhook and its delivery log (needs If-Match); the outbox keeps the events."""
        session = request_session()
        webhook = get_webhook(webhook_id)
        blp.check_etag(webhook, WebhookSchema)
        webhooks.delete_webhook(session, webhook, actor_id())
        session.commit()


@blp.route("/webhooks/<uuid:webhook_id>/deliveries")
class Deliveries(MethodView):
    @require("manage")
    @blp.arguments(DeliveryQuery(), location="query")
    @blp.response(200, DeliverySchema(many=True), headers=PAGINATION_HEADER_DOC)
    def get(self, args, webhook_id):
        """The webhook's delivery log, newest first."""
        get_webhook(webhook_id)
        stmt = webhooks.deliveries_statement(webhook_id, args.get("status"), args.get("event_type"))
        headers = {}
        return paginate(request_session(), stmt, args, headers), 200, headers


@blp.route("/webhooks/<uuid:webhook_id>/deliveries/<uuid:delivery_id>")
class DeliveryById(MethodView):
    @require("manage")
    @blp.response(200, DeliverySchema)
    def get(self, webhook_id, delivery_id):
        """One delivery of the webhook."""
        return get_delivery(webhook_id, delivery_id)


@blp.route("/webhooks/<uuid:webhook_id>/deliveries/<uuid:delivery_id>/redeliver")
class Redeliver(MethodView):
    @require("admin")
    @blp.response(202, DeliverySchema)
    @blp.alt_response(409, description="The delivery is still pending, or the webhook is inactive")
    def post(self, webhook_id, delivery_id):
        """Send a delivered or failed delivery's event again, as a new delivery with fresh attempts."""
        session = request_session()
        webhook = get_webhook(webhook_id)
        original = get_delivery(webhook_id, delivery_id)
        with conflict_as_409():
            delivery = webhooks.redeliver(session, webhook, original)
        session.commit()  # without Redis the attempt runs now, inline
        return get_delivery(webhook_id, delivery.id, reload=True)


@blp.route("/webhooks/<uuid:webhook_id>/ping")
class Ping(MethodView):
    @require("admin")
    @blp.response(202, DeliverySchema)
    @blp.alt_response(409, description="The webhook is inactive")
    def post(self, webhook_id):
        """Send a ``ping`` event to this webhook only; the answer is its delivery."""
        session = request_session()
        webhook = get_webhook(webhook_id)
        with conflict_as_409():
            delivery = webhooks.ping(session, webhook)
        session.commit()  # without Redis the attempt runs now, inline
        return get_delivery(webhook_id, delivery.id, reload=True)


@blp.route("/notifications")
class Notifications(MethodView):
    @require("read")
    @blp.arguments(NotificationQuery(), location="query")
    @blp.response(200, NotificationSchema(many=True), headers=PAGINATION_HEADER_DOC)
    def get(self, args):
        """The outbox: every notification, newest first, whether or not a webhook received it."""
        stmt = events_statement(args.get("type"), args.get("since"), args.get("until"))
        headers = {}
        return paginate(request_session(), stmt, args, headers), 200, headers


@blp.route("/notifications/<uuid:event_id>")
class NotificationById(MethodView):
    @require("read")
    @blp.response(200, NotificationSchema)
    def get(self, event_id):
        """One notification of the outbox."""
        event = find_event(request_session(), event_id)
        if event is None:
            abort(404, message="Notification not found.")
        return event
