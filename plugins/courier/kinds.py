"""The courier plugin's record kinds: deliveries, pickups and vehicle checks.

``courier.delivery`` (派件) is one parcel's delivery, attempt after attempt; ``staff_id`` is
the courier, the site the station (网点)::

    received ─dispatch→ out_for_delivery ─arrive→ at_door ─hand_over→ delivered
                 ↑            │    contact / notify_delay keep the state (stamps)
                 │            └───────────┬──── fail (reason; photo when the tenant says so)
              redeliver                   ↓
                 │                  attempt_failed ─hold→ held_for_pickup
    waiting_for_recipient ←reschedule─┘     └─return→ returned

``waiting_for_recipient`` is a waiting state (the recipient asked for another day). The
appointment ("kept or notified") is judged by the plugin's ``courier.window`` rule from the
record's stamps, not by a clock, so a reschedule never moves it; the service time limit is a
deadline clock, paused while waiting.

Derived fields, worked out on every write (a value sent for them is ignored):
``no_rush_fee``, ``no_gift_withheld`` (the prohibited acts; true unless a complaint
investigation or a spot check found the act), ``waited_for_check`` (n.a. unless handed over
in person), ``failure_evidenced`` (n.a. unless an attempt failed) and
``delivered_first_attempt`` (the first-time-fix field: null until delivered or failed).
"""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate, validates_schema

from servq import RecordKind, Transition, Workflow, utc_instant

SERVICES = ("same_city", "intra_province", "domestic", "international")
FAILURE_REASONS = ("recipient_absent", "unreachable", "refused", "address_wrong", "address_inaccessible",
                   "damaged", "rescheduled_by_recipient", "weather", "vehicle", "other")
HANDOVER_MODES = ("in_person", "locker", "station", "neighbour")
SPEAKERS = ("courier", "customer")
AGREED_VIA = ("phone", "sms", "app")
DELIVERY_STATUSES = ("received", "out_for_delivery", "at_door", "attempt_failed", "waiting_for_recipient",
                     "delivered", "held_for_pickup", "returned")
PICKUP_STATUSES = ("requested", "confirmed", "waiting_for_sender", "picked_up", "failed")
CHECK_STATUSES = ("recorded", "reviewed")
PHONE = validate.Regexp(r"^\+?[0-9][0-9 ()\-]{2,38}$",
                        error="A phone number: digits, spaces, '-', '(' and ')', optionally starting with '+'.")
REF = fields.String(validate=validate.Length(min=1, max=500))


def _t(en: str, zh: str) -> dict[str, str]:
    return {"en": en, "zh": zh}


class Strict(Schema):
    class Meta:
        unknown = RAISE


class PersonSchema(Strict):
    """The recipient or sender: personal data, masked for roles without ``personal_data``."""

    name = fields.String(validate=validate.Length(max=200))
    phone = fields.String(validate=[validate.Length(max=40), PHONE])
    address = fields.String(validate=validate.Length(max=500))


class ParcelSchema(Strict):
    declared_value = fields.Decimal(as_string=True, allow_none=True, validate=validate.Range(min=0))
    insured = fields.Boolean(load_default=False)
    cod_amount = fields.Decimal(as_string=True, allow_none=True, validate=validate.Range(min=0))
    weight_kg = fields.Float(allow_none=True, validate=validate.Range(min=0, max=100_000))


class AppointmentSchema(Strict):
    """The time agreed with the customer (S 与顾客约定好时间); ``to`` defaults to ``from`` plus
    the standard's window (``appointment_window_minutes``)."""

    from_ = fields.AwareDateTime(data_key="from", required=True, validate=utc_instant)
    to = fields.AwareDateTime(load_default=None, allow_none=True, validate=utc_instant)
    agreed_via = fields.String(load_default="phone", validate=validate.OneOf(AGREED_VIA))
    agreed_at = fields.AwareDateTime(load_default=None, allow_none=True, validate=utc_instant)

    @validates_schema
    def _order(self, data: dict[str, Any], **kwargs) -> None:
        if data.get("to") is not None and data["to"] <= data["from_"]:
            raise ValidationError("The window ends after it starts.", "to")


class TurnSchema(Strict):
    speaker = fields.String(required=True, validate=validate.OneOf(SPEAKERS))
    start_s = fields.Float(load_default=None, allow_none=True, validate=validate.Range(min=0))
    text = fields.String(required=True, validate=validate.Length(max=5000))


class HandoverSchema(Strict):
    mode = fields.String(required=True, validate=validate.OneOf(HANDOVER_MODES))
    checked_by_recipient = fields.Boolean(load_default=None, allow_none=True, metadata={
        "description": "In person: the courier stayed until the customer had checked the parcel"})
    signed_by = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))
    signature_ref = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=500))
    photos = fields.List(REF, load_default=list, validate=validate.Length(max=20))


