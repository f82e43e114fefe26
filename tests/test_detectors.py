"""Required-information detectors, one at a time, on short Swedish and English mails.

Each mail goes through the real parser (`parse_mail`) so the detectors see what
they see in production: decoded text, attachments, headers.
"""

from __future__ import annotations

import csv
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import pytest

from maild.checks import ITEM_WORDS, KNOWN_ITEMS, ItemResult, check_items, split_body
from maild.parse import ParsedMail, UnparseableMail, parse_mail
from tests.conftest import CORPUS

PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000") + b"\0" * 120


def _mail(body: str, *, subject: str = "Problem med webbplatsen",
          sender: str = "Anna Lind <anna.lind@bergstromsbygg.se>",
          headers: dict[str, str] | None = None,
          attachments: tuple[tuple[bytes, str, str], ...] = (),
          inline: tuple[tuple[bytes, str, str], ...] = (),
          html: str | None = None) -> ParsedMail:
    """A parsed mail: attachments are (data, mime type, file name), inline (data, type, cid)."""
    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    message["To"] = "support@example.se"
    message["Subject"] = subject
    message["Date"] = "Tue, 17 Nov 2026 10:12:00 +0100"
    message["Message-ID"] = "<test@kund.example>"
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    if html is not None:
        message.add_alternative(html, subtype="html")
    for data, mime, cid in inline:
        maintype, subtype = mime.split("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, disposition="inline",
                               cid=f"<{cid}>", filename=None)
    for data, mime, filename in attachments:
        maintype, subtype = mime.split("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return parse_mail(message.as_bytes())


def _check(item: str, body: str, **kwargs: object) -> ItemResult:
    [result] = check_items(_mail(body, **kwargs), [item])  # type: ignore[arg-type]
    return result


def _present(item: str, body: str, **kwargs: object) -> bool:
    return _check(item, body, **kwargs).present


# ---------------------------------------------------------------- the public API

def test_known_items_are_the_nine_in_order() -> None:
    assert KNOWN_ITEMS == ("description", "screenshot", "occurred_at", "browser", "os",
                           "campaign_number", "company", "contact_name_title", "contact_details")


def test_results_come_in_the_order_asked() -> None:
    results = check_items(_mail("Chrome 131 på Windows 11."), ["os", "browser", "screenshot"])
    assert [result.item for result in results] == ["os", "browser", "screenshot"]
    assert [result.present for result in results] == [True, True, False]
    assert results[0].evidence == "Windows 11"
    assert results[2].evidence is None


def test_an_unknown_item_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="'webbläsare'"):
        check_items(_mail("Hej"), ["browser", "webbläsare"])


def test_every_item_has_plain_words_in_swedish_and_english() -> None:
    assert set(ITEM_WORDS) == set(KNOWN_ITEMS)
    for words in ITEM_WORDS.values():
        assert set(words) == {"sv", "en"}
        assert all(text and text == text.strip() for text in words.values())
    assert ITEM_WORDS["screenshot"]["sv"] == "en skärmbild som visar felet"


def test_evidence_is_one_short_line() -> None:
    body = "Hej!\n\n" + "Det här är en mycket lång beskrivning av felet i bokningen " * 10
    [result] = check_items(_mail(body), ["description"])
    assert result.present
    assert result.evidence is not None
    assert len(result.evidence) <= 81
    assert "\n" not in result.evidence


# ---------------------------------------------------------------- quoting and signatures

OUTLOOK_SV = """Hej igen,

Felet kom tillbaka i eftermiddag.

Med vänliga hälsningar
Anna Lind
IT-ansvarig

Från: Anna Lind <anna.lind@bergstromsbygg.se>
Skickat: den 16 november 2026 10:07
Till: support@example.se
Ämne: Bokningen

Jag kör Chrome 131 på Windows 11. Ring 070-330 11 89.
"""

GMAIL_SV = """Hej,

Nu fungerar det på Android 14.

/Johan

Den tis 17 nov. 2026 kl 10:12 skrev Johan Bergström <johan@example.com>:

> Jag kör iOS 17 och Safari 17. Det hände igår kl 14.30.
> Johan Bergström
> VD, Bergströms Bygg AB
"""

