"""Webhooks go only to public addresses: loopback, private, link-local and cloud-metadata
addresses are refused when a webhook is saved (422) and again when it is delivered (the
host is resolved then: DNS can change), unless the platform sets
``WEBHOOK_ALLOW_PRIVATE`` (the rest of the suite does, its receivers listen on 127.0.0.1).
"""

from __future__ import annotations

import socket

import pytest
from sqlalchemy import func, select

from servq.core.models import Webhook
from tests.test_notifications import SECRET, add_webhook, deliveries, emit, receivers  # noqa: F401

URL = "/api/v1/webhooks"
PUBLIC = "93.184.215.14"  # a global unicast address (example.com's)


@pytest.fixture
def app_config(app_config):
    app_config["WEBHOOK_ALLOW_PRIVATE"] = False
    return app_config


@pytest.fixture
def dns(monkeypatch):
    """``dns["name"] = "1.2.3.4"``: what ``socket.getaddrinfo`` answers for a host name."""
    names: dict[str, str] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in names:
            family = socket.AF_INET6 if ":" in names[host] else socket.AF_INET
            sockaddr = (names[host], port or 0) + ((0, 0) if family == socket.AF_INET6 else ())
            return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr)]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return names


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8080/hook",
    "http://127.1.2.3/hook",
    "http://[::1]/hook",
    "http://10.0.0.5/hook",
    "http://172.16.3.4/hook",
    "https://192.168.1.10/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fe80::1]/hook",
    "http://[fd00::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[::ffff:169.254.169.254]/hook",
    "http://0.0.0.0/hook",
    "http://100.64.0.1/hook",
    "http://localhost:9000/hook",
    "http://metadata.internal.test/computeMetadata",
    "http://mapped.internal.test/hook",
])
def test_non_public_addresses_are_refused_on_create(acme, dns, url):
    dns["metadata.internal.test"] = "169.254.169.254"
    dns["mapped.internal.test"] = "::ffff:127.0.0.1"
    r = acme.api.post(URL, json={"url": url, "event_types": ["*"]})
    assert r.status_code == 422, r.json
    [message] = r.json["errors"]["json"]["url"]
    if "::ffff:" in url:  # marshmallow's URL field refuses IPv4-mapped literals already
        assert message == "Not a valid URL."
    else:
        assert "not a public address" in message, message
    with acme.session() as s:
        assert s.scalar(select(func.count()).select_from(Webhook)) == 0


def test_public_addresses_are_accepted(acme, dns):
    dns["hooks.customer.test"] = PUBLIC
    for url in (f"https://{PUBLIC}/hook", "https://hooks.customer.test/servq", "http://[2606:4700::1]/x"):
        r = acme.api.post(URL, json={"url": url, "event_types": ["*"]})
        assert r.status_code == 201, (url, r.json)
        assert r.json["url"] == url


def test_changing_the_url_to_a_private_address_is_refused(acme, dns):
    dns["hooks.customer.test"] = PUBLIC
    hook = add_webhook(acme, "https://hooks.customer.test/servq")
    for url in ("http://127.0.0.1/x", "http://[fd12::1]/x", "http://localhost/x"):
        r = acme.api.update(f"{URL}/{hook['id']}", {"url": url})
        assert r.status_code == 422, r.json
        assert "not a public address" in r.json["errors"]["json"]["url"][0]
    assert acme.api.get(f"{URL}/{hook['id']}").json["url"] == "https://hooks.customer.test/servq"


def test_a_delivery_to_a_host_that_now_resolves_to_loopback_is_not_sent(app, acme, dns, receivers):
    receiver = receivers(200)
    port = receiver.url.split(":")[2].split("/")[0]
    dns["hooks.customer.test"] = PUBLIC
    hook = add_webhook(acme, f"http://hooks.customer.test:{port}/hooks/servq")
    dns["hooks.customer.test"] = "127.0.0.1"  # the name now points at the receiver on loopback
    emit(app, acme, "clock.breached")
    assert receiver.requests == []
    [delivery] = deliveries(acme, hook["id"])
    assert delivery["status"] == "failed" and delivery["next_attempt_at"] is None
    assert delivery["last_status_code"] is None
    assert "hooks.customer.test" in delivery["last_error"] and "127.0.0.1" in delivery["last_error"]
    assert "not sent" in delivery["last_error"]


def test_the_platform_may_allow_private_addresses(app, acme, receivers):
    app.config["WEBHOOK_ALLOW_PRIVATE"] = True
    receiver = receivers(200)
    hook = add_webhook(acme, receiver.url)
    emit(app, acme, "clock.breached")
    assert len(receiver.requests) == 1
    assert deliveries(acme, hook["id"])[0]["status"] == "delivered"
