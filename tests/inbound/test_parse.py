"""Reading received mail (inbound.parse) over the real-world-shaped fixtures: the right characters for
every charset, text from HTML, the customer's new words without the quoted history and signature,
attachments, and the mails that machines send."""

from __future__ import annotations

import base64
import re

import pytest

from inbound import parse
from tests.inbound.eml import eml, fixture_names, with_headers

MACHINE_FIXTURES = {
    "autoreply_out_of_office.eml": "Auto-Submitted: auto-replied",
    "autoreply_x_autoreply.eml": "X-Autoreply",
    "exchange_automatic_reply.eml": "X-Auto-Response-Suppress",
    "precedence_bulk.eml": "Precedence: bulk",
    "mailing_list.eml": "Precedence: list",
    "read_receipt.eml": "disposition-notification",
    "bounce_postfix_delayed.eml": "delivery-status",
}
BOUNCES = {"bounce_postfix_dsn.eml", "bounce_exchange_ndr.eml"}
PEOPLE = sorted(set(fixture_names()) - set(MACHINE_FIXTURES) - BOUNCES)


@pytest.mark.parametrize("name", fixture_names())
def test_every_fixture_reads_as_clean_text(name):
    mail = parse.parse(eml(name))
    assert mail.text.strip()
    assert mail.subject
    for value in (mail.text, mail.visible_text, mail.subject, mail.from_name):
        assert "\ufffd" not in value, "a character was lost to the replacement character"
        assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f]", value), "a control character survived"
        assert "=?" not in value, "an RFC 2047 encoded word was left undecoded"


@pytest.mark.parametrize(
    ("name", "subject", "from_name", "words"),
    [
        (
            "outlook_desktop_reply.eml",
            "RE: [CASE-1042] Invoice export shows wrong totals",
            "Renée O’Brien",  # RFC 2047 labelled iso-8859-1, the ’ is Windows-1252's 0x92
            ["Here’s what we see: the “Total” column", "€ 1,240.00", "2–3 invoices a day"],
        ),
        (
            "japanese_iso2022jp.eml",
            "月次レポートのCSVが文字化けします",
            "山田 太郎",
            # ① ② as Windows writes them: NEC's row 13, which Python's ISO-2022-JP codecs refuse
            [
                "文字化けしたCSVファイルになります。",
                "「縺ゅ≠」",
                "①　管理画面→レポート→月次、②は問題ありません。",
            ],
        ),
        (
            "japanese_shift_jis.eml",
            "ダッシュボードの表示が遅い件（①②の２点）",  # an encoded word Python's shift_jis refuses
            "佐藤 花子",
            ["①　ログイン後", "３０秒～１分かかります", "②　CSV出力"],  # cp932 only: ① ② ～
        ),
        (
            "russian_koi8r.eml",
            "Не работает экспорт в 1С после обновления",
            "Дмитрий Соколов",
            ['кнопка "Выгрузить"', "на трёх рабочих местах"],
        ),
        (
            "mislabelled_us_ascii_cp1252.eml",
            "caisse en panne",
            "Francois Dupont",
            ["“Erreur 0x80”", "coûte 4,50 € au lieu de 3,90 €", "Le gérant, François"],
        ),
        (
            "unknown_charset.eml",
            "Wrong sunrise time in the app",
            "Zoë Ångström",
            ["soluppgång i Tromsø", "– den är en timme fel"],
        ),
        (
            "rfc2047_headers.eml",
            "Fehler beim Export – Größe der Datei überschreitet 2 GB – dringend",
            "Jörg Müller",
            ["bei Dateien über 2 GB ab"],
        ),
        (
            "base64_body.eml",
            "Relatório de vendas não abre",
            "Mateus Oliveira",
            ["não consigo acessar o relatório de vendas", "Já limpei o cache"],
        ),
        (
            "apple_mail_iphone.eml",
            "Re: Receipts printed twice",
            "Élodie Martin",
            # format=flowed; delsp=yes: the soft line breaks are joined again
            ["prints every receipt twice since the update last night. Photo of the duplicated"],
        ),
        (
            "german_gmail_reply.eml",
            "Re: [CASE-1042] Maschine 4 bleibt stehen (E-2041)",
            "Sabine Krüger",
            ["Heute früh um 06:12 Uhr"],
        ),
    ],
)
def test_each_charset_gives_the_characters_the_customer_typed(name, subject, from_name, words):
    mail = parse.parse(eml(name))
    assert mail.subject == subject
    assert mail.from_name == from_name
    for text in words:
        assert text in mail.visible_text