GMAIL_EN_WRAPPED = """Quick update: it is only the bulk endpoint.

Oliver

On Fri, 20 Nov 2026 at 16:05, Oliver Grant <
oliver.grant@nordicparcel.co.uk> wrote:

> Since yesterday afternoon the sender name is wrong (Chrome 120).
"""

APPLE_DE = """Hello,

here is the export log.

Am 17.11.2026 um 10:12 schrieb Per Olsson <per@lindqvistlogistik.se>:

> Firefox 128 on macOS 14.
"""

IPHONE_SV = """Fortfarande driftstopp hos oss.

Skickat från min iPhone

> 16 nov. 2026 kl. 10:31 skrev Per Olsson <per.olsson@lindqvistlogistik.se>:
>
> Ligger nere sedan kl 10.15 idag. Tel: 031-704 22 18
"""

ORIGINAL_MESSAGE = """Any news?

-----Original Message-----
From: Kundsupport
Sent: Monday, November 16, 2026 5:44 PM
Subject: Test

Chrome 131 on Windows 10.
"""

URSPRUNGLIGT = """Har ni hunnit titta?

-----Ursprungligt meddelande-----
Från: Anna Lind
Kampanjnummer 48213, Edge 120.
"""

GMAIL_FORWARD = """Forwarding this.

---------- Forwarded message ---------
From: James Whitfield <james@nordicparcel.co.uk>
Date: Mon, 16 Nov 2026 at 11:02
Subject: URGENT

Since 09:40 this morning nothing is delivered.
James Whitfield
Operations Manager
Nordic Parcel Ltd
"""

APPLE_FORWARD = """Se nedan.

Begin forwarded message:

From: Kund <kund@example.com>
Subject: Fel

Safari 17 på macOS 14.
"""

SWEDISH_FORWARD = """Vidarebefordrar.

-------- Vidarebefordrat meddelande --------
Ämne: Fel
Datum: 2026-11-16 10:00
Windows 11
"""

OUTLOOK_COM = """Tack för hjälpen!

Kerstin

________________________________
Från: Kundsupport <support@example.se>
Skickat: onsdag den 18 november 2026 09:30
Ämne: SV: Kan inte boka

Chrome 131
"""

BOTTOM_POSTED = """On 04/02/2026 06:26 PM, Megan One wrote:
> Vad händer med bokningen?

Jag använder Chrome 131 på Windows 11.
"""


@pytest.mark.parametrize(("text", "new", "quoted_part"), [
    (OUTLOOK_SV, "Felet kom tillbaka i eftermiddag.", "Chrome 131"),
    (GMAIL_SV, "Nu fungerar det på Android 14.", "iOS 17"),
    (GMAIL_EN_WRAPPED, "Quick update: it is only the bulk endpoint.", "Chrome 120"),
    (APPLE_DE, "here is the export log.", "Firefox 128"),
    (IPHONE_SV, "Fortfarande driftstopp hos oss.", "031-704 22 18"),
    (ORIGINAL_MESSAGE, "Any news?", "Windows 10"),
    (URSPRUNGLIGT, "Har ni hunnit titta?", "48213"),
    (GMAIL_FORWARD, "Forwarding this.", "Operations Manager"),
    (APPLE_FORWARD, "Se nedan.", "Safari 17"),
    (SWEDISH_FORWARD, "Vidarebefordrar.", "Windows 11"),
    (OUTLOOK_COM, "Tack för hjälpen!", "Chrome 131"),
], ids=["outlook-sv", "gmail-sv", "gmail-en-wrapped", "apple-de", "iphone-sv",
        "original-message", "ursprungligt-meddelande", "gmail-forward", "apple-forward",
        "vidarebefordrat", "outlook-com-rule"])
def test_quoted_and_forwarded_text_is_set_apart(text: str, new: str, quoted_part: str) -> None:
    parts = split_body(text)
    assert new in parts.new
    assert quoted_part not in parts.own
    assert quoted_part in parts.quoted