class ConductSchema(Strict):
    """What a complaint investigation or a spot check found (the four prohibited acts)."""

    rush_fee_charged = fields.Boolean(load_default=False, metadata={"description": "A private rush fee was charged"})
    gift_withheld = fields.Boolean(load_default=False, metadata={"description": "The customer's free gift was kept"})
    left_before_check = fields.Boolean(load_default=False, metadata={
        "description": "The courier left before the customer had checked the parcel"})
    source = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(
        ("complaint", "spot_check", "customer_survey")))


class CallMixin(Strict):
    call_transcript = fields.List(fields.Nested(TurnSchema), load_default=list, validate=validate.Length(max=500),
                                  metadata={"description": "The pre-delivery call, turn by turn (courier/customer)"})
    conduct = fields.Nested(ConductSchema, load_default=dict)
    appointment = fields.Nested(AppointmentSchema, load_default=None, allow_none=True)
    no_rush_fee = fields.Raw(load_default=None, metadata={"description": "Derived: no private rush fee found"})


class DeliveryData(CallMixin):
    """``data`` of a ``courier.delivery``."""

    waybill_no = fields.String(required=True, validate=validate.Regexp(
        r"^[A-Za-z0-9\-]{4,40}$", error="A waybill number: 4-40 letters, digits or '-'."))
    service = fields.String(load_default="domestic", validate=validate.OneOf(SERVICES))
    shipped_at = fields.AwareDateTime(load_default=None, allow_none=True, validate=utc_instant,
                                      metadata={"description": "收寄时间: the time limit counts from it"})
    recipient = fields.Nested(PersonSchema, load_default=dict)
    parcel = fields.Nested(ParcelSchema, load_default=dict)
    preferred_time = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=100))
    attempt_no = fields.Integer(load_default=1, strict=True, validate=validate.Range(min=1, max=20))
    failure_reason = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(FAILURE_REASONS))
    failure_evidence = fields.List(REF, load_default=list, validate=validate.Length(max=20),
                                   metadata={"description": "Photos of a failed attempt (the door, the damage)"})
    handover = fields.Nested(HandoverSchema, load_default=None, allow_none=True)
    cod_collected = fields.Decimal(as_string=True, load_default=None, allow_none=True)
    rating = fields.Integer(load_default=None, allow_none=True, strict=True, validate=validate.Range(min=1, max=5))
    # Derived
    no_gift_withheld = fields.Raw(load_default=None, metadata={"description": "Derived: no gift withheld"})
    waited_for_check = fields.Raw(load_default=None, metadata={
        "description": "Derived: stayed until checked (n.a. unless handed over in person)"})
    failure_evidenced = fields.Raw(load_default=None, metadata={
        "description": "Derived: a failed attempt has a reason and a photo (n.a. without a failure)"})
    delivered_first_attempt = fields.Raw(load_default=None, metadata={
        "description": "Derived: delivered at attempt 1 (null while undecided)"})

    @validates_schema
    def _handover(self, data: dict[str, Any], **kwargs) -> None:
        handover = data.get("handover")
        if handover and handover.get("mode") == "neighbour" and not handover.get("photos"):
            raise ValidationError({"handover": {"photos": ["A hand-over to a neighbour needs a photo."]}})

    @post_load
    def _derive(self, data: dict[str, Any], **kwargs) -> dict[str, Any]:
        conduct = data.get("conduct") or {}
        data["no_rush_fee"] = not conduct.get("rush_fee_charged", False)
        data["no_gift_withheld"] = not conduct.get("gift_withheld", False)
        handover = data.get("handover") or {}
        if conduct.get("left_before_check"):
            data["waited_for_check"] = False
        elif handover.get("mode") == "in_person":
            checked = handover.get("checked_by_recipient")
            data["waited_for_check"] = None if checked is None else bool(checked)
        else:
            data["waited_for_check"] = None
        reason = data.get("failure_reason")
        data["failure_evidenced"] = None if reason is None else bool(data.get("failure_evidence"))
        if handover:
            data["delivered_first_attempt"] = data.get("attempt_no", 1) == 1 and reason is None
        elif reason is not None:
            data["delivered_first_attempt"] = False
        else:
            data["delivered_first_attempt"] = None
        return data


class PickupData(CallMixin):
    """``data`` of a ``courier.pickup`` (揽收)."""

    sender = fields.Nested(PersonSchema, load_default=dict)
    address = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=500))
    content_checked = fields.Boolean(load_default=None, allow_none=True, metadata={
        "description": "收寄验视: the content was checked before accepting the parcel"})
    failure_reason = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(FAILURE_REASONS))

    @post_load
    def _derive(self, data: dict[str, Any], **kwargs) -> dict[str, Any]:
        data["no_rush_fee"] = not (data.get("conduct") or {}).get("rush_fee_charged", False)
        return data


