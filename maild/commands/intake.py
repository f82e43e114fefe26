"""`maild ingest`, `deliver`, `route` and `process`: getting mail in, and dry runs."""

from __future__ import annotations

import argparse
import mailbox
import re
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import inspect
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from maild.admission import not_mail_reason, too_large_reason
from maild.commands.common import (
    EX_FAILED,
    EX_OK,
    EX_TEMPFAIL,
    CommandError,
    Context,
    console,
    print_json,
)
from maild.db import StorageError, make_engine, schema_is_current
from maild.intake import store_inbound
from maild.log import get_logger
from maild.models import Inbound, utcnow
from maild.parse import UnparseableMail, parse_mail
from maild.pipeline import Envelope, Lookups, decide, identity_of, unparseable_decision
from maild.respond.outbox import waiting
from maild.routing.load import RulesError
from maild.runtime import ack_limits
from maild.tickets.correlate import NoTickets
from maild.tickets.service import DatabaseTickets

log = get_logger("maild.commands")
_RETURN_PATH = re.compile(rb"^Return-Path:[ \t]*<([^>]*)>", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class Source:
    """One message to ingest and where it came from."""

    label: str
    raw: bytes


def _is_maildir(path: Path) -> bool:
    return all((path / sub).is_dir() for sub in ("cur", "new", "tmp"))


def _is_mbox(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(5) == b"From "


def _from_maildir(path: Path, max_size: int | None) -> Iterator[Source | tuple[str, str]]:
    box = mailbox.Maildir(path, factory=None, create=False)
    for key in sorted(box.keys()):
        yield _admitted(f"{path}:{key}", box.get_bytes(key), max_size)


def _from_mbox(path: Path, max_size: int | None) -> Iterator[Source | tuple[str, str]]:
    box = mailbox.mbox(path, factory=None, create=False)
    for index, key in enumerate(box.keys(), start=1):
        yield _admitted(f"{path}#{index}", box.get_bytes(key), max_size)


def _from_file(path: Path, max_size: int | None) -> Source | tuple[str, str]:
    reason = too_large_reason(path.stat().st_size, max_size) if max_size is not None else None
    if reason is not None:  # refused unread
        return (str(path), f"refused: {reason}")
    return _admitted(str(path), path.read_bytes(), max_size)


def _admitted(label: str, raw: bytes, max_size: int | None) -> Source | tuple[str, str]:
    """`raw` as a message to store, or (label, why it is refused: too large, or no mail)."""
    reason = too_large_reason(len(raw), max_size) if max_size is not None else None
    if reason is not None:
        return (label, f"refused: {reason}")
    reason = not_mail_reason(raw)
    if reason is not None:
        return (label, f"refused: not a mail message: {reason}")
    return Source(label, raw)


def collect(paths: list[str], max_size: int | None = None) -> Iterator[Source | tuple[str, str]]:
    """Every message under `paths`, read one at a time as it is needed.

    Yields (label, reason) instead for a path that cannot be read, a file that is
    no mail message, and a message over `max_size` bytes (left unread).
    """
    for name in paths:
        path = Path(name)
        try:
            if path.is_dir():
                if _is_maildir(path):
                    yield from _from_maildir(path, max_size)
                    continue
                for child in sorted(path.rglob("*")):
                    if child.is_dir() and _is_maildir(child):
                        yield from _from_maildir(child, max_size)
                    elif child.is_file() and child.suffix.lower() == ".eml":
                        yield _from_file(child, max_size)
                    elif child.is_file() and child.suffix.lower() == ".mbox":
                        yield from _from_mbox(child, max_size)
            elif path.is_file():
                if _is_mbox(path):
                    yield from _from_mbox(path, max_size)
                else:
                    yield _from_file(path, max_size)
            else:
                yield (str(path), "no such file or directory")
        except OSError as error:
            yield (str(path), error.strerror or str(error))


def envelope_sender_of(raw: bytes) -> str | None:
    """The envelope sender a mailbox file recorded in Return-Path ("" for <>), else None."""
    head = raw.split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0]
    match = _RETURN_PATH.search(head)
    return match.group(1).decode("utf-8", "replace").strip() if match else None


def ingest(context: Context, args: argparse.Namespace) -> int:
    """Store every message under the given paths, process them, deliver acknowledgements."""
    runtime = context.runtime
    counts: Counter[str] = Counter()
    failures: list[str] = []
    out = console()
    show_progress = sys.stderr.isatty()
    from rich.progress import Progress

    with Progress(transient=True, disable=not show_progress,
                  console=console().__class__(stderr=True)) as progress:
        task = progress.add_task("storing", total=None)
        # One message in memory at a time: each is read, stored and let go.
        for source in collect(args.paths, context.config.max_message_size):
            progress.advance(task)
            if isinstance(source, tuple):
                failures.append(f"{source[0]}: {source[1]}")
                counts["refused"] += source[1].startswith("refused")
                print(f"maild: not stored: {source[0]}: {source[1]}", file=sys.stderr)
                continue
            try:
                stored = store_inbound(runtime.engine, source.raw, transport="file",
                                       envelope_sender=envelope_sender_of(source.raw),
                                       recipients=args.to, source=source.label)
            except StorageError as error:
                failures.append(f"{source.label}: {error}")
                print(f"maild: not stored: {source.label}: {error}", file=sys.stderr)
                continue
            counts["duplicates" if stored.duplicate else "stored"] += 1
        # Input that was all refused processes nothing.
        nothing_taken = failures and not counts["stored"] and not counts["duplicates"]
        if not args.no_process and not nothing_taken:
            processor = runtime.processor()
            work = progress.add_task("processing", total=counts["stored"] or None)
            outcome = processor.run_pending(progress=lambda _: progress.advance(work))
            counts.update(outcome)
            report = runtime.flush_outbox()
            counts["sent"] += report.sent_by_purpose.get("ack", 0)
            counts["team"] += report.sent_by_purpose.get("team", 0)
            counts["retried"] += report.retried
            left = waiting(runtime.engine)
    summary = (f"stored {counts['stored']}, duplicates {counts['duplicates']}, "
               f"could not store {len(failures) - counts['refused']}")
    if counts["refused"]:
        summary += f", refused {counts['refused']}"
    if not args.no_process and not nothing_taken:
        kinds = {key[5:]: value for key, value in counts.items() if key.startswith("kind:")}
        summary += (f"; processed {counts['processed']}, quarantined {counts['quarantined']}, "
                    f"to retry {counts['received']}")
        if kinds:
            summary += " (" + ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items())) + ")"
        summary += (f"; acknowledgements delivered {counts['sent']}, "
                    f"copies to teams {counts['team']}")
        summary += "; " + left.describe()
        if report.left:
            summary += (f"; the outbox pass stopped at its batch size ({report.batch_size}): "
                        "`maild outbox flush` or the daemon delivers the rest")
    out.print(summary)
    return EX_FAILED if failures else EX_OK