def test_an_answer_below_the_quote_is_the_senders_own() -> None:
    parts = split_body(BOTTOM_POSTED)
    assert parts.new == "Jag använder Chrome 131 på Windows 11."
    assert "Megan One wrote" in parts.quoted
    assert "bokningen" in parts.quoted


@pytest.mark.parametrize(("text", "new", "signature_start"), [
    ("Hej!\n\nSidan laddar inte.\n\nMed vänliga hälsningar\nAnna Lind\nIT-ansvarig",
     "Sidan laddar inte.", "Med vänliga hälsningar"),
    ("Hi,\n\nThe page is blank.\n\nKind regards,\n\nJames Whitfield\nOperations Manager",
     "The page is blank.", "Kind regards,"),
    ("Hej\n\nKoden är ogiltig.\n\nMvh Sofia\n\n\n\nSkickat från min iPhone",
     "Koden är ogiltig.", "Mvh Sofia"),
    ("Hello,\n\nA concrete example.\n\nBest regards / Mit freundlichen Grüßen\n\nJonas Weber",
     "A concrete example.", "Best regards / Mit freundlichen Grüßen"),
    ("Hej,\n\nStartsidan blir vit.\n\nJohan Bergström\nVD, Bergströms Bygg AB\n070-551 82 30",
     "Startsidan blir vit.", "Johan Bergström"),
    ("Hej,\n\nNyhetssidan visar gamla nyheter.\n\n/Anna", "Nyhetssidan visar gamla nyheter.",
     "/Anna"),
    ("Sidan laddar inte.\n\n-- \nAnna Lind\nBergströms Bygg AB", "Sidan laddar inte.", "--"),
    ("Se bild.\n\n\n\nSkickat från min iPhone", "Se bild.", "Skickat från min iPhone"),
    ("Hi,\n\nIs there an API?\n\nThanks,\nAhmed", "Is there an API?", "Thanks,"),
], ids=["med-vanliga-halsningar", "kind-regards", "mvh-name-iphone", "two-languages",
        "name-block-without-sign-off", "slash-name", "dash-dash-space", "iphone-footer",
        "thanks-name"])
def test_the_signature_starts_at_the_sign_off(text: str, new: str, signature_start: str) -> None:
    parts = split_body(text, "Anna Lind")
    assert parts.new.endswith(new)
    assert parts.signature.startswith(signature_start)


def test_thanks_inside_a_sentence_is_not_a_sign_off() -> None:
    parts = split_body("Tack för snabbt svar, men felet kvarstår i Chrome 131.\n\nMvh\nAnna")
    assert parts.new == "Tack för snabbt svar, men felet kvarstår i Chrome 131."


def test_thanks_before_prose_opens_the_text() -> None:
    prose = ("The problem still occurs in Chrome 131 when I click the save button on the "
             "booking page, every single time.")
    parts = split_body(f"Hi,\n\nThanks!\n\n{prose}\n\nAnna")
    assert parts.new.endswith(prose)
    disclaimer = "Detta meddelande kan innehålla konfidentiell information. " * 3
    parts = split_body(f"Sidan laddar inte.\n\nMvh\nAnna Lind\n{disclaimer}")
    assert parts.new == "Sidan laddar inte."
    assert parts.signature.startswith("Mvh\nAnna Lind")


def _talon_replies() -> list[Path]:
    return sorted((CORPUS / "replies-talon").glob("*.eml"))


@pytest.mark.parametrize("path", _talon_replies(), ids=lambda path: path.stem)
def test_real_client_replies_leave_only_the_new_text(path: Path) -> None:
    mail = parse_mail(path.read_bytes())
    parts = split_body(mail.text, mail.sender.name if mail.sender else "")
    assert parts.new == "Hello"


# ---------------------------------------------------------------- description

