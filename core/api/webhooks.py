"""Webhooks, the notification outbox and deliveries.

``/api/v1/webhooks`` (the tenant's endpoints, their delivery logs, ping and redelivery)
and ``/api/v1/notifications`` (the outbox: every notification, whether or not a webhook
received it). The blueprint is mounted at ``/api/v1`` (``URL = ""``) so that it can
serve both. The outbox is :mod:`core.notify.outbox`, the delivery mechanics
:mod:`core.notify.delivery`; the receiver's side is in docs/webhooks.md.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, ValidationError, fields, validate, validates, validates_schema
from sqlalchemy import select

from servq.core.notify import webhooks
from servq.core.notify.delivery import STATUSES, allow_private, refused_destination
from servq.core.notify.outbox import EVENT_TYPES, check_pattern
from servq.core.api.blueprint import Blueprint
from servq.core.api.context import actor_id, require
from servq.core.api.pagination import PAGINATION_HEADER_DOC, PageArgs, paginate
from servq.core.audit import apply_changes, audit
from servq.core.db.session import request_session
from servq.core.models import OutboxEvent, Webhook, WebhookDelivery

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
        parts = urlsplit(value)
        if parts.username is not None or parts.password is not None:
            raise ValidationError("Credentials in the URL are not supported: receivers verify the signature.")
        if not parts.hostname:
            raise ValidationError("The URL needs a host.")
        if allow_private():
            return
        try:
            refused = refused_destination(value)
        except (OSError, ValueError):  # not resolvable now: checked again at every delivery
            refused = None
        if refused:
            raise ValidationError(f"The URL's host {refused}.")

    @validates("event_types")
    def _known_types(self, value, **kwargs):
        errors = {i: [reason] for i, pattern in enumerate(value)
                  if (reason := check_pattern(pattern)) is not None}
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
    webhook = request_session().scalar(select(Webhook).where(Webhook.id == webhook_id))
    if webhook is None:
        abort(404, message="Webhook not found.")
    return webhook


def get_delivery(webhook_id: uuid.UUID, delivery_id: uuid.UUID, *, fresh: bool = False) -> WebhookDelivery:
    """The current tenant's delivery of that webhook or 404."""
    stmt = select(WebhookDelivery).where(WebhookDelivery.id == delivery_id,
                                         WebhookDelivery.webhook_id == webhook_id)
    if fresh:
        stmt = stmt.execution_options(populate_existing=True)
    delivery = request_session().scalar(stmt)
    if delivery is None:
        abort(404, message="Delivery not found.")
    return delivery


def _audit_values(body: dict) -> dict:
    return {k: ([None, "[hidden]"] if k == "secret" else [None, v]) for k, v in body.items()}


@blp.route("/webhooks")
class Webhooks(MethodView):
    @require("manage")
    @blp.arguments(WebhookQuery(), location="query")
    @blp.response(200, WebhookSchema(many=True), headers=PAGINATION_HEADER_DOC)
    def get(self, args):
        """List the tenant's webhooks, oldest first (secrets are never shown)."""
        stmt = select(Webhook).order_by(Webhook.created_at, Webhook.id)
        if "active" in args:
            stmt = stmt.where(Webhook.active.is_(args["active"]))
        headers = {}
        return paginate(request_session(), stmt, args, headers), 200, headers

    @require("admin")
    @blp.arguments(WebhookSchema())
    @blp.created(WebhookCreatedSchema, etag_schema=WebhookSchema)
    def post(self, body):
        """Register a webhook. The answer shows the signing secret, once."""
        session = request_session()
        body["event_types"] = list(dict.fromkeys(body["event_types"]))
        body.setdefault("secret", webhooks.new_secret())
        webhook = Webhook(id=uuid.uuid4(), created_by=actor_id(), **body)
        session.add(webhook)
        session.flush()
        audit(session, "webhooks", webhook.id, "created", actor_id(), _audit_values(body))
        session.commit()
        return webhook


