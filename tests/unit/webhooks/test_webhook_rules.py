"""Webhook signing, URL policy, subscriptions, ids and backoff: the rules without a server."""

from __future__ import annotations

import base64
import datetime as dt
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from bson import ObjectId

from mailbox_service.errors import InvalidMetadata
from mailbox_service.settings import WebhookSettings
from mailbox_service.webhooks.courier import Backoff
from mailbox_service.webhooks.deliveries import delivery_id
from mailbox_service.webhooks.endpoints import checked_events, checked_source
from mailbox_service.webhooks.sender import WebhookSender, host_header, request_path
from mailbox_service.webhooks.signing import new_secret, payload, signature, signed_headers
from mailbox_service.webhooks.url_policy import UrlRefused, check, check_for_endpoint


def test_signature_matches_the_standard_webhooks_reference_vector() -> None:
    # The example of the Standard Webhooks specification and its reference libraries.
    assert (
        signature(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            b'{"test": 2432232314}',
        )
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_secret_is_prefixed_base64_of_32_random_bytes() -> None:
    one, two = new_secret(), new_secret()
    assert one != two
    assert one.startswith("whsec_")
    assert len(base64.b64decode(one.removeprefix("whsec_"))) == 32


def test_headers_carry_the_attempt_time_and_a_signature_over_it() -> None:
    at = dt.datetime(2026, 11, 30, 12, 0, 5, tzinfo=dt.UTC)
    headers = signed_headers("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whmsg_1", b"{}", at)
    assert headers["webhook-timestamp"] == str(int(at.timestamp()))
    assert headers["webhook-id"] == "whmsg_1"
    assert headers["content-type"] == "application/json"
    later = signed_headers(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whmsg_1", b"{}", at + dt.timedelta(seconds=1)
    )
    assert later["webhook-signature"] != headers["webhook-signature"]


def test_payload_follows_the_convention_with_document_fields_in_data() -> None:
    object_id = ObjectId()
    body = payload(
        {
            "_id": object_id,
            "type": "document.print_required",
            "occurred_at": dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC),
            "document_id": "d1",
            "source_ref": "r1",
            "document_type": "invoice",
            "data": {"reason": "email_bounced"},
        }
    )
    assert body == (
        b'{"id":"evt_' + str(object_id).encode() + b'","type":"document.print_required",'
        b'"timestamp":"2026-11-30T12:00:00.000Z","data":{"reason":"email_bounced",'
        b'"document_id":"d1","source_ref":"r1","document_type":"invoice"}}'
    )


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://example.org/hook", "http:// or https://"),
        ("javascript:alert(1)", "http:// or https://"),
        ("http://127.0.0.1/" + "a" * 2100, "longer than 2048"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://169.254.1.1:8080/", "link-local"),
        ("http://[fe80::1]/hook", "link-local"),
        ("http://[fd00:ec2::254]/", "metadata"),
        ("http://100.100.100.200/", "metadata"),
        ("http://metadata.google.internal/computeMetadata/v1/", "metadata service"),
        ("http://0.0.0.0:8080/", "unspecified"),
        ("http://[::]/", "unspecified"),
        ("http://[::ffff:169.254.169.254]/", "link-local"),
        ("http://user:pw@127.0.0.1/", "user info"),
        ("http:///nohost", "no host"),
        ("http://127.0.0.1:99999/", "not a valid URL"),
    ],
)
def test_refused_urls_name_the_field_and_the_reason(url: str, why: str) -> None:
    with pytest.raises(InvalidMetadata) as refused:
        check_for_endpoint(url, allow_private=True)
    assert refused.value.field == "url"
    assert why in refused.value.message


def test_loopback_and_private_are_allowed_unless_turned_off() -> None:
    for url in ("http://127.0.0.1:8080/hook", "https://10.1.2.3/hook", "http://[::1]/"):
        assert check(url, allow_private=True).url == url
        with pytest.raises(UrlRefused, match="loopback or private"):
            check(url, allow_private=False)