@pytest.mark.parametrize("body", [
    "Hej,\n\nKampanjrapporten för kampanj 49102 visar noll inlösta värdebevis, men butikerna "
    "säger att de har tagit emot flera. Kan ni kolla?\n\n/Fredrik",
    "Hi,\n\nI'm a freelance developer. Do you have public API documentation for your SMS "
    "gateway, and is there a free test account?\n\nThanks,\nAhmed",
    "Bokningsformuläret sparar inte datumet när man klickar på Skicka.\n\nMvh\nAnna",
])
def test_a_problem_in_words_is_a_description(body: str) -> None:
    assert _present("description", body)


@pytest.mark.parametrize("body", [
    "Se bild.\n\nSkickat från min iPhone",
    "Hej!\n\nSe bifogad skärmdump.\n\nMed vänliga hälsningar\nAnna Lind\nIT-ansvarig\n"
    "Bergströms Bygg AB\nStorgatan 5, 582 22 Linköping\n070-330 11 89",
    "Hi,\n\nScreenshot attached, thanks!\n\nBest regards\nJames",
    "Here is the screenshot.",
    "Glömde bifoga skärmdumpen, här är den.\n\n/Anna",
    "Tack för hjälpen, nu fungerar det!\n\nKerstin",
    "Hi again,\n\njust checking whether you received my email below?\n\nBest regards\nMads",
    "Thanks!\n\nOn Mon, 16 Nov 2026 at 10:12, Support <support@example.se> wrote:\n\n"
    "> The booking page shows an error 500 whenever a customer confirms a booking with a "
    "> discount code, both in Chrome and in Firefox, since the update on Monday.",
])
def test_notes_thanks_and_quotes_are_no_description(body: str) -> None:
    assert not _present("description", body)


def test_an_out_of_office_reply_has_no_description() -> None:
    body = ("Thank you for your email. I am out of the office until Monday 23 November with no "
            "access to email. For anything urgent regarding SMS delivery, please contact our "
            "operations desk.\n\nKind regards,\nJames")
    assert not _present("description", body, headers={"Auto-Submitted": "auto-replied"})
    assert _present("description", body.replace("Thank you", "Hello"),
                    headers={"Auto-Submitted": "no"})


# ---------------------------------------------------------------- screenshot

def test_an_attached_png_is_a_screenshot() -> None:
    result = _check("screenshot", "Skärmdump bifogad.",
                    attachments=((PNG, "image/png", "skarmbild.png"),))
    assert result.present
    assert result.evidence == "image/png skarmbild.png (149 B)"


def test_an_inline_image_and_a_screen_recording_are_screenshots() -> None:
    assert _present("screenshot", "Så här ser det ut:", inline=((PNG, "image/png", "f_m3k2j1a80"),))
    assert _present("screenshot", "Inspelning bifogad.",
                    attachments=((b"\0" * 500, "video/mp4", "inspelning.mp4"),))
    assert _present("screenshot", "Bild.",
                    attachments=((PNG, "application/octet-stream", "IMG_0412.HEIC"),))


def test_documents_and_logs_are_no_screenshot() -> None:
    assert not _present("screenshot", "Faktura bifogad.",
                        attachments=((b"%PDF-1.4", "application/pdf", "faktura.pdf"),))
    assert not _present("screenshot", "Logg bifogad.",
                        attachments=((b"log", "text/plain", "webbklient.txt"),))
    assert not _present("screenshot", "Skärmdump bifogad.")


def test_a_small_signature_logo_is_no_screenshot() -> None:
    assert not _present("screenshot", "Mvh\nAnna",
                        inline=((PNG, "image/png", "logo.bergstromsbygg@sig"),))
    assert not _present("screenshot", "Mvh\nAnna",
                        attachments=((PNG, "image/png", "company-logo.png"),))
    big_logo = PNG + b"\0" * 20_000
    assert _present("screenshot", "Skärmbild:", attachments=((big_logo, "image/png", "logo.png"),))


