"""Rendering notification emails from the real templates, and composing the MIME message."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import email.utils
import re
import shutil
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailbox_service.cli.main import main as cli_main
from mailbox_service.doctypes import DocumentType, DocumentView, load_registry
from mailbox_service.mail.email import (
    EmailRenderer,
    RenderedEmail,
    RenderError,
    compose,
    compose_wire,
    locale_chain,
    message_id,
)
from mailbox_service.mail.failures import PermanentFailure
from mailbox_service.paths import templates_dir

PORTAL = "http://portal.test/portal"
NOW = dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC)
REGISTRY = load_registry(include_entry_points=False)


def renderer(root: Path | None = None) -> EmailRenderer:
    return EmailRenderer(root or templates_dir() / "email", portal_url=PORTAL + "/")


def invoice(**attrs: object) -> DocumentView:
    attributes = {
        "invoice_number": "INV-42",
        "total_amount": "84.20",
        "currency": "EUR",
        "due_date": "2026-12-15",
        **attrs,
    }
    return DocumentView(
        id="doc42",
        type="invoice",
        account_id="ACC 7/1",
        title="Invoice <INV-42> & more",
        issued_at=NOW,
        attributes=attributes,
    )


def test_invoice_english_has_amount_due_date_and_link_in_every_part() -> None:
    out = renderer().render(REGISTRY.get("invoice"), invoice(), locale="en")
    assert out.locale == "en"
    assert out.subject == "Your invoice INV-42: €84.20, due 15 Dec 2026"
    for body in (out.text, out.html):
        assert "€84.20" in body
        assert "15 Dec 2026" in body
        assert f"{PORTAL}/documents/doc42" in body
        # The account id is quoted in the preferences link.
        assert f"{PORTAL}/accounts/ACC%207%2F1/preferences" in body


def test_invoice_german_uses_german_wording_and_formats() -> None:
    out = renderer().render(REGISTRY.get("invoice"), invoice(), locale="de")
    assert out.locale == "de"
    assert "84,20 €" in out.subject
    assert "15.12.2026" in out.subject
    assert "Ihre Rechnung INV-42" in out.text
    assert "Fällig am: 15.12.2026" in out.text
    assert "84,20 €" in out.html
    assert "Dokument" not in out.subject
    assert '<html lang="de">' in out.html


@pytest.mark.parametrize(
    ("asked", "used"), [("de-AT", "de"), ("en-GB", "en"), ("fr", "en"), (None, "en")]
)
def test_locale_falls_back_to_language_then_default(asked: str | None, used: str) -> None:
    out = renderer().render(REGISTRY.get("invoice"), invoice(), locale=asked)
    assert out.locale == used


def test_locale_chain() -> None:
    assert locale_chain("de-AT", "en") == ["de-AT", "de", "en"]
    assert locale_chain("en", "en") == ["en"]
    assert locale_chain(None, "de") == ["de"]


@pytest.mark.parametrize("doctype", list(REGISTRY), ids=lambda t: t.name)
@pytest.mark.parametrize("locale", ["de", "en"])
def test_every_builtin_type_renders_in_german_and_english(
    doctype: DocumentType, locale: str
) -> None:
    attrs = doctype.sample_attributes()
    assert attrs is not None, f"{doctype.name} needs sample_attributes() for previews"
    view = DocumentView(
        id="d1", type=doctype.name, account_id="A1", title="T", issued_at=NOW, attributes=attrs
    )
    out = renderer().render(doctype, view, locale=locale)
    assert out.locale == locale
    assert out.subject
    assert "\n" not in out.subject
    assert "http://portal.test/portal/documents/d1" in out.text
    assert 'href="http://portal.test/portal/documents/d1"' in out.html
    assert "/accounts/A1/preferences" in out.text


def test_html_is_escaped_and_text_is_not() -> None:
    out = renderer().render(
        REGISTRY.get("invoice"), invoice(), locale="en", recipient_name="Tom & <Jerry>"
    )
    assert "Tom &amp; &lt;Jerry&gt;" in out.html
    assert "<Jerry>" not in out.html
    assert "Hello Tom & <Jerry>," in out.text
    assert "<title>Invoice &lt;INV-42&gt; &amp; more</title>" in out.html


def test_type_without_templates_gets_the_generic_email() -> None:
    class Memo(DocumentType):
        name = "memo_without_templates"
        label = "Memo"
        attributes = REGISTRY.get("invoice").attributes

    view = invoice()
    out = renderer().render(Memo(), view, locale="de")
    assert out.subject == "Neu in Ihrem Postfach: Invoice <INV-42> & more"
    assert "(Memo, 20.11.2026)" in out.text


def _copy_templates(tmp_path: Path) -> Path:
    root = tmp_path / "email"
    shutil.copytree(templates_dir() / "email", root)
    return root


def test_undefined_variable_is_a_render_error_naming_the_template(tmp_path: Path) -> None:
    root = _copy_templates(tmp_path)
    path = root / "invoice" / "en" / "body.html.j2"
    path.write_text(path.read_text().replace("{{ invoice_number }}", "{{ invoice_numbr }}"))
    with pytest.raises(RenderError, match=r"invoice/en/body\.html\.j2.*invoice_numbr") as info:
        renderer(root).render(REGISTRY.get("invoice"), invoice(), locale="en")
    assert info.value.permanent


def test_syntax_error_is_a_render_error_with_line(tmp_path: Path) -> None:
    root = _copy_templates(tmp_path)
    (root / "invoice" / "de" / "subject.txt.j2").write_text("Rechnung {{ invoice_number }\n")
    with pytest.raises(RenderError, match=r"invoice/de/subject\.txt\.j2 line 1"):
        renderer(root).render(REGISTRY.get("invoice"), invoice(), locale="de")


def test_invalid_stored_attributes_are_a_render_error() -> None:
    with pytest.raises(RenderError, match=r"invoice\.email_context"):
        renderer().render(REGISTRY.get("invoice"), invoice(total_amount="lots"), locale="en")


def _compose(recipient: str = "erika@example.org", name: str | None = "Erika") -> EmailMessage:
    rendered = RenderedEmail("Subject ü", "text €\n", "<p>html €</p>\n", "de")
    return compose(
        rendered,
        sender="Mailbox <no-reply@mail.example.com>",
        recipient=recipient,
        recipient_name=name,
        document_id="doc42",
        account_id="ACC-7",
        portal_url=PORTAL,
        now=NOW,
    )


def test_composed_message_headers_and_parts() -> None:
    raw = _compose().as_bytes()
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["Message-ID"] == "<doc42.notification@mail.example.com>"
    assert msg["List-Unsubscribe"] == f"<{PORTAL}/accounts/ACC-7/preferences>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["To"] == "Erika <erika@example.org>"
    assert msg["Subject"] == "Subject ü"
    assert msg["Content-Language"] == "de"
    assert msg.get_content_type() == "multipart/alternative"
    types = [part.get_content_type() for part in msg.iter_parts()]
    assert types == ["text/plain", "text/html"]  # no attachment: the PDF stays in the mailbox
    assert b"\r\n" in raw
    assert b"\n\n" not in raw.replace(b"\r\n", b"")


def _reference(rendered: RenderedEmail, recipient_name: str | None) -> bytes:
    """The message as the email package's EmailMessage builds it (how compose worked before
    compose_wire wrote the bytes itself)."""
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["Subject"] = rendered.subject
    msg["From"] = "Mailbox <no-reply@mail.example.com>"
    msg["To"] = Address(display_name=recipient_name or "", username="erika", domain="example.org")
    msg["Date"] = email.utils.format_datetime(NOW)
    msg["Message-ID"] = message_id("doc42", "no-reply@mail.example.com")
    msg["List-Unsubscribe"] = f"<{PORTAL}/accounts/ACC%207%2F%C3%BC/preferences>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Mailbox-Document-Id"] = "doc42"
    msg.set_content(rendered.text, subtype="plain", charset="utf-8")
    msg.add_alternative(rendered.html, subtype="html", charset="utf-8")
    msg["Content-Language"] = rendered.locale
    return msg.as_bytes()


@pytest.mark.parametrize(
    "rendered",
    [
        RenderedEmail("Subject ü", "text €\n", "<p>html €</p>\n", "de"),  # 8bit
        RenderedEmail("Plain subject", "plain\r\nascii\n", "<p>ok</p>", "en"),  # 7bit
        RenderedEmail(  # long lines: quoted-printable; a long subject is folded
            "Ihre Rechnung INV-2026-000123: 1.284,20 €, fällig am 15.12.2026",
            "Guten Tag,\n\n" + "x" * 100 + " ä\n",
            '<body style="margin:0;padding:0;background:#f4f5f7;font-family:Helvetica">ü</body>',
            "de-AT",
        ),
        RenderedEmail("€" * 60, "€" * 300 + "\n", "\u2013" * 50, "en"),  # base64
    ],
)
@pytest.mark.parametrize("name", ["Erika", None, "Erika Müller", "Dr. Erika, M.", "x" * 90])
def test_compose_writes_what_email_message_writes(
    rendered: RenderedEmail, name: str | None
) -> None:
    composed = compose_wire(
        rendered,
        sender="Mailbox <no-reply@mail.example.com>",
        recipient="erika@example.org",
        recipient_name=name,
        document_id="doc42",
        account_id="ACC 7/ü",
        portal_url=PORTAL,
        now=NOW,
    )
    boundary = re.compile(rb"={15}\d{19}==")
    expected = boundary.sub(b"B", _reference(rendered, name))
    assert boundary.sub(b"B", composed.data) == expected
    assert composed.message_id == "<doc42.notification@mail.example.com>"


def test_message_id_is_stable_per_document() -> None:
    assert message_id("doc42", "x@a.example") == message_id("doc42", "Other <y@a.example>")
    assert _compose()["Message-ID"] == _compose()["Message-ID"]


@pytest.mark.parametrize(
    "address",
    [
        "victim@example.org\r\nBcc: other@example.org",
        "victim@example.org\nX-Evil: 1",
        "a b@example.org",
        "<a@example.org>",
        "a@example.org, b@example.org",
        "",
    ],
)
def test_header_injection_addresses_are_refused_before_smtp(address: str) -> None:
    with pytest.raises(PermanentFailure, match="not a valid address"):
        _compose(recipient=address)


def test_preview_cli_text_html_and_eml(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"MAILBOX_PORTAL_URL": PORTAL}
    text = runner.invoke(
        cli_main, ["email", "preview", "--type", "invoice", "--locale", "de"], env=env
    )
    assert text.exit_code == 0, text.output
    assert text.output.startswith("Subject: Ihre Rechnung INV-2026-000123: 1.284,20 €")
    assert "Fällig am: 15.12.2026" in text.output

    html = runner.invoke(
        cli_main,
        ["email", "preview", "--type", "shipment_document", "--locale", "en", "--format", "html"],
        env=env,
    )
    assert html.exit_code == 0, html.output
    assert html.output.lstrip().startswith("<!DOCTYPE html>")

    out = tmp_path / "letter.eml"
    eml = runner.invoke(
        cli_main,
        ["email", "preview", "--type", "contract_letter", "--format", "eml", "--out", str(out)],
        env=env,
    )
    assert eml.exit_code == 0, eml.output
    msg = email.message_from_bytes(out.read_bytes(), policy=email.policy.default)
    assert msg["Subject"] == "Price change for your contract C-100-2044"
    assert msg.get_content_type() == "multipart/alternative"


def test_preview_cli_with_own_attributes_and_bad_input(tmp_path: Path) -> None:
    runner = CliRunner()
    attrs = tmp_path / "attrs.json"
    attrs.write_text(
        '{"invoice_number": "X-1", "total_amount": "9.99", "currency": "USD",'
        ' "due_date": "2027-02-01"}'
    )
    ok = runner.invoke(
        cli_main,
        ["email", "preview", "--type", "invoice", "--locale", "en", "--attributes", str(attrs)],
    )
    assert ok.exit_code == 0, ok.output
    assert "Your invoice X-1: $9.99, due 1 Feb 2027" in ok.output

    attrs.write_text('{"invoice_number": "X-1"}')
    bad = runner.invoke(
        cli_main, ["email", "preview", "--type", "invoice", "--attributes", str(attrs)]
    )
    assert bad.exit_code != 0
    unknown = runner.invoke(cli_main, ["email", "preview", "--type", "nope"])
    assert unknown.exit_code != 0