class VehicleCheckData(Strict):
    """``data`` of a ``courier.vehicle_check`` (车辆检查)."""

    vehicle_id = fields.String(required=True, validate=validate.Length(min=1, max=40))
    body_clean_branded = fields.Boolean(required=True)
    cargo_secured = fields.Boolean(required=True)
    lights_tyres_brakes_ok = fields.Boolean(required=True)
    documents_valid = fields.Boolean(required=True, metadata={"description": "Licence, registration, insurance"})
    no_passengers = fields.Boolean(required=True)
    findings = fields.String(load_default="", validate=validate.Length(max=5000))


DELIVERY_WORKFLOW = Workflow(
    transitions=(
        Transition("dispatch", ("received",), "out_for_delivery", "out_at", _t("Out for delivery", "出仓派送")),
        *(Transition("contact", (state,), state, "contacted_at", _t("Call the customer", "联系顾客"), restamp=True)
          for state in ("received", "out_for_delivery", "waiting_for_recipient")),
        # The first notice of an attempt counts (a notice in time stays in time); a new
        # attempt (redeliver) clears it with the arrival, for the new appointment.
        *(Transition("notify_delay", (state,), state, "delay_notified_at",
                     _t("Tell the customer of a delay", "告知顾客延误"))
          for state in ("received", "out_for_delivery", "waiting_for_recipient")),
        Transition("arrive", ("out_for_delivery",), "at_door", "arrived_at", _t("At the door", "到达")),
        Transition("hand_over", ("at_door",), "delivered", "delivered_at", _t("Hand over", "妥投"),
                   requires={"handover.mode": {"present": True}}),
        Transition("fail", ("at_door", "out_for_delivery"), "attempt_failed", "failed_at",
                   _t("Failed attempt", "未妥投"), restamp=True,
                   requires={"failure_reason": {"present": True}}),
        Transition("reschedule", ("attempt_failed",), "waiting_for_recipient", "rescheduled_at",
                   _t("Reschedule with the recipient", "改约"), restamp=True),
        Transition("redeliver", ("waiting_for_recipient", "attempt_failed"), "out_for_delivery", "out_at",
                   _t("Out for delivery again", "再次派送"), restamp=True,
                   clears=("arrived_at", "delay_notified_at")),
        Transition("hold", ("attempt_failed", "waiting_for_recipient"), "held_for_pickup", "held_at",
                   _t("Hold at the station for pickup", "网点自提")),
        Transition("return", ("attempt_failed", "waiting_for_recipient"), "returned", "returned_at",
                   _t("Return to sender", "退回")),
    ),
    initial_stamp="received_at",
    waiting=("waiting_for_recipient",),
    final=("delivered", "held_for_pickup", "returned"),
)

PICKUP_WORKFLOW = Workflow(
    transitions=(
        Transition("confirm", ("requested",), "confirmed", "confirmed_at", _t("Confirm", "确认")),
        *(Transition("notify_delay", (state,), state, "delay_notified_at",
                     _t("Tell the sender of a delay", "告知延误"), restamp=True)
          for state in ("requested", "confirmed")),
        Transition("arrive", ("confirmed",), "confirmed", "arrived_at", _t("At the door", "到达"), restamp=True),
        Transition("pick_up", ("confirmed",), "picked_up", "picked_up_at", _t("Pick up", "揽收")),
        Transition("wait", ("confirmed",), "waiting_for_sender", "waiting_at", _t("Wait for the sender", "等待寄件人"),
                   restamp=True),
        Transition("resume", ("waiting_for_sender",), "confirmed", "resumed_at", _t("Resume", "继续"), restamp=True),
        Transition("fail", ("confirmed", "waiting_for_sender"), "failed", "failed_at", _t("Failed", "揽收失败"),
                   requires={"failure_reason": {"present": True}}),
    ),
    initial_stamp="requested_at",
    waiting=("waiting_for_sender",),
    final=("picked_up", "failed"),
)


def record_kinds() -> list[RecordKind]:
    """The plugin's record kinds (registered through ``register_record_kinds``)."""
    return [
        RecordKind(name="courier.delivery", schema=DeliveryData, title=_t("Delivery", "派件"),
                   description="One parcel's delivery by a courier of a station, attempt after attempt: "
                               "appointment, call, hand-over or failed attempt, conduct.",
                   statuses=DELIVERY_STATUSES, workflow=DELIVERY_WORKFLOW, personal=("recipient",),
                   first_time_fix="delivered_first_attempt", reference="waybill_no"),
        RecordKind(name="courier.pickup", schema=PickupData, title=_t("Pickup", "揽收"),
                   description="A parcel picked up from a sender at an agreed time.",
                   statuses=PICKUP_STATUSES, workflow=PICKUP_WORKFLOW, personal=("sender",)),
        RecordKind(name="courier.vehicle_check", schema=VehicleCheckData, title=_t("Vehicle check", "车辆检查"),
                   description="A monthly check of a delivery vehicle.", statuses=CHECK_STATUSES),
    ]