def test_addresses_are_read_from_encoded_and_quoted_names_in_lower_case():
    mail = parse.parse(eml("rfc2047_headers.eml"))
    assert mail.from_address == "joerg.mueller@bergbau-sachsen.example"  # sent as Joerg.Mueller@Bergbau-...
    assert mail.cc == ["anja.braeuer@bergbau-sachsen.example"]  # "Bräuer, Anja": the comma is in the name
    assert mail.to == ["support@help.acme.example"]

    outlook = parse.parse(eml("outlook_desktop_reply.eml"))
    assert outlook.cc == ["marek.kowalski@northwind-traders.example"]  # "Kowalski, Marek"


def test_raw_8bit_headers_are_read_as_utf8_or_windows_1252():
    utf8 = parse.parse(eml("no_message_id.eml", subject="Kransensor für Dock 3 meldet sich nicht"))
    assert utf8.subject == "Kransensor für Dock 3 meldet sich nicht"
    latin = parse.parse(eml("no_message_id.eml", subject="Kransensor für Dock 3 – Störung".encode("cp1252")))
    assert latin.subject == "Kransensor für Dock 3 – Störung"


def test_a_display_name_in_windows_shift_jis_keeps_its_characters():
    name = "=?shift_jis?B?" + base64.b64encode("佐藤, 花子 ①".encode("cp932")).decode() + "?="
    mail = parse.parse(eml("japanese_shift_jis.eml", from_=f"{name} <hanako.sato@kaede-denki.example>"))
    assert (mail.from_name, mail.from_address) == ("佐藤, 花子 ①", "hanako.sato@kaede-denki.example")


def test_encoded_words_in_an_unknown_charset_are_read_by_their_bytes():
    mail = parse.parse(eml("gmail_reply.eml", subject="=?x-unknown?Q?Caf=C3=A9_?= =?x-unknown?Q?au_lait?="))
    assert mail.subject == "Café au lait"


def test_control_characters_from_encoded_words_do_not_reach_the_record():
    mail = parse.parse(eml("gmail_reply.eml", subject="=?utf-8?Q?Export=00_kaputt=07?="))
    assert mail.subject == "Export kaputt"


def test_an_html_only_mail_gives_its_words_without_markup():
    mail = parse.parse(eml("exchange_html_only.eml"))
    assert mail.html_only is True
    assert "cannot sync. The app shows ERR_SYNC_TIMEOUT after about 30 seconds." in mail.visible_text
    assert "* 42 devices affected" in mail.visible_text
    assert "please have a look – trucks are waiting" in mail.visible_text  # &#8211;
    for markup in ("<div", "<b>", "&nbsp;", "&lt;", "font-family", "margin-top"):
        assert markup not in mail.text
    # Outlook on the web's quote block ("From: ... Sent: ...") is history, kept only in the full text.
    assert "firmware 5.1.3 for the handheld scanners is now available" not in mail.visible_text
    assert "firmware 5.1.3 for the handheld scanners is now available" in mail.text


def test_a_blank_plain_part_gives_way_to_the_html():
    raw = eml("gmail_reply.eml")
    plain_start = raw.index(b"Content-Transfer-Encoding: quoted-printable\n\n") + 45
    plain_end = raw.index(b"--000000000000a1b2c3062b9f4e77", plain_start)
    mail = parse.parse(raw[:plain_start] + b"\n\n" + raw[plain_end:])
    assert mail.html_only is True
    assert "On Safari 17 it still happens though" in mail.visible_text


@pytest.mark.parametrize(
    ("name", "kept", "stripped"),
    [
        (
            "gmail_reply.eml",
            ["Steps:\n- open https://app.brightwave.example/login in Safari", "- the page asks again"],
            ["Head of Platform", "we deployed build 2026.03.1", "wrote:", "> "],
        ),
        (
            "outlook_desktop_reply.eml",
            ["I’ve attached the invoice and a screenshot of the export."],
            ["Kind regards", "Finance Systems Lead", "Sent: Monday", "Could you send us one", "[cid:"],
        ),
        (
            "german_gmail_reply.eml",
            ["leider tritt der Fehler weiterhin auf", "Fehlercode E-2041."],
            ["Viele Grüße", "Elbe Maschinenbau GmbH", "schrieb", "das Update 7.3"],
        ),
        (
            "apple_mail_iphone.eml",
            ["It happens on both tills (caisse 1 and caisse 2).", "Élodie"],
            ["Sent from my iPhone", "which printer model", "wrote:"],
        ),
        (
            "thunderbird_bottom_post.eml",
            [
                'fails with "connection reset by peer" after about 40 minutes',
                # the indentation of a pasted log survives
                "\n     2026-03-02T01:41:07Z backup[2211]: upload chunk 418/1200 failed\n",
                "Åsa from our network team sees no drops",
            ],
            ["which version of the backup agent", "wrote:", "Best,", "Henrik Lindqvist", "Göteborg"],
        ),
        (
            "japanese_iso2022jp.eml",
            ["お手数ですが、ご確認をお願いいたします。"],
            ["株式会社さくら商事", "詳しい状況を教えていただけますか"],
        ),
        (
            "russian_koi8r.eml",
            ["везде одно и то же."],
            ["С уважением", 'ООО "Волга-Тех"'],
        ),
    ],
)
def test_the_visible_text_is_the_new_words_and_the_full_text_keeps_everything(name, kept, stripped):
    mail = parse.parse(eml(name))
    for text in kept:
        assert text in mail.visible_text
    for text in stripped:
        assert text not in mail.visible_text
        assert text in mail.text or text == "[cid:"  # Outlook's image stand-in: only in the plain part