def deliver(context: Context, args: argparse.Namespace) -> int:
    """Store one message from standard input; exit 75 if it could not be stored.

    Standard input is read up to the size limit and no further: a larger message,
    or input that is no mail message, is refused with exit 65 (EX_DATAERR), which
    an MTA returns to the sender instead of retrying.
    """
    limit = context.config.max_message_size
    raw = sys.stdin.buffer.read(limit + 1)
    if not raw.strip():
        raise CommandError("no message on standard input; nothing stored", code=65)
    if len(raw) > limit:
        raise CommandError(f"message refused, nothing stored: it is larger than the limit of "
                           f"{limit} bytes (smtp.max_message_size)", code=65)
    reason = not_mail_reason(raw)
    if reason is not None:
        raise CommandError(f"message refused, nothing stored: not a mail message: {reason}",
                           code=65)
    try:
        runtime = context.runtime
        stored = store_inbound(runtime.engine, raw, transport="pipe",
                               envelope_sender=args.sender, recipients=args.to)
    except StorageError as error:
        print(f"maild: temporary failure, message not stored (the MTA will retry): {error}",
              file=sys.stderr)
        return EX_TEMPFAIL
    # The message is safe from here on: whatever happens next, exit 0.
    try:
        processor = runtime.processor()
        outcome = processor.process_now(stored.inbound_id)
        runtime.flush_outbox()
    except (RulesError, StorageError, SQLAlchemyError, OSError) as error:
        print(f"stored as inbound {stored.inbound_id}; processing deferred: "
              f"{str(error).splitlines()[0]}")
        return EX_OK
    with Session(runtime.engine) as session:
        inbound = session.get(Inbound, stored.inbound_id)
        assert inbound is not None
        ticket_number = None
        if inbound.ticket_id is not None:
            from maild.models import Ticket

            ticket = session.get(Ticket, inbound.ticket_id)
            ticket_number = ticket.number if ticket else None
        kind, state = inbound.kind, inbound.state
    if ticket_number:
        print(ticket_number)
    elif outcome is None and stored.duplicate:
        print(f"duplicate of inbound {stored.inbound_id} ({state})")
    else:
        print(f"stored as inbound {stored.inbound_id}: {kind or state}, no ticket")
    return EX_OK