def test_an_image_embedded_in_the_html_counts_when_it_is_a_picture() -> None:
    import base64

    picture = base64.b64encode(b"\0" * 30_000).decode()
    html = f'<p>Så här:</p><img src="data:image/png;base64,{picture}">'
    result = _check("screenshot", "Så här:", html=html)
    assert result.present
    assert result.evidence == "image/png embedded in the HTML (29 kB)"
    icon = base64.b64encode(b"\0" * 300).decode()
    assert not _present("screenshot", "Så här:",
                        html=f'<p>Så här:</p><img src="data:image/png;base64,{icon}">')


# ---------------------------------------------------------------- occurred_at

@pytest.mark.parametrize(("body", "evidence"), [
    ("Det hände första gången igår kl 14.30.", "igår kl 14.30"),
    ("Första felet vi såg var idag 09:45.", "idag 09:45"),
    ("Sedan uppdateringen i måndags saknas varukoden.", "i måndags"),
    ("Första gången vi märkte det var 2026-11-16 10:00.", "2026-11-16 10:00"),
    ("Det hände första gången 16/11 kl. 10.", "16/11 kl. 10"),
    ("Since this morning at 9 nobody can log in.", "this morning at 9"),
    ("It failed yesterday at 14:30 again.", "yesterday at 14:30"),
    ("Since Friday evening the login code never arrives.", "Since Friday"),
    ("Affärssystemet ligger nere sedan ca kl 10.15 idag.", "kl 10.15 idag"),
    ("Inget har kommit sedan torsdagen den 12 november.", "12 november"),
    ("The last failed attempt was at 13:50 today.", "at 13:50 today"),
    ("The nightly export failed on Monday.", "on Monday"),
    ("Vi har haft problem sedan kl 8:05.", "kl 8:05"),
    ("Det började för en timme sedan.", "för en timme sedan"),
    ("It started 20 minutes ago.", "20 minutes ago"),
    ("Felet kom 16.11 kl 10.", "16.11 kl 10"),
    ("Servern gick ner i natt.", "i natt"),
    ("It started Monday morning.", "Monday morning"),
])
def test_a_past_point_in_time_is_an_occurrence(body: str, evidence: str) -> None:
    result = _check("occurred_at", body)
    assert result.present, body
    assert result.evidence == evidence


@pytest.mark.parametrize("body", [
    "Vi startar julkampanjen den 1 december. Kan ni skicka ut värdebevisen kl 08:00 den dagen?",
    "I am out of the office from Wednesday 18 November until Monday 23 November.",
    "Jag är ledig fredag 20 november och tillbaka på kontoret måndag 23 november.",
    "For the past week I have been receiving text messages about a parcel.",
    "Det är bråttom, vi måste publicera en nyhet idag.",
    "Jag har fått en faktura med nummer 2026-4471 på 1 250 kronor.",
    "Vi behöver support 24/7 för vår SMS-tjänst.",
    "Vi har öppet 08:00–17:00 på vardagar.",
    "Vi avslutade tre konton i september.",
    "Vi tar upp det på ledningsmötet nästa vecka kl 10.",
    "Vi uppdaterar i kväll kl 22.",
    "Ring mig efter kl 15.",
    "We will deploy the fix on Monday.",
    "Leverans sker den 24 november kl 08.",
    "Kan ni förlänga kampanjen till 31 januari 2027?",
    "Hej,\n\nFortfarande fel.\n\n/Maria\n\n> 16 nov. 2026 kl. 10:31 skrev Per:\n>\n"
    "> Nere sedan kl 10.15 idag, det hände igår också.",
])
def test_plans_absences_spans_and_quotes_are_no_occurrence(body: str) -> None:
    assert not _present("occurred_at", body)


# ---------------------------------------------------------------- browser and os