@pytest.mark.parametrize(
    "text",
    [
        "Hi,\n\nTake a look at the attached log, it fails at 09:14.\nThe job restarts every hour.",
        "Hi,\nthe error is in\n/var/log/app/error.log\nline 12 shows a timeout.",
        "Steps to reproduce:\n- open the app\n- click checkout\n- see the 502",
        "Hi,\n\nThanks, that fixed it! But the export still fails with error 17.\nCan you check?",
        "Data: 40 000 rows\nDo: the export twice",
    ],
)
def test_lines_that_only_look_like_a_signature_are_kept(text):
    assert parse.visible_part(text) == text


def test_a_mail_that_is_only_quoted_history_keeps_its_whole_text():
    text = "On Mon, 2 Mar 2026 at 10:15, Acme Support <support@help.acme.example> wrote:\n> Any news?"
    assert parse.visible_part(text) == text


def test_attachments_are_found_with_their_names_and_types_inline_images_included():
    outlook = parse.parse(eml("outlook_desktop_reply.eml"))
    assert [(a.name, a.content_type) for a in outlook.attachments] == [
        ("image001.png", "image/png"),  # the screenshot pasted into the mail (cid:)
        ("Invoice_2026-0117.pdf", "application/pdf"),
    ]
    assert outlook.attachments[0].data.startswith(b"\x89PNG\r\n\x1a\n")
    assert outlook.attachments[1].data.startswith(b"%PDF-")

    iphone = parse.parse(eml("apple_mail_iphone.eml"))
    # The text Apple Mail writes after the photo is part of the mail, not a file.
    assert [(a.name, a.content_type) for a in iphone.attachments] == [("IMG_0042.PNG", "image/png")]

    for name in ("gmail_reply.eml", "exchange_html_only.eml", "thunderbird_bottom_post.eml"):
        assert parse.parse(eml(name)).attachments == []


def test_an_attached_mail_is_one_attachment():
    ndr = parse.parse(eml("bounce_exchange_ndr.eml"))
    assert [(a.name, a.content_type) for a in ndr.attachments] == [("attached-mail.eml", "message/rfc822")]
    assert b"Message-ID: <177244530044.4821.8880005555@help.acme.example>" in ndr.attachments[0].data


@pytest.mark.parametrize("name", PEOPLE)
def test_mail_people_write_is_neither_automatic_nor_a_bounce(name):
    mail = parse.parse(eml(name))
    assert (mail.auto_reason, mail.bounce) == ("", None)


@pytest.mark.parametrize(("name", "reason"), sorted(MACHINE_FIXTURES.items()))
def test_mail_machines_send_says_why_it_is_automatic(name, reason):
    mail = parse.parse(eml(name))
    assert reason in mail.auto_reason
    assert mail.bounce is None


def test_x_auto_response_suppress_alone_is_a_person_writing_through_exchange():
    # Exchange puts the header on mail sent to distribution lists too; Discourse, osTicket and GLPI
    # learnt not to drop those.
    person = parse.parse(eml("exchange_html_only.eml", x_auto_response_suppress="All"))
    assert person.auto_reason == ""
    out_of_office = parse.parse(
        eml("exchange_html_only.eml", x_auto_response_suppress="All", subject="Automatic reply: Scanners")
    )
    assert "X-Auto-Response-Suppress" in out_of_office.auto_reason


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"auto_submitted": "auto-generated"}, "Auto-Submitted: auto-generated"),
        ({"precedence": "junk"}, "Precedence: junk"),
        ({"list_id": "<ops.lists.brightwave.example>"}, "mailing list"),
        ({"return_path": "<>"}, "null envelope sender"),
        ({"from_": "MAILER-DAEMON@mx.brightwave.example"}, "mailer-daemon"),
    ],
)
def test_each_automatic_marker_is_recognised(headers, reason):
    assert reason in parse.parse(eml("gmail_reply.eml", **headers)).auto_reason


def test_auto_submitted_no_is_a_person():
    assert parse.parse(eml("gmail_reply.eml", auto_submitted="no")).auto_reason == ""


