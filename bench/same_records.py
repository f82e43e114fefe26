"""Whether processing writes the same records as an earlier revision of maild, row for row.

Both trees process the same messages, at the same fixed times, into fresh SQLite
databases (with --postgres, fresh PostgreSQL databases): the corpus (fixtures/
and tests/corpus/), the benchmark's own mails, then follow-ups made from what
the first pass wrote (replies to the acknowledgements, items supplied, staff
answers, replies on closed tickets, unauthenticated replies). Every row of every
table is compared, ids included; only what is random by design (Message-IDs,
VERP tokens, MIME boundaries maild makes) is replaced by a label in order of
appearance.
Usage: python bench/same_records.py [--against REV] [--postgres ADMIN_URL]
(REV: a git revision, default HEAD; ADMIN_URL: postgresql://postgres@127.0.0.1:5432/postgres)
"""

from __future__ import annotations

import argparse
import difflib
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Run inside the tree under test (its directory first on sys.path): writes the dump to argv[2].
_DUMP = r'''
import hashlib, json, re, sqlite3, sys
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

from sqlmodel import Session, col, select

from maild.config import load_config
from maild.intake import store_inbound
from maild.log import configure_logging
from maild.models import Outbox, Ticket
from maild.runtime import open_runtime
from maild.tickets.closing import close_ticket

corpus, out, data = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
database_url = sys.argv[4] if len(sys.argv) > 4 else None
configure_logging("error", "json")
runtime = open_runtime(load_config(env={}, overrides={
    "data_dir": str(data), "rules_dir": str(corpus / "rules"),
    **({"database_url": database_url} if database_url else {})}))
start = datetime(2026, 11, 16, 9, 0, tzinfo=timezone.utc)
clock = {"now": start}
received = iter(start + timedelta(minutes=7 * i) for i in range(100_000))


def store(raw, transport="file", sender=None, to=("support@example.se",)):
    store_inbound(runtime.engine, raw, transport=transport, envelope_sender=sender,
                  recipients=list(to), received_at=next(received))


def process(at):
    clock["now"] = at
    processor = runtime.processor()
    processor.clock = lambda: clock["now"]
    processor.run_pending()


def mail(sender, subject, body, *, message_id, in_reply_to=None, trusted=True, cc=None,
         attachment=None):
    message = EmailMessage(policy=SMTP)
    address = sender.rpartition("<")[2].rstrip(">").lower()
    domain = address.rpartition("@")[2]
    if trusted:
        message["Authentication-Results"] = (
            f"mx1.example.se; dkim=pass header.d={domain} header.s=s1; spf=pass "
            f"smtp.mailfrom={address}; dmarc=pass (p=reject) header.from={domain}")
        message["Received"] = (f"from mail.{domain} (mail.{domain} [192.0.2.25]) by "
                               "mx1.example.se (Postfix) with ESMTPS id 4Xk1; "
                               "Mon, 16 Nov 2026 10:12:03 +0100")
    message["From"] = sender
    message["To"] = "support@example.se"
    if cc:
        message["Cc"] = cc
    message["Subject"] = subject
    message["Date"] = "Tue, 17 Nov 2026 10:12:00 +0100"
    message["Message-ID"] = f"<{message_id}>"
    if in_reply_to:
        message["In-Reply-To"] = f"<{in_reply_to}>"
        message["References"] = f"<{in_reply_to}>"
    message.set_content(body)
    if attachment:
        message.add_attachment(attachment, maintype="image", subtype="png",
                               filename="skarmbild.png")
        message.set_boundary("fixed-boundary")
    return message.as_bytes()


def bench_mail(index, attachment):
    body = ("Hej!\n\nNär vi bokar ett rum visas fel pris i kassan sedan i morse, kl 09.45. "
            "Chrome 131 på Windows 11.\n\nMed vänliga hälsningar\nAnna Lind\n"
            "IT-ansvarig, Bergströms Bygg AB\n070-330 11 89\n")
    return mail("Anna Lind <anna.lind@bergstromsbygg.se>",
                f"Bokningssidan visar fel pris ({index})", body, trusted=False,
                message_id=f"bench-{attachment}-{index}@bergstromsbygg.se",
                attachment=bytes(range(256)) * 400 if attachment else None)


# Pass 1: the corpus, then the benchmark's mails.
files = sorted((corpus / "fixtures" / "emails").glob("*.eml"))
files += sorted((corpus / "fixtures" / "heldout").glob("*.eml"))
files += sorted((corpus / "fixtures" / "machine-mail").glob("*.eml"))
files += sorted(path for path in (corpus / "tests" / "corpus").rglob("*")
                if path.is_file() and path.suffix not in (".tsv", ".md", ".json")
                and path.name not in ("LICENSE", "README"))
for path in files:
    store(path.read_bytes())
for index in range(40):
    store(bench_mail(index, attachment=index % 4 == 3), transport="smtp",
          sender="anna.lind@bergstromsbygg.se")
process(start + timedelta(days=1))

# Pass 2: follow-ups made from what pass 1 wrote.
with Session(runtime.engine) as session:
    acks = session.exec(select(Outbox).where(col(Outbox.purpose) == "ack")
                        .order_by(col(Outbox.id))).all()
    tickets = {t.id: t for t in session.exec(select(Ticket).order_by(col(Ticket.id))).all()}
    for ticket in list(tickets.values())[:60:6]:
        if ticket.status != "closed":
            close_ticket(session, ticket, runtime.rules, actor="test", at=start,
                         review="granskad")
    session.commit()
    pending = []
    for index, ack in enumerate(acks):
        ticket = tickets[ack.ticket_id]
        subject = f"Re: [{ticket.number}] {ticket.subject}"
        person = ack.recipient
        if index % 5 == 0:
            body = ("Här kommer det ni saknade: skärmbild bifogad. Det hände igår kl 14.30. "
                    "Vi använder Chrome 131 på Windows 11. Felet visar sig när man lägger en "
                    "bokning i kassan och priset blir dubbelt så högt som det ska vara.\n")
            pending.append(mail(person, subject, body, message_id=f"supplied-{index}@x.test",
                                in_reply_to=ack.message_id, attachment=b"\x89PNG" * 500))
        elif index % 5 == 1:
            pending.append(mail("Per Agent <per.agent@example.se>", subject,
                                "Hej, vi tittar på det nu.\n", message_id=f"staff-{index}@x.test",
                                in_reply_to=ack.message_id, cc="support@example.se"))
        elif index % 5 == 2:
            pending.append(mail(person, subject, "Tack, det fungerar fortfarande inte.\n",
                                message_id=f"again-{index}@x.test", trusted=False))
        else:
            pending.append(mail(person, subject, "Tack! Ett tillägg: det gäller alla rum.\n",
                                message_id=f"more-{index}@x.test", in_reply_to=ack.message_id))
    for ticket in list(tickets.values())[:60:3]:
        if ticket.requester:
            pending.append(mail(ticket.requester, f"SV: {ticket.number} {ticket.subject}",
                                "Hej igen, samma fel kvarstår.\n",
                                message_id=f"tagged-{ticket.id}@x.test"))
    bounces = []
    for index, ack in enumerate(acks[::7]):
        status = "5.1.1" if index % 2 == 0 else "4.4.1"
        action = "failed" if index % 2 == 0 else "delayed"
        bounces.append((ack.envelope_sender, (
            "From: MAILER-DAEMON@mx.customer.test\r\nTo: " + ack.envelope_sender + "\r\n"
            "Subject: Undelivered Mail Returned to Sender\r\n"
            f"Message-ID: <dsn-{index}@mx.customer.test>\r\nAuto-Submitted: auto-replied\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/report; "
            'report-type=delivery-status; boundary="b"\r\n\r\n--b\r\n'
            "Content-Type: text/plain\r\n\r\nThe message could not be delivered.\r\n"
            "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
            "Reporting-MTA: dns; mx.customer.test\r\n\r\n"
            f"Final-Recipient: rfc822; {ack.recipient}\r\nAction: {action}\r\n"
            f"Status: {status}\r\n\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
            f"Message-ID: <{ack.message_id}>\r\nTo: {ack.recipient}\r\n\r\n--b--\r\n"
        ).encode()))
for raw in pending:
    store(raw, transport="smtp")
for verp, raw in bounces:
    store(raw, transport="smtp", sender="", to=(verp,))
process(start + timedelta(days=2))

# The dump: every row of every table, with maild's random values labelled.
labels = {}
RANDOM = re.compile(r"maild\.[0-9a-f]{24}@|=_maild_[0-9a-f]{24}|\+[0-9a-z]{10,32}@|"
                    r"\b[0-9a-f]{32}\b|(?<![0-9a-f])[0-9a-f]{16}(?![0-9a-f])")


def label(text):
    return RANDOM.sub(lambda m: labels.setdefault(m.group(0), f"<random {len(labels)}>"), text)


if database_url:
    import psycopg

    db = psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://"))
    tables = [name for (name,) in db.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
        "ORDER BY table_name")]
    order = "1"  # the first column: the id, or the key of a table without one
else:
    db = sqlite3.connect(runtime.engine.url.database)
    tables = [name for (name,) in db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "ORDER BY name")]
    order = "rowid"
dump = {}
# Where a mail's bytes are kept (its row, or inbound_raw and outbox_raw: maild.bytes_apart)
# is not a difference: they are read as part of their row.
APART = {"inbound": "inbound_raw", "outbox": "outbox_raw"}
apart = {owner: dict(db.execute(f"SELECT {owner}_id, raw FROM {kept}").fetchall())
         for owner, kept in APART.items() if kept in tables}
if "outbox_raw" in tables and not database_url:  # a team copy may refer to its original
    apart["outbox"] = dict(db.execute(
        "SELECT o.outbox_id, CASE WHEN o.original_id IS NULL THEN o.raw "
        "ELSE CAST(o.raw || coalesce(r.raw, i.raw) || o.tail AS BLOB) END "
        "FROM outbox_raw o LEFT JOIN inbound i ON i.id = o.original_id "
        "LEFT JOIN inbound_raw r ON r.inbound_id = o.original_id").fetchall())
for table in tables:
    if table in APART.values() or table == "alembic_version":  # the schema's, not records
        continue
    cursor = db.execute(f"SELECT * FROM {table} ORDER BY {order}")
    names = [d[0] for d in cursor.description]
    rows = []
    for row in cursor:
        values = {}
        for name, value in zip(names, row):
            if name == "raw" and row[0] in apart.get(table, {}):
                value = apart[table][row[0]]
            if isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, (dict, list)):  # PostgreSQL's JSON, as its text
                value = json.dumps(value, ensure_ascii=False, sort_keys=True)
            if table == "inbound" and name == "idempotency_key":
                continue  # a digest of the raw bytes, compared below
            if isinstance(value, bytes):
                value = label(value.decode("latin-1"))
                if table == "inbound":  # the input: its digest is enough
                    value = "sha256:" + hashlib.sha256(value.encode("utf-8")).hexdigest()
            values[name] = label(value) if isinstance(value, str) else value
        rows.append(values)
    dump[table] = rows
out.write_text(json.dumps(dump, indent=1, ensure_ascii=False, sort_keys=True))
print({table: len(rows) for table, rows in dump.items() if rows})
'''