@pytest.mark.parametrize(("body", "evidence"), [
    ("Jag har provat i Chrome 131 och får samma fel.", "Chrome 131"),
    ("I see it in Firefox 128.0.3.", "Firefox 128.0.3"),
    ("Jag använder Safari 17 på jobbet.", "Safari 17"),
    ("Testat i Edge 120.", "Edge 120"),
    ("webbläsare: Chrome version 120", "Chrome version 120"),
    ("Browser: Microsoft Edge v120", "Microsoft Edge v120"),
    ("Kunden har IE11 kvar.", "IE11"),
    ("Google Chrome (Version 131.0.6778.86)", "Google Chrome (Version 131.0.6778.86)"),
])
def test_a_browser_with_its_version_is_a_browser(body: str, evidence: str) -> None:
    result = _check("browser", body)
    assert result.present
    assert result.evidence == evidence


@pytest.mark.parametrize("body", [
    "Jag kör Firefox på min Mac.",
    "Jag kör iOS 17 och Safari.",
    "We're on API v3 and test against the sandbox.",
    "Jag har testat i Chrome, 3 gånger.",
    "It worked at the cutting edge 2 years ago.",
    "Hej,\n\nFortfarande fel.\n\nOn Mon, 16 Nov 2026 at 10:12, Anna <a@b.se> wrote:\n\n"
    "> Jag kör Chrome 131.",
])
def test_a_browser_without_version_or_in_a_quote_is_no_browser(body: str) -> None:
    assert not _present("browser", body)


def test_the_user_agent_header_never_names_the_browser() -> None:
    headers = {"User-Agent": "Mozilla/5.0 (Windows NT 10.0) Chrome/131.0.0.0 Safari/537.36",
               "X-Mailer": "Microsoft Outlook 16.0 on Windows 11"}
    results = check_items(_mail("Sidan laddar inte.", headers=headers), ["browser", "os"])
    assert [result.present for result in results] == [False, False]


@pytest.mark.parametrize(("body", "evidence"), [
    ("Testat på Windows 10.", "Windows 10"),
    ("Datorn: Windows 11 Pro.", "Windows 11 Pro"),
    ("The export runs on Windows Server 2022.", "Windows Server 2022"),
    ("Jag använder macOS 14 Sonoma.", "macOS 14 Sonoma"),
    ("Jag kör iOS 17.", "iOS 17"),
    ("En Samsung med Android 14.", "Android 14"),
    ("I see it on Ubuntu 22.04.", "Ubuntu 22.04"),
    ("operativsystem: Windows 11", "Windows 11"),
])
def test_an_os_with_its_version_is_an_os(body: str, evidence: str) -> None:
    result = _check("os", body)
    assert result.present
    assert result.evidence == evidence


@pytest.mark.parametrize("body", [
    "Anna har samma problem på sin Windows-dator.",
    "Anna has the same problem on her Windows laptop.",
    "Jag kör Firefox på min Mac.",
    "Det gäller min iPhone 15.",
    "Jag har provat i Chrome 131.",
    "Hej,\n\nNu fungerar det.\n\n/Johan\n\nDen tis 17 nov. 2026 kl 10:12 skrev Johan "
    "<johan@example.com>:\n\n> Jag kör iOS 17.",
])
def test_an_os_without_version_or_in_a_quote_is_no_os(body: str) -> None:
    assert not _present("os", body)


# ---------------------------------------------------------------- campaign_number

@pytest.mark.parametrize(("body", "evidence"), [
    ("Värdebevisen i kampanjnummer 48213 nekas.", "kampanjnummer 48213"),
    ("Det gäller kampanj nr: K-2026-118.", "kampanj nr: K-2026-118"),
    ("Kampanjrapporten för kampanj 49102 visar noll.", "kampanj 49102"),
    ("It concerns campaign no. K-2026-131.", "campaign no. K-2026-131"),
    ("Our campaign number is 50211.", "campaign number is 50211"),
])
def test_a_campaign_with_a_number_is_a_campaign_number(body: str, evidence: str) -> None:
    result = _check("campaign_number", body)
    assert result.present
    assert result.evidence == evidence


def test_the_campaign_number_in_a_new_subject_counts() -> None:
    assert _present("campaign_number", "Koderna nekas.", subject="Kampanj 48213 går inte")
    assert not _present("campaign_number", "Koderna nekas.", subject="SV: Kampanj 48213 går inte")