def test_names_are_checked_on_what_they_resolve_to() -> None:
    target = check("http://localhost:8080/x", allow_private=True)
    assert target.address.is_loopback
    with pytest.raises(UrlRefused, match="loopback or private"):
        check("http://localhost:8080/x", allow_private=False)
    with pytest.raises(UrlRefused, match="does not resolve"):
        check("http://no-such-host.invalid/", allow_private=True)


def test_the_request_names_the_original_host_and_path() -> None:
    assert host_header(check("http://localhost:8080/x?y=1", allow_private=True)) == (
        "localhost:8080"
    )
    assert host_header(check("https://127.0.0.1/", allow_private=True)) == "127.0.0.1"
    assert host_header(check("http://[::1]:81/", allow_private=True)) == "[::1]:81"
    assert request_path("http://localhost:8080/x/y?a=1&b=2") == "/x/y?a=1&b=2"
    assert request_path("http://localhost") == "/"


def test_sender_connects_to_the_checked_address_keeps_it_and_refuses_metadata() -> None:
    seen: list[tuple[int, str | None, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keeps the connection, as most receivers do

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append((self.client_address[1], self.headers["Host"], body))
            self.send_response(202)
            self.send_header("Content-Length", "5")
            self.end_headers()
            self.wfile.write(b"thank")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    sender = WebhookSender(timeout_s=2, allow_private=True)
    try:
        url = f"http://localhost:{port}/hook?x=1"
        first = sender.post(url, b'{"a":1}', {"content-type": "application/json"})
        second = sender.post(url, b'{"a":2}', {"content-type": "application/json"})
        assert (first.status_code, first.body, first.delivered) == (202, "thank", True)
        assert second.status_code == 202
        assert [s[1] for s in seen] == [f"localhost:{port}"] * 2
        assert [s[2] for s in seen] == [b'{"a":1}', b'{"a":2}']
        assert seen[0][0] == seen[1][0]  # one kept connection (same client port)
        refused = sender.post("http://169.254.169.254/", b"{}", {})
        assert refused.status_code is None
        assert refused.error is not None
        assert refused.error.startswith("refused: ")
    finally:
        sender.close()
        server.shutdown()
        server.server_close()
    closed = WebhookSender(timeout_s=2, allow_private=True).post(url, b"{}", {})
    assert closed.status_code is None
    assert closed.error is not None
    assert "ConnectionRefused" in closed.error


def test_subscriptions_are_known_types_or_the_wildcard_alone() -> None:
    assert checked_events(["document.read", "document.delivered", "document.read"]) == [
        "document.delivered",
        "document.read",
    ]
    assert checked_events(["*"]) == ["*"]
    for bad, message in (([], "at least one"), (["*", "document.read"], "stands alone")):
        with pytest.raises(InvalidMetadata, match=message):
            checked_events(bad)
    with pytest.raises(InvalidMetadata) as unknown:
        checked_events(["document.eaten"])
    assert unknown.value.field == "events"
    assert "document.eaten" in unknown.value.message
    with pytest.raises(InvalidMetadata) as source:
        checked_source("no spaces please")
    assert source.value.field == "source"


def test_delivery_id_is_one_per_event_and_endpoint() -> None:
    assert delivery_id("evt_1", "whep_a") == delivery_id("evt_1", "whep_a")
    assert delivery_id("evt_1", "whep_a") != delivery_id("evt_1", "whep_b")
    assert delivery_id("evt_1", "whep_a") != delivery_id("evt_2", "whep_a")
    assert delivery_id("evt_1", "whep_a").startswith("whmsg_")


def test_default_backoff_doubles_up_to_six_hours_and_spans_about_a_day() -> None:
    backoff = Backoff.of(WebhookSettings())
    delays = [backoff.delay(n).total_seconds() for n in range(1, backoff.max_attempts)]
    assert delays[:4] == [60, 120, 240, 480]
    assert max(delays) == 21_600
    assert 18 * 3600 < sum(delays) < 24 * 3600