def _lookup_for_route(context: Context) -> tuple[Lookups, Session | None]:
    config = context.config
    path = config.sqlite_path
    if path is not None and not path.exists():
        return NoTickets(), None
    try:
        engine = make_engine(config.database_url, create_dir=False)
        if not inspect(engine).has_table("ticket"):
            return NoTickets(), None
        if not schema_is_current(engine):
            print("maild: the database schema is older than this maild (any other maild "
                  "command upgrades it); deciding without looking at stored tickets",
                  file=sys.stderr)
            return NoTickets(), None
        session = Session(engine)
        return DatabaseTickets(session), session
    except SQLAlchemyError as error:
        log.warning("route.no_database", error=str(error).splitlines()[0])
        return NoTickets(), None


def route(context: Context, args: argparse.Namespace) -> int:
    """Print the decision for one message file; write nothing."""
    path = Path(args.file)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise CommandError(f"{path}: {error.strerror}") from error
    from maild.routing.load import load_rules
    from maild.tickets.numbering import TicketNumbering

    rules = load_rules(context.config.rules_dir)
    numbering = TicketNumbering(context.config.ticket_prefix)
    sender = args.sender if args.sender is not None else envelope_sender_of(raw)
    envelope = Envelope(sender=sender, recipients=tuple(args.to), received_at=utcnow())
    lookup, session = _lookup_for_route(context)
    try:
        try:
            mail = parse_mail(raw)
        except UnparseableMail as error:
            decision = unparseable_decision(str(error), envelope, rules)
        else:
            decision = decide(mail, envelope, rules, lookup=lookup, numbering=numbering,
                              identity=identity_of(rules, context.config.mail_domain),
                              limits=ack_limits(context.config))
    finally:
        if session is not None:
            session.rollback()
            session.close()
    record = decision.to_json()
    if args.json:
        print_json(record)
        return EX_OK
    out = console()
    for key, value in record.items():
        if key == "rules_tried":
            out.print("rules_tried:")
            for step in value:
                mark = "matched" if step["matched"] else "not matched"
                out.print(f"  {step['rule']}: {mark}: {step['detail']}")
        else:
            out.print(f"{key}: {'' if value is None else value}")
    return EX_OK


def process(context: Context, args: argparse.Namespace) -> int:
    """Process every stored message that waits, then deliver what is due."""
    runtime = context.runtime
    counts = runtime.processor().run_pending()
    report = runtime.flush_outbox()
    console().print(f"processed {counts['processed']}, quarantined {counts['quarantined']}, "
                    f"to retry {counts['received']}; delivered {report.sent}")
    return EX_OK