@pytest.mark.parametrize("body", [
    "Värdebevisen i vår nya kampanj kommer inte fram.",
    "Inför kampanjen 2026 vill vi ha ett möte.",
    "Hej,\n\nNågon nyhet?\n\n/Sara\n\nOn Mon, 16 Nov 2026 at 10:12, Sara <s@smakbolaget.se>"
    " wrote:\n\n> kampanjnummer 48213",
])
def test_a_campaign_without_number_is_no_campaign_number(body: str) -> None:
    assert not _present("campaign_number", body)


# ---------------------------------------------------------------- company

@pytest.mark.parametrize(("body", "evidence"), [
    ("Mvh\nGöran Sjöberg\nFjällbygg i Åre AB", "Fjällbygg i Åre AB"),
    ("Vi på Norrsken Fastigheter AB söker en ny byrå.", "Norrsken Fastigheter AB"),
    ("Best regards\nMads\nHyggeshop ApS", "Hyggeshop ApS"),
    ("Kind regards\nKristjan Tamm\nBaltic Freight OÜ", "Baltic Freight OÜ"),
    ("Hälsningar\nElin\nKafé Lyktan HB", "Kafé Lyktan HB"),
    ("Liam Foster\nCTO, Brightwave Ltd", "Brightwave Ltd"),
])
def test_a_name_with_a_legal_form_is_a_company(body: str, evidence: str) -> None:
    result = _check("company", body, sender="Kund <kund@annat-foretag.se>")
    assert result.present
    assert result.evidence == evidence


def test_the_senders_own_company_name_counts_without_legal_form() -> None:
    result = _check("company", "I'm the IT consultant for Bergströms Bygg and the portal fails.",
                    sender="Erik <erik@it.bergstromsbygg.se>")
    assert result.present
    assert result.evidence == "Bergströms Bygg"


@pytest.mark.parametrize(("body", "sender"), [
    ("Kontaktformuläret på bergstromsbygg.se skickar inga mejl.",
     "Anna <anna@bergstromsbygg.se>"),
    ("Jag läser min Gmail varje dag men inga mejl kommer.", "Johan <johan@gmail.com>"),
    ("PLEASE CALL ME AS SOON AS POSSIBLE.", "Kund <kund@kund.se>"),
    ("Hej,\n\nFortfarande fel.\n\n/Maria\n\n> Maria Holm\n> Lindqvist Logistik AB",
     "Maria <maria@exempel.se>"),
])
def test_addresses_free_mail_shouting_and_quotes_name_no_company(body: str, sender: str) -> None:
    assert not _present("company", body, sender=sender)


# ---------------------------------------------------------------- contact_name_title

@pytest.mark.parametrize(("body", "evidence"), [
    ("Med vänliga hälsningar\nAnna Lind\nIT-ansvarig\nBergströms Bygg AB",
     "Anna Lind, IT-ansvarig"),
    ("Johan Bergström\nVD, Bergströms Bygg AB\n070-551 82 30", "Johan Bergström, VD"),
    ("Mvh\nAnna Lind, IT-ansvarig", "Anna Lind, IT-ansvarig"),
    ("Mvh\nAnna Lind (IT-ansvarig)", "Anna Lind, IT-ansvarig"),
    ("Mvh\nAnna Lind | IT-ansvarig | Bergströms Bygg AB", "Anna Lind, IT-ansvarig"),
    ("Thanks,\nPriya Raman\nIntegration Developer | Nordic Parcel Ltd",
     "Priya Raman, Integration Developer"),
    ("Kind regards\nKristjan Tamm\nHead of IT\nBaltic Freight OÜ", "Kristjan Tamm, Head of IT"),
    ("Med vänlig hälsning\n\nLisa Wikström\n\nMarknadsassistent",
     "Lisa Wikström, Marknadsassistent"),
])
def test_a_name_with_a_title_is_a_contact(body: str, evidence: str) -> None:
    result = _check("contact_name_title", "Sidan laddar inte.\n\n" + body)
    assert result.present
    assert result.evidence == evidence