def test_a_postfix_bounce_names_our_mail_the_recipient_and_the_diagnostic():
    bounce = parse.parse(eml("bounce_postfix_dsn.eml")).bounce
    assert bounce is not None
    assert bounce.message_ids == ("<177244530012.4821.1029384756@help.acme.example>",)
    assert bounce.reason.startswith("carla.old@acme.example: 5.1.1 smtp; 550 5.1.1")
    assert "User unknown" in bounce.reason


def test_an_exchange_ndr_names_our_mail_from_the_returned_message():
    bounce = parse.parse(eml("bounce_exchange_ndr.eml", in_reply_to=None, references=None)).bounce
    assert bounce is not None
    assert bounce.message_ids == ("<177244530044.4821.8880005555@help.acme.example>",)
    assert "5.1.10" in bounce.reason
    assert "RecipientNotFound" in bounce.reason


def test_a_delay_warning_is_not_a_bounce():
    mail = parse.parse(eml("bounce_postfix_delayed.eml"))
    assert mail.bounce is None
    assert mail.auto_reason  # still a machine: ignored, never a case


def test_a_mail_without_message_id_is_keyed_by_its_bytes():
    raw = eml("no_message_id.eml")
    mail = parse.parse(raw)
    assert mail.message_id == ""
    key = parse.key_for(raw, mail.message_id)
    assert key == parse.key_for(raw, "")  # the same mail fetched twice: the same key
    assert key != parse.key_for(raw + b"\nP.S. one more line\n", "")
    assert re.fullmatch(r"<sha256-[0-9a-f]{64}@supportdesk\.invalid>", key)


def test_what_is_read_from_a_mail_is_bounded():
    many = ", ".join(f"person{i}@brightwave.example" for i in range(500))
    long_subject = "Re: " + "very long subject " * 100
    huge_address = "x" * 300 + "@brightwave.example"
    mail = parse.parse(eml("gmail_reply.eml", cc=many, subject=long_subject, to=huge_address))
    assert len(mail.cc) == parse.ADDRESSES_PER_MAIL
    assert len(mail.subject) == 500
    assert huge_address not in mail.recipients


def test_with_headers_replaces_adds_and_removes_without_touching_the_body():
    raw = eml("outlook_desktop_reply.eml")
    changed = with_headers(raw, message_id="<new@x.example>", x_test="1", thread_index=None)
    head, _, body = changed.partition(b"\r\n\r\n")
    assert body == raw.partition(b"\r\n\r\n")[2]
    assert b"\r\nMessage-ID: <new@x.example>\r\n" in head + b"\r\n"
    assert b"X-Test: 1" in head
    assert b"Thread-Index" not in head
    assert b"\n" not in head.replace(b"\r\n", b"")  # still CRLF throughout


@pytest.mark.parametrize("name", fixture_names())
def test_a_truncated_or_damaged_mail_is_still_read(name):
    # What a connection cut mid-transfer or a broken client leaves: the parser must not raise, or
    # the mail could only ever be "failed".
    raw = eml(name)
    for cut in range(0, len(raw), max(1, len(raw) // 20)):
        for damaged in (raw[:cut], raw[:cut] + b"\r\n\xff\xfe\x00\x1b$B--\r\n"):
            mail = parse.parse(damaged)
            assert isinstance(mail.visible_text, str)


def test_a_charset_label_with_a_nul_is_read_by_the_bytes():
    raw = eml("mislabelled_us_ascii_cp1252.eml").replace(b'charset="us-ascii"', b'charset="us-\x00ascii"')
    assert "coûte 4,50 €" in parse.parse(raw).text


def test_iso_2022_jp_is_read_as_windows_writes_it_and_agrees_with_jis_x_0208_elsewhere():
    # Windows (cp932) maps six JIS X 0208 characters to other code points: 〜 is ～, ‖ is ∥, ...
    windows = {"〜": "～", "‖": "∥", "−": "－", "¢": "￠", "£": "￡", "¬": "￢"}
    checked = 0
    for first in range(0x21, 0x7F):
        for second in range(0x21, 0x7F):
            data = b"\x1b$B" + bytes([first, second]) + b"\x1b(B"
            try:
                expected = data.decode("iso2022_jp")
            except UnicodeDecodeError:
                continue  # not in JIS X 0208 (NEC's row 13, for one)
            assert parse.decode_bytes(data, "ISO-2022-JP") == windows.get(expected, expected)
            checked += 1
    assert checked > 6800
    assert parse.decode_bytes(b'\x1b$B-!-"\x1b(B', "iso-2022-jp") == "①②"
    assert parse.decode_bytes(b"\x1b(I12\x1b(B", "iso-2022-jp") == "ｱｲ"  # half-width katakana