@blp.route("/webhooks/event-types")
class EventTypes(MethodView):
    @require("read")
    @blp.response(200, EventTypeSchema(many=True))
    def get(self):
        """The event types webhooks may subscribe to (besides patterns such as 'clock.*' and '*')."""
        return [{"type": name, "description": text} for name, text in EVENT_TYPES.items()]


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
        if "event_types" in body:
            body["event_types"] = list(dict.fromkeys(body["event_types"]))
        secret = body.pop("secret", None)
        changes = apply_changes(webhook, body)
        if secret is not None and secret != webhook.secret:
            webhook.secret = secret
            changes["secret"] = ["[hidden]", "[changed]"]
        if changes:
            audit(session, "webhooks", webhook.id, "changed", actor_id(), changes)
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
        audit(session, "webhooks", webhook.id, "deleted", actor_id())
        session.delete(webhook)
        session.commit()


@blp.route("/webhooks/<uuid:webhook_id>/deliveries")
class Deliveries(MethodView):
    @require("manage")
    @blp.arguments(DeliveryQuery(), location="query")
    @blp.response(200, DeliverySchema(many=True), headers=PAGINATION_HEADER_DOC)
    def get(self, args, webhook_id):
        """The webhook's delivery log, newest first."""
        get_webhook(webhook_id)
        stmt = (select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
                .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc()))
        if args.get("status"):
            stmt = stmt.where(WebhookDelivery.status == args["status"])
        if args.get("event_type"):
            stmt = stmt.where(WebhookDelivery.event_type == args["event_type"])
        headers = {}
        return paginate(request_session(), stmt, args, headers), 200, headers


@blp.route("/webhooks/<uuid:webhook_id>/deliveries/<uuid:delivery_id>")
class DeliveryById(MethodView):
    @require("manage")
    @blp.response(200, DeliverySchema)
    def get(self, webhook_id, delivery_id):
        """One delivery of the webhook."""
        return get_delivery(webhook_id, delivery_id)


def _inactive(webhook: Webhook) -> None:
    if not webhook.active:
        abort(409, message="The webhook is inactive: activate it first.")


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
        _inactive(webhook)
        if original.status == "pending":
            abort(409, message="The delivery is still pending; it is retried automatically "
                               f"(next attempt at {original.next_attempt_at.isoformat()}).")
        delivery = webhooks.redeliver(session, original)
        session.commit()  # without Redis the attempt runs now, inline
        return get_delivery(webhook_id, delivery.id, fresh=True)


@blp.route("/webhooks/<uuid:webhook_id>/ping")
class Ping(MethodView):
    @require("admin")
    @blp.response(202, DeliverySchema)
    @blp.alt_response(409, description="The webhook is inactive")
    def post(self, webhook_id):
        """Send a ``ping`` event to this webhook only; the answer is its delivery."""
        session = request_session()
        webhook = get_webhook(webhook_id)
        _inactive(webhook)
        delivery = webhooks.ping(session, webhook)
        session.commit()  # without Redis the attempt runs now, inline
        return get_delivery(webhook_id, delivery.id, fresh=True)


@blp.route("/notifications")
class Notifications(MethodView):
    @require("read")
    @blp.arguments(NotificationQuery(), location="query")
    @blp.response(200, NotificationSchema(many=True), headers=PAGINATION_HEADER_DOC)
    def get(self, args):
        """The outbox: every notification, newest first, whether or not a webhook received it."""
        stmt = select(OutboxEvent).order_by(OutboxEvent.created_at.desc(), OutboxEvent.id.desc())
        kind = args.get("type")
        if kind and kind != "*":
            if kind.endswith(".*"):
                stmt = stmt.where(OutboxEvent.type.startswith(kind[:-1], autoescape=True))
            else:
                stmt = stmt.where(OutboxEvent.type == kind)
        if args.get("since"):
            stmt = stmt.where(OutboxEvent.created_at >= args["since"])
        if args.get("until"):
            stmt = stmt.where(OutboxEvent.created_at < args["until"])
        headers = {}
        return paginate(request_session(), stmt, args, headers), 200, headers


@blp.route("/notifications/<uuid:event_id>")
class NotificationById(MethodView):
    @require("read")
    @blp.response(200, NotificationSchema)
    def get(self, event_id):
        """One notification of the outbox."""
        event = request_session().scalar(select(OutboxEvent).where(OutboxEvent.id == event_id))
        if event is None:
            abort(404, message="Notification not found.")
        return event
