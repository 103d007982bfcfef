"""Webhooks reach public addresses only: checked when a subscription is saved, and again after
resolving the name at send time, connecting to the address that was checked."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from escalations import webhooks
from escalations.models import EngineeringTeam, WebhookSubscription
from escalations.validators import validate_webhook_url
from supportdesk.core import netguard
from tests.escalations.receiver import Receiver

FORBIDDEN = [
    "http://127.0.0.1/hook",
    "http://localhost:8080/hook",
    "http://[::1]/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.1.2.3/hook",
    "http://172.16.0.1/hook",
    "http://192.168.1.1/hook",
    "http://100.64.0.1/hook",
    "http://0.0.0.0/hook",
    "http://[::]/hook",
    "http://[fd00::1]/hook",
    "http://[fe80::1]/hook",
    "http://224.0.0.1/hook",
    "http://240.0.0.1/hook",
    "http://255.255.255.255/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[::ffff:7f00:1]/hook",
    "http://[::ffff:169.254.169.254]/hook",
    "http://[2002:7f00:1::]/hook",  # 6to4 around 127.0.0.1
    "http://[64:ff9b::a00:1]/hook",  # NAT64 around 10.0.0.1
    "http://2130706433/hook",  # 127.0.0.1 as one decimal number
    "http://0177.0.0.1/hook",  # octal
    "http://0x7f.1/hook",  # hex, short form
    "http://017700000001/hook",
    "http://0xa9fea9fe/hook",  # 169.254.169.254
    "https://127.1/hook",
]


@pytest.mark.parametrize("url", FORBIDDEN)
def test_an_internal_address_is_refused_in_every_spelling(url):
    with pytest.raises(ValidationError) as info:
        validate_webhook_url(url)
    assert "public addresses" in info.value.messages[0]
    result = webhooks.post(url=url, body=b"{}", secret="k", delivery_id="d", event="e", timestamp=0)
    assert result.status_code is None
    assert "public addresses" in result.error


def _spellings(address: ipaddress.IPv4Address) -> list[str]:
    value = int(address)
    octets = str(address).split(".")
    return [
        str(address),
        str(value),
        hex(value),
        ".".join(f"0{int(o):o}" for o in octets),
        f"[::ffff:{address}]",
        f"[::ffff:{value >> 16:x}:{value & 0xFFFF:x}]",
    ]


INTERNAL_V4 = st.one_of(
    st.integers(int(ipaddress.ip_address("127.0.0.0")), int(ipaddress.ip_address("127.255.255.255"))),
    st.integers(int(ipaddress.ip_address("10.0.0.0")), int(ipaddress.ip_address("10.255.255.255"))),
    st.integers(int(ipaddress.ip_address("172.16.0.0")), int(ipaddress.ip_address("172.31.255.255"))),
    st.integers(int(ipaddress.ip_address("192.168.0.0")), int(ipaddress.ip_address("192.168.255.255"))),
    st.integers(int(ipaddress.ip_address("169.254.0.0")), int(ipaddress.ip_address("169.254.255.255"))),
).map(ipaddress.IPv4Address)


@hypothesis_settings(max_examples=200, deadline=None)
@given(INTERNAL_V4)
def test_fuzz_no_spelling_of_an_internal_address_gets_through(address):
    for spelling in _spellings(address):
        with pytest.raises(ValidationError):
            validate_webhook_url(f"http://{spelling}:8080/hook")


@hypothesis_settings(max_examples=100, deadline=None)
@given(st.integers(int(ipaddress.ip_address("1.0.0.0")), int(ipaddress.ip_address("9.255.255.255"))))
def test_fuzz_public_addresses_are_accepted(value):
    validate_webhook_url(f"https://{ipaddress.IPv4Address(value)}/hook")


def test_a_name_that_does_not_resolve_yet_can_be_saved_and_fails_at_send_time():
    validate_webhook_url("https://hooks.example.invalid/x")
    result = webhooks.post(
        url="https://hooks.example.invalid/x", body=b"{}", secret="k", delivery_id="d", event="e", timestamp=0
    )
    assert result.status_code is None
    assert "cannot be resolved" in result.error


@pytest.mark.django_db
def test_saving_a_subscription_to_an_internal_host_names_the_field():
    team = EngineeringTeam.objects.create(name="Payments", slug="payments")
    subscription = WebhookSubscription(team=team, url="http://169.254.169.254/latest/")
    with pytest.raises(ValidationError) as info:
        subscription.full_clean()
    assert "169.254.169.254 is a link-local address" in info.value.message_dict["url"][0]


def test_an_operator_may_allow_an_internal_network(settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = ["10.20.0.0/16"]
    validate_webhook_url("http://10.20.3.4/hook")
    with pytest.raises(ValidationError):
        validate_webhook_url("http://10.21.3.4/hook")


def test_a_name_rebound_to_an_internal_address_after_saving_is_refused_at_send_time(monkeypatch):
    answers = {"hooks.partner.test": "93.184.216.34"}
    real = socket.getaddrinfo

    def resolver(host, port, *args, **kwargs):  # the DNS server the attacker controls
        if host in answers:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[host], port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    validate_webhook_url("http://hooks.partner.test/hook")  # public when saved
    answers["hooks.partner.test"] = "127.0.0.1"  # rebound before the send
    result = webhooks.post(
        url="http://hooks.partner.test/hook", body=b"{}", secret="k", delivery_id="d", event="e", timestamp=0
    )
    assert result.status_code is None
    assert "127.0.0.1 is a loopback address" in result.error


def test_the_connection_goes_to_the_checked_address_with_the_name_as_host(monkeypatch, settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    receiver = Receiver(secret="k")
    try:
        port = receiver.server.server_address[1]
        lookups = []
        real = socket.getaddrinfo

        def resolver(host, port_, *args, **kwargs):
            if host == "hooks.partner.test":
                lookups.append(host)
                # Only the first answer is the receiver: a second lookup (by the HTTP library at
                # connect time) would go to a closed port and fail the delivery.
                target = "127.0.0.1" if len(lookups) == 1 else "192.0.2.1"
                return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (target, port_))]
            return real(host, port_, *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", resolver)
        result = webhooks.post(
            url=f"http://hooks.partner.test:{port}/hooks/supportdesk",
            body=b"{}",
            secret="k",
            delivery_id="d-1",
            event="escalation.submitted",
            timestamp=0,
        )
        assert result.ok, result.error
        assert lookups == ["hooks.partner.test"]
        [request] = receiver.received
        assert request.header("Host") == f"hooks.partner.test:{port}"
    finally:
        receiver.close()


def test_refusal_reads_addresses_inside_ipv6_forms():
    inside = netguard.refusal(ipaddress.ip_address("::ffff:10.0.0.1"))
    assert inside == "10.0.0.1 is a private address (inside ::ffff:a00:1)"
    assert netguard.refusal(ipaddress.ip_address("2606:4700::1111")) is None