def dump(tree: Path, corpus: Path, workdir: Path, name: str,
         database_url: str | None = None) -> list[str]:
    """Process the messages with the maild in `tree` (on `database_url`); the dump's lines."""
    out = workdir / f"{name}.json"
    done = subprocess.run([sys.executable, "-c", _DUMP, str(corpus), str(out),
                           str(workdir / name), *([database_url] if database_url else [])],
                          env={**os.environ, "PYTHONPATH": str(tree)},
                          capture_output=True, text=True, check=False, cwd=workdir)
    if done.returncode != 0:
        sys.exit(f"{name}: {done.stderr[-3000:]}")
    print(f"{name}: {done.stdout.strip()}")
    return out.read_text("utf-8").splitlines()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--against", default="HEAD", help="the git revision to compare with")
    parser.add_argument("--postgres", metavar="ADMIN_URL",
                        help="run on fresh PostgreSQL databases made through this server")
    args = parser.parse_args()
    with _databases(args.postgres) as (before_url, after_url):
        _compare(args.against, before_url, after_url)


@contextmanager
def _databases(admin_url: str | None) -> Iterator[tuple[str | None, str | None]]:
    """Two fresh PostgreSQL databases through `admin_url`, dropped afterwards; or SQLite's."""
    if admin_url is None:
        yield None, None
        return
    import psycopg

    names = [f"maild_same_{uuid.uuid4().hex[:10]}_{side}" for side in ("before", "after")]
    base = admin_url.rpartition("/")[0].replace("postgresql://", "postgresql+psycopg://")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        for name in names:
            admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{base}/{names[0]}", f"{base}/{names[1]}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            for name in names:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _compare(against: str, before_url: str | None, after_url: str | None) -> None:
    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        before = workdir / "before"
        before.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", against],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(before)], input=archive, check=True)
        # One corpus and one set of rules for both: the working tree's.
        old = dump(before, ROOT, workdir, "before", before_url)
        new = dump(ROOT, ROOT, workdir, "after", after_url)
        difference = list(difflib.unified_diff(old, new, "before", "after", n=2, lineterm=""))
        if difference:
            print("\n".join(difference[:400]))
            sys.exit(f"the records differ: {len(difference)} diff lines")
        print(f"the same records: {len(new)} lines of dump")


if __name__ == "__main__":
    main()