@pytest.mark.parametrize("body", [
    "Mvh\nGöran Sjöberg\nFjällbygg i Åre AB\n0647-155 20",
    "/Anna",
    "Vänliga hälsningar\nKerstin Nilsson\n070-228 91 47",
    "Med vänlig hälsning\nBengt Karlsson\nStorgatan 5\n582 22 Linköping",
    "/Johan\n\nDen tis 17 nov. 2026 kl 10:12 skrev Johan <johan@example.com>:\n\n"
    "> Johan Bergström\n> VD, Bergströms Bygg AB",
])
def test_a_name_without_title_is_no_contact(body: str) -> None:
    assert not _present("contact_name_title", "Sidan laddar inte.\n\n" + body)


# ---------------------------------------------------------------- contact_details

@pytest.mark.parametrize(("body", "evidence"), [
    ("Telefon: 08-588 340 59", "08-588 340 59"),
    ("Ring mig på 070-330 11 89 om ni undrar.", "070-330 11 89"),
    ("Mobil: +46 70 330 11 89", "+46 70 330 11 89"),
    ("Tel 0046 70 330 11 89", "0046 70 330 11 89"),
    ("Tel. 0647-155 20", "0647-155 20"),
    ("Call me on +44 7700 900 412.", "+44 7700 900 412"),
    ("Bengt Karlsson\nStorgatan 5\n582 22 Linköping", "Storgatan 5, 582 22 Linköping"),
    ("Kafé Lyktan HB\nStorgatan 14, 931 30 Skellefteå", "Storgatan 14, 931 30 Skellefteå"),
])
def test_a_phone_number_or_address_is_contact_details(body: str, evidence: str) -> None:
    result = _check("contact_details", "Sidan laddar inte.\n\n" + body)
    assert result.present
    assert result.evidence == evidence


@pytest.mark.parametrize("body", [
    "Jag har fått faktura 2026-4471 på 1 250 kronor.",
    "Det gäller sändning 4471-2290 från 2026-11-19.",
    "Det gäller nummer som börjar på +46 76.",
    "Svara till anna.lind@bergstromsbygg.se.",
    "Felet kom kl 10.15 och 10:45, kod 0 kB.",
    "Fortfarande fel.\n\n/Maria\n\n> 16 nov. 2026 kl. 10:31 skrev Per <per@lindqvist.se>:\n"
    "> Mobil: +46 70 412 55 03",
])
def test_numbers_that_are_not_phones_are_no_contact_details(body: str) -> None:
    assert not _present("contact_details", body)


# ---------------------------------------------------------------- real-world mail and bounded work

def _corpus_files() -> list[Path]:
    return sorted(CORPUS.glob("*/*.eml"))


def test_real_world_mail_never_breaks_a_detector() -> None:
    checked = 0
    for path in _corpus_files():
        try:
            mail = parse_mail(path.read_bytes())
        except UnparseableMail:
            continue
        results = check_items(mail, KNOWN_ITEMS)
        assert [result.item for result in results] == list(KNOWN_ITEMS), path.name
        checked += 1
    assert checked > 300


def test_machine_mail_in_the_corpus_has_no_description() -> None:
    with (CORPUS / "manifest.tsv").open(encoding="utf-8") as manifest:
        rows = list(csv.DictReader(manifest, delimiter="\t"))
    described = [row["file"] for row in rows if row["expected_kind"] != "human" and check_items(
        parse_mail((CORPUS / row["file"]).read_bytes()), ["description"])[0].present]
    assert described == []


def test_large_and_hostile_bodies_are_read_in_bounded_time() -> None:
    hostile = ("0" * 5000 + " " + "1 " * 5000 + "Aaa " * 5000 + "kampanj " * 2000
               + "On 1 wrote " * 2000 + "> x\n" * 2000 + "Från: x\n" * 2000 + "kl 1" * 2000)
    mail = _mail("Hej!\n\n" + hostile * 20)
    results = check_items(mail, KNOWN_ITEMS)
    assert len(results) == len(KNOWN_ITEMS)
