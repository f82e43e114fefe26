"""`maild ingest`, `deliver`, `route` and `process`: getting mail in, and dry runs."""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from maild.admission import not_mail_reason, too_large_reason
from maild.commands.common import (
    EX_DATAERR,
    EX_FAILED,
    EX_OK,
    EX_TEMPFAIL,
    EX_USAGE,
    CommandError,
    Context,
    console,
    print_json,
)

if TYPE_CHECKING:
    from sqlmodel import Session

    from maild.pipeline import Lookups
    from maild.workers.side_by_side import SideBySide

# The heavy modules (SQLAlchemy, the pipeline) are imported inside the commands that
# need them: `maild deliver` must start in a few tens of milliseconds (see bench/).
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
    import mailbox

    box = mailbox.Maildir(path, factory=None, create=False)
    for key in sorted(box.keys()):
        yield _admitted(f"{path}:{key}", box.get_bytes(key), max_size)


def _from_mbox(path: Path, max_size: int | None) -> Iterator[Source | tuple[str, str]]:
    import mailbox

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


# `ingest` commits this many messages (or this many bytes of them) at a time.
_STORE_GROUP = 64
_STORE_GROUP_BYTES = 32 * 1024 * 1024


def ingest(context: Context, args: argparse.Namespace) -> int:
    """Store every message under the given paths, process them, deliver acknowledgements."""
    from maild.db import StorageError
    from maild.intake import Arrival, store_batch
    from maild.respond.outbox import waiting

    runtime = context.runtime
    counts: Counter[str] = Counter()
    failures: list[str] = []
    out = console()
    show_progress = sys.stderr.isatty()
    from rich.progress import Progress

    group: list[Arrival] = []

    def store_group() -> None:
        """Commit the messages read so far in one transaction (one sync to disk)."""
        for arrival, stored in zip(group, store_batch(runtime.engine, group), strict=True):
            if isinstance(stored, StorageError):
                failures.append(f"{arrival.source}: {stored}")
                print(f"maild: not stored: {arrival.source}: {stored}", file=sys.stderr)
            else:
                counts["duplicates" if stored.duplicate else "stored"] += 1
        group.clear()

    side_by_side = None if args.no_process else _helpers(context, args)
    with side_by_side or contextlib.nullcontext(), Progress(
            transient=True, disable=not show_progress,
            console=console().__class__(stderr=True)) as progress:
        task = progress.add_task("storing", total=None)
        # A bounded group of messages in memory at a time: read, stored together, let go.
        held = 0
        for source in collect(args.paths, context.config.max_message_size):
            progress.advance(task)
            if isinstance(source, tuple):
                failures.append(f"{source[0]}: {source[1]}")
                counts["refused"] += source[1].startswith("refused")
                print(f"maild: not stored: {source[0]}: {source[1]}", file=sys.stderr)
                continue
            group.append(Arrival(source.raw, "file", envelope_sender_of(source.raw),
                                 args.to or (), source.label))
            held += len(source.raw)
            if len(group) >= _STORE_GROUP or held >= _STORE_GROUP_BYTES:
                store_group()
                held = 0
        if group:
            store_group()
        # Input that was all refused processes nothing.
        nothing_taken = failures and not counts["stored"] and not counts["duplicates"]
        if not args.no_process and not nothing_taken:
            work = progress.add_task("processing", total=counts["stored"] or None)
            assert side_by_side is not None  # made unless --no-process
            done = side_by_side.run(lambda _: progress.advance(work))
            counts.update(done.counts)
            failures += done.failures
            for failure in done.failures:
                print(f"maild: {failure}", file=sys.stderr)
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
    """Store one message from standard input: exit 0 once committed, 75 if it could not be.

    What it prints is what the MTA logs (and puts in a bounce notice), so it is
    one plain line: `stored as inbound N` (with --process: the ticket number).
    Standard input is read up to the size limit and no further: a larger message,
    or input that is no mail message, is refused with exit 65 (EX_DATAERR), which
    an MTA returns to the sender instead of retrying.
    """
    limit = context.config.max_message_size
    raw = sys.stdin.buffer.read(limit + 1)
    refusal: str | None = None
    if not raw.strip():
        refusal = "no message on standard input; nothing stored"
    elif len(raw) > limit:
        refusal = (f"message refused, nothing stored: it is larger than the limit of {limit} "
                   "bytes (smtp.max_message_size)")
    elif (reason := not_mail_reason(raw)) is not None:
        refusal = f"message refused, nothing stored: not a mail message: {reason}"
    if refusal is not None:
        print(f"maild: {refusal}", file=sys.stderr)
        return EX_DATAERR
    recipients = [*args.to, *args.recipients]
    try:
        inbound_id, duplicate = _store_from_pipe(context, raw, args.sender, recipients)
    except Exception as error:  # whatever went wrong, the MTA keeps the message
        reason = " ".join(str(error).split())[:300] or type(error).__name__
        print(f"maild: temporary failure, message not stored (the MTA will retry): {reason}",
              file=sys.stderr)
        return EX_TEMPFAIL
    # The message is safe from here on: whatever happens next, exit 0.
    stored = f"{'already stored' if duplicate else 'stored'} as inbound {inbound_id}"
    if not args.process:
        print(stored)
        return EX_OK
    try:
        print(_process_now(context, inbound_id, duplicate))
    except Exception as error:  # processing is retried by the worker or `maild process`
        reason = " ".join(str(error).split())[:200] or type(error).__name__
        print(f"{stored}; processing deferred: {reason}")
    return EX_OK


def _deliver_logging(context: Context) -> None:
    """Logging for deliver's slower paths: off, unless -v asks for the configured level.

    The MTA puts deliver's output into its log and bounce notices, so no JSON lines.
    """
    from maild.log import configure_logging

    config = context.config
    configure_logging(config.log_level if context.verbose else "off", config.log_format)


def _store_from_pipe(context: Context, raw: bytes, sender: str | None,
                     recipients: list[str]) -> tuple[int, bool]:
    """Commit the message: the quick SQLite path when it applies, else the full one."""
    from maild.transports.pipe import store_sqlite

    path = context.config.sqlite_path
    if path is not None:
        quick = store_sqlite(path, raw, sender=sender, recipients=recipients)
        if quick is not None:
            return quick.inbound_id, quick.duplicate
    _deliver_logging(context)
    from maild.intake import store_inbound

    stored = store_inbound(context.runtime.engine, raw, transport="pipe",
                           envelope_sender=sender, recipients=recipients)
    return stored.inbound_id, stored.duplicate


def _process_now(context: Context, inbound_id: int, duplicate: bool) -> str:
    """Process the stored message now; the line to print (its ticket number, or why none)."""
    from sqlmodel import Session

    from maild.models import Inbound, Ticket

    _deliver_logging(context)
    runtime = context.runtime
    outcome = runtime.processor().process_now(inbound_id)
    runtime.flush_outbox()
    with Session(runtime.engine) as session:
        inbound = session.get(Inbound, inbound_id)
        assert inbound is not None
        ticket = session.get(Ticket, inbound.ticket_id) if inbound.ticket_id else None
        if ticket is not None:
            return ticket.number
        if outcome is None and duplicate:
            return f"duplicate of inbound {inbound_id} ({inbound.state})"
        return f"stored as inbound {inbound_id}: {inbound.kind or inbound.state}, no ticket"


def _lookup_for_route(context: Context) -> tuple[Lookups, Session | None]:
    from sqlalchemy import inspect
    from sqlalchemy.exc import SQLAlchemyError
    from sqlmodel import Session

    from maild.db import make_engine, schema_is_current
    from maild.log import get_logger
    from maild.tickets.correlate import NoTickets
    from maild.tickets.lookup import DatabaseTickets

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
        return DatabaseTickets(session, accounting=False), session
    except SQLAlchemyError as error:
        get_logger("maild.commands").warning("route.no_database", error=str(error).splitlines()[0])
        return NoTickets(), None


def route(context: Context, args: argparse.Namespace) -> int:
    """Print the decision for one message file; write nothing."""
    path = Path(args.file)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise CommandError(f"{path}: {error.strerror}") from error
    from maild.envelope import Envelope, identity_of
    from maild.models import utcnow
    from maild.parse import UnparseableMail, parse_mail
    from maild.pipeline import decide, unparseable_decision
    from maild.routing.load import load_rules
    from maild.runtime import ack_limits
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
    """Process every stored message that waits, then deliver what is due (or follow, see cli)."""
    runtime = context.runtime
    if args.follow:
        if args.workers:
            raise CommandError("--workers is for one pass; the daemon's processes are "
                               "processing.workers", EX_USAGE)
        from maild.routing.reload import LiveRules
        from maild.workers.follow import follow

        live = LiveRules(context.config.rules_dir)
        return follow(lambda rules: runtime.processor(rules=lambda: rules.current), live,
                      interval=context.config.worker_interval)
    with _helpers(context, args) as side_by_side:
        done = side_by_side.run()
    for failure in done.failures:
        print(f"maild: {failure}", file=sys.stderr)
    counts = done.counts
    report = runtime.flush_outbox()
    console().print(f"processed {counts['processed']}, quarantined {counts['quarantined']}, "
                    f"to retry {counts['received']}; delivered {report.sent}")
    return EX_FAILED if done.failures else EX_OK


def _helpers(context: Context, args: argparse.Namespace) -> SideBySide:
    """The helpers of a pass in `--workers` processes (default: processing.workers, at
    least one), forked now: before any thread starts, and while the mail is stored."""
    from maild.workers.side_by_side import SideBySide

    processes = args.workers or max(1, context.config.processing_workers)
    runtime = context.runtime
    return SideBySide(runtime.engine, runtime.processor, processes)
