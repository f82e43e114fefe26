"""The `maild` command: parses arguments, loads the configuration, runs a subcommand.

Exit codes follow sysexits(3), so an MTA and systemd read them right:
0 done, 1 something failed, 2 wrong usage, 75 temporary failure (try again),
78 configuration or rules error. `deliver` (an MTA pipe) exits only 0, 65 or 75.

A subcommand's module is imported only when that subcommand runs, so that
`maild deliver` starts without loading the processing pipeline.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NoReturn

from maild import __version__
from maild.commands.common import EX_CONFIG, EX_TEMPFAIL, CommandError, Context
from maild.config import ConfigError, load_config

if TYPE_CHECKING:
    from maild.commands import checkinfo, team, views
    from maild.commands import intake as intake_commands
    from maild.commands import rules as rules_commands
    from maild.commands import sla as sla_commands

Handler = Callable[[Context, argparse.Namespace], int]
TICKET_STATUSES = ("new", "open", "waiting-on-customer", "answered", "closed")
OUTBOX_STATES = ("queued", "sending", "sent", "failed", "bounced", "cancelled")


class _LazyCommands:
    """A command module imported on first call of one of its handlers."""

    def __init__(self, module: str) -> None:
        self._module = module

    def __getattr__(self, name: str) -> Handler:
        def handler(context: Context, args: argparse.Namespace) -> int:
            function: Handler = getattr(importlib.import_module(self._module), name)
            return function(context, args)

        handler.__name__ = name
        return handler


if not TYPE_CHECKING:
    checkinfo = _LazyCommands("maild.commands.checkinfo")
    team = _LazyCommands("maild.commands.team")
    views = _LazyCommands("maild.commands.views")
    intake_commands = _LazyCommands("maild.commands.intake")
    rules_commands = _LazyCommands("maild.commands.rules")
    sla_commands = _LazyCommands("maild.commands.sla")


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors exit with `usage_exit_code` (2 unless set)."""

    usage_exit_code = 2

    def error(self, message: str) -> NoReturn:
        if self.usage_exit_code == EX_TEMPFAIL:  # for an MTA: one line, and try again
            self.exit(EX_TEMPFAIL, "maild: temporary failure, message not stored (the MTA "
                                   f"will retry): wrong command line: {message}\n")
        self.print_usage(sys.stderr)
        self.exit(self.usage_exit_code, f"{self.prog}: error: {message}\n")


_GLOBAL_OPTIONS_WITH_VALUE = ("--config", "--data-dir", "--rules-dir")


def _command_of(argv: Sequence[str]) -> str | None:
    """The subcommand named in `argv`: the first word that is no global option or its value."""
    words = iter(argv)
    for word in words:
        if word in _GLOBAL_OPTIONS_WITH_VALUE:
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def _add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")


def _process_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of processes, 1 or more: {text!r}")
    return value


def _add_workers(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workers", type=_process_count, metavar="N",
        help="process in N processes side by side: this one and N-1 helpers, each claiming "
             "batches (default: processing.workers, at least 1). On SQLite they take turns "
             "at the write lock and read their next batch while another writes; more than "
             "the machine's cores gains nothing")


def build_parser(*, only_deliver: bool = False) -> _Parser:
    """The argument parser of every maild subcommand (of `deliver` alone: a quicker start)."""
    parser = _Parser(
        prog="maild",
        description="maild turns support mail into tickets: it stores every message, routes it "
                    "by the sender's domain, numbers it, and acknowledges it.",
        epilog="Configuration: maild.toml in the working directory, --config FILE, or "
               "MAILD_CONFIG; any setting can be given as MAILD_<SECTION>_<KEY>.",
    )
    parser.add_argument("--version", action="version", version=f"maild {__version__}")
    parser.add_argument("--config", metavar="FILE", help="configuration file (maild.toml)")
    parser.add_argument("--data-dir", metavar="DIR", help="data directory (default ./var)")
    parser.add_argument("--rules-dir", metavar="DIR", help="rules directory (default ./rules)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log every decision (commands other than deliver log only "
                             "warnings and errors unless this is given)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    deliver = sub.add_parser(
        "deliver", help="store one message from standard input (MTA pipe)",
        description="For an MTA pipe (Postfix pipe(8), procmail, Exim): reads one message "
                    "from standard input, stores it for the daemon's worker (or `maild "
                    "process`) and prints one line: 'stored as inbound N'. Exit 0 once "
                    "stored; 75 (EX_TEMPFAIL) when it could not be stored or maild is "
                    "misconfigured, so the MTA keeps the message and tries again; 65 for an "
                    "empty input. Never any other code.",
        epilog="Postfix master.cf: argv=.../maild deliver --from=${sender} -- ${recipient}")
    # An MTA bounces mail on any exit code but 0 and 75: a wrong command line in
    # master.cf is a configuration problem, and the mail must stay queued.
    deliver.usage_exit_code = EX_TEMPFAIL
    deliver.add_argument("recipients", nargs="*", metavar="RECIPIENT",
                         help="envelope recipients (any number; put -- before them)")
    deliver.add_argument("--to", action="append", default=[], metavar="ADDRESS",
                         help="an envelope recipient (repeatable; same as RECIPIENT)")
    deliver.add_argument("--from", dest="sender", metavar="ADDRESS",
                         help="envelope sender; an empty value (--from=) is the null sender <>")
    deliver.add_argument("--process", action="store_true",
                         help="process the message at once and print its ticket number "
                              "(slower: loads the whole pipeline)")
    deliver.set_defaults(handler=intake_commands.deliver)

    if only_deliver:
        return parser

    run = sub.add_parser(
        "run", help="run the daemon: SMTP/LMTP listeners, IMAP pollers, workers",
        description="Run maild as a daemon until SIGTERM: listen for SMTP (and LMTP), fetch "
                    "from the configured IMAP mailboxes, process and acknowledge mail. With no "
                    "configuration it listens for SMTP on 127.0.0.1:2525. SIGHUP reloads the "
                    "rules; SIGTERM drains and stops. Exit codes: 0 stopped, 69 a listener "
                    "could not be opened, 75 database unavailable, 78 configuration or rules "
                    "broken.")
    run.add_argument("--smtp", action="append", metavar="HOST:PORT",
                     help="listen for SMTP here instead of the configured addresses "
                          "(repeat for several; 'off' for none)")
    run.add_argument("--lmtp", action="append", metavar="HOST:PORT|unix:PATH",
                     help="listen for LMTP here (repeat for several)")
    run.add_argument("--no-imap", action="store_true", help="do not fetch from IMAP")
    run.set_defaults(handler=daemon_command)

    ingest = sub.add_parser("ingest", help="store and process .eml files, mbox files, Maildirs",
                            description="Store every message found under PATH (.eml files, "
                            "directories of them, mbox files, Maildir folders), then process "
                            "them and deliver the acknowledgements. Exits 1 if any message "
                            "could not be stored.")
    ingest.add_argument("paths", nargs="+", metavar="PATH")
    ingest.add_argument("--to", action="append", default=[], metavar="ADDRESS",
                        help="support address the messages were sent to (default: from headers)")
    ingest.add_argument("--no-process", action="store_true",
                        help="only store; process later with `maild process`")
    _add_workers(ingest)
    ingest.set_defaults(handler=intake_commands.ingest)

    route = sub.add_parser("route", help="show the decision for one message (dry run)",
                           description="Print the full decision maild would make for FILE: "
                           "kind, sender, customer, policy, queue, priority, acknowledgement. "
                           "Writes nothing.")
    route.add_argument("file", metavar="FILE")
    route.add_argument("--to", action="append", default=[], metavar="ADDRESS",
                       help="envelope recipient")
    route.add_argument("--from", dest="sender", metavar="ADDRESS", help="envelope sender")
    _add_json(route)
    route.set_defaults(handler=intake_commands.route)

    check_info = sub.add_parser(
        "check-info", help="which required information a message has, with evidence",
        description="Run the required-information detectors on FILE and print each item as "
                    "present (with the matched text or attachment) or missing.")
    check_info.add_argument("file", metavar="FILE.eml")
    check_info.add_argument("--items", metavar="LIST",
                            help="comma-separated: description,screenshot,occurred_at,browser,"
                                 "os,campaign_number,company,contact_name_title,contact_details")
    check_info.add_argument("--policy", metavar="NAME", help="the items a policy requires")
    _add_json(check_info)
    check_info.set_defaults(handler=checkinfo.check_info, needs_database=False)

    process = sub.add_parser(
        "process", help="process stored messages that wait",
        description="Process every stored message that waits, then deliver what is due. "
        "With --follow, keep processing as messages are stored, until SIGTERM: the daemon "
        "runs its `processing.workers` processes this way.")
    process.add_argument("--follow", action="store_true",
                         help="keep processing whenever woken (a byte on standard input) or "
                              "every daemon.worker_interval; stop at SIGTERM or when standard "
                              "input closes; one JSON line of counts per pass on stdout")
    _add_workers(process)
    process.set_defaults(handler=intake_commands.process)

    queues = sub.add_parser("queues", help="each queue: new, open, waiting, overdue, due today",
                            description="One line per queue with the number of tickets that "
                            "are new, open, waiting on the customer, answered, overdue (the "
                            "response deadline passed without an answer) and due today.")
    _add_json(queues)
    queues.set_defaults(handler=team.queues)

    tickets = sub.add_parser("tickets", help="list tickets (filter, sort)",
                             description="The tickets with priority, response deadline (red "
                             "when overdue, yellow within two hours), customer, a mark for "
                             "private senders, and missing information.")
    tickets.add_argument("--queue", metavar="Q", help="only this queue")
    tickets.add_argument("--status", choices=list(TICKET_STATUSES), help="only this status")
    tickets.add_argument("--customer", metavar="C", help="only this customer id")
    tickets.add_argument("--overdue", action="store_true", help="only overdue tickets")
    tickets.add_argument("--sort", choices=["due", "priority", "received"], default="received",
                         help="order: deadline first, most urgent first, or newest first")
    tickets.add_argument("--limit", type=int, default=200,
                         help="at most this many (default 200; the output says how many match)")
    tickets.add_argument("--all", action="store_true", help="every matching ticket, no limit")
    _add_json(tickets)
    tickets.set_defaults(handler=team.tickets)

    ticket = sub.add_parser("ticket", help="work with one ticket")
    ticket_sub = ticket.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = ticket_sub.add_parser("show", help="a ticket, its messages and its decision record")
    show.add_argument("number", metavar="NUMBER")
    _add_json(show)
    show.set_defaults(handler=views.ticket_show)

    for name, helptext, handler in (("close", "close a ticket", team.close),
                                    ("reopen", "open a closed ticket again", team.reopen)):
        action = ticket_sub.add_parser(name, help=helptext)
        action.add_argument("number", metavar="NUMBER")
        action.add_argument("--reason", metavar="TEXT", help="recorded on the ticket")
        action.add_argument("--by", metavar="NAME", help="who (default: your user name)")
        if name == "close":
            action.add_argument("--review", metavar="TEXT",
                                help="the post-incident review, recorded in the trail; "
                                "required where the policy's review_required names the "
                                "ticket's priority")
        _add_json(action)
        action.set_defaults(handler=handler)
    assign = ticket_sub.add_parser("assign", help="give a ticket to someone")
    assign.add_argument("number", metavar="NUMBER")
    assign.add_argument("who", metavar="WHO", help="a name or address")
    assign.add_argument("--by", metavar="NAME", help="who assigns (default: your user name)")
    _add_json(assign)
    assign.set_defaults(handler=team.assign)
    prio = ticket_sub.add_parser(
        "priority", help="change a ticket's priority (deadlines follow)",
        description="Give the ticket another priority of its policy (for example SoftOne: a "
        "P1 or P2 case with a workaround becomes P3). The response and resolution deadlines "
        "are computed again from when the ticket arrived; the change, the reason and the new "
        "deadlines are kept on the ticket's trail (ticket show). A ticket without a "
        "commitment keeps none.")
    prio.add_argument("number", metavar="NUMBER")
    prio.add_argument("level", metavar="LEVEL", help="a priority of the ticket's policy, "
                      "such as P3 or High (case does not matter)")
    prio.add_argument("--reason", metavar="TEXT", required=True,
                      help="why (required; recorded on the ticket)")
    prio.add_argument("--by", metavar="NAME", help="who (default: your user name)")
    _add_json(prio)
    prio.set_defaults(handler=team.priority)
    note = ticket_sub.add_parser("note", help="add an internal note to a ticket")
    note.add_argument("number", metavar="NUMBER")
    note.add_argument("text", metavar="TEXT")
    note.add_argument("--by", metavar="NAME", help="who (default: your user name)")
    _add_json(note)
    note.set_defaults(handler=team.note)
    entitle = ticket_sub.add_parser(
        "entitle", help="give a ticket the agreement's commitment maild withheld",
        description="For a ticket whose sender maild could not entitle (not authenticated, "
        "or not a named contact of the customer): after checking the sender, give it the "
        "priority the mail asked for and deadlines computed from the ticket's start. "
        "Recorded as an event.")
    entitle.add_argument("number", metavar="NUMBER")
    entitle.add_argument("--reason", metavar="TEXT", required=True,
                         help="why the sender is entitled (recorded on the ticket)")
    entitle.add_argument("--by", metavar="NAME", help="who (default: your user name)")
    _add_json(entitle)
    entitle.set_defaults(handler=team.entitle)
    reply = ticket_sub.add_parser(
        "reply", help="send a reply to the ticket's requester (threaded, through the outbox)",
        description="Queue a reply to the ticket's requester with the ticket tag and threading "
        "headers; the first reply stops the first-response clock. Give the text, or --file.")
    reply.add_argument("number", metavar="NUMBER")
    reply_text = reply.add_mutually_exclusive_group(required=True)
    reply_text.add_argument("text", metavar="TEXT", nargs="?", default=None)
    reply_text.add_argument("--file", metavar="PATH", help="read the text from PATH (- for stdin)")
    reply.add_argument("--by", metavar="NAME", help="who (default: your user name)")
    _add_json(reply)
    reply.set_defaults(handler=team.reply)
    respond = ticket_sub.add_parser("respond", help="record the first response (answered "
                                    "outside maild)")
    respond.add_argument("number", metavar="NUMBER")
    respond.add_argument("--at", metavar="ISO", help="when (default: now), with UTC offset")
    respond.add_argument("--by", metavar="NAME", help="who (default: your user name)")
    respond.set_defaults(handler=sla_commands.ticket_respond)

    sla = sub.add_parser("sla", help="response deadlines, breaches and penalties")
    sla_sub = sla.add_subparsers(dest="action", metavar="ACTION", required=True)
    due = sla_sub.add_parser(
        "due", help="when a response is due", description="Print the deadline as an ISO 8601 "
        "time with its UTC offset, or 'none'. Use a policy from rules/ (--policy, --priority) "
        "or a calendar given inline (--hours, --holidays, --tz, --target). --received "
        "without an offset is read in the calendar's time zone.")
    due.add_argument("--policy", metavar="NAME")
    due.add_argument("--priority", metavar="P", help="default: the policy's default")
    which = due.add_mutually_exclusive_group()
    which.add_argument("--resolution", action="store_true", help="the resolution target instead")
    which.add_argument("--action", action="store_true",
                       help="the action target (work started) instead")
    due.add_argument("--queue", metavar="Q", help="the queue, for a policy's [queue.Q] terms")
    due.add_argument("--hours", metavar="TEXT", help="e.g. 'mon-fri 09:00-17:00' or '24/7'")
    due.add_argument("--holidays", metavar="SPEC", help="e.g. SE or SE+de_facto")
    due.add_argument("--tz", default="Europe/Stockholm", metavar="ZONE")
    due.add_argument("--target", metavar="T", help="30m, 2h, 1bd, none ...")
    due.add_argument("--received", metavar="ISO", help="default: now")
    due.set_defaults(handler=sla_commands.sla_due, needs_database=False)
    report = sla_sub.add_parser(
        "report", help="per customer: tickets, breaches, penalty",
        description="One month of the policy's local calendar per customer: cases received, "
        "answered in time, response targets missed in the month (a breach belongs to the "
        "month its deadline passed), resolution targets missed, and the fee reduction "
        "(in money when the policy's penalty names monthly_fee, the cap applied). Every "
        "customer is listed, also in a month without tickets.")
    report.add_argument("--month", required=True, metavar="YYYY-MM")
    report.add_argument("--customer", metavar="ID")
    report.add_argument("--format", choices=["table", "csv", "json"], default="table")
    report.add_argument("--uptime", action="append", default=[], metavar="CUSTOMER=PERCENT",
                        help="the month's measured uptime, for uptime-based penalties")
    report.add_argument("--downtime", action="append", default=[],
                        metavar="CUSTOMER=MINUTES",
                        help="the month's downtime in whole minutes, counted against a 30-day "
                        "month (instead of --uptime)")
    report.set_defaults(handler=sla_commands.sla_report)
    check = sla_sub.add_parser("check", help="run the breach monitor once")
    check.add_argument("--now", metavar="ISO", help="the moment to check at (default: now)")
    check.set_defaults(handler=sla_commands.sla_check)

    inbound = sub.add_parser("inbound", help="stored raw messages")
    inbound_sub = inbound.add_subparsers(dest="action", metavar="ACTION", required=True)
    inbound_list = inbound_sub.add_parser("list", help="stored messages with their state")
    inbound_list.add_argument("--state", choices=["received", "processing", "processed",
                                                  "quarantined"])
    inbound_list.add_argument("--limit", type=int, default=200,
                              help="at most this many (default 200; the output says how many "
                              "there are)")
    inbound_list.add_argument("--all", action="store_true", help="every stored message")
    _add_json(inbound_list)
    inbound_list.set_defaults(handler=views.inbound_list)
    inbound_show = inbound_sub.add_parser("show", help="one stored message and its decision")
    inbound_show.add_argument("id", type=int)
    _add_json(inbound_show)
    inbound_show.set_defaults(handler=views.inbound_show)
    inbound_raw = inbound_sub.add_parser("raw", help="write the raw bytes exactly as received")
    inbound_raw.add_argument("id", type=int)
    inbound_raw.set_defaults(handler=views.inbound_raw)

    quarantine = sub.add_parser("quarantine", help="messages kept aside, and retrying them")
    quarantine_sub = quarantine.add_subparsers(dest="action", metavar="ACTION")
    quarantine.set_defaults(handler=views.quarantine_list, json=False)
    q_list = quarantine_sub.add_parser("list", help="quarantined messages with the reason")
    _add_json(q_list)
    q_list.set_defaults(handler=views.quarantine_list)
    q_show = quarantine_sub.add_parser("show", help="one quarantined message and its error")
    q_show.add_argument("id", type=int)
    _add_json(q_show)
    q_show.set_defaults(handler=views.inbound_show)
    q_retry = quarantine_sub.add_parser("retry", help="process quarantined messages again")
    q_retry.add_argument("ids", type=int, nargs="*", metavar="ID")
    q_retry.add_argument("--all", action="store_true", help="every quarantined message")
    q_retry.set_defaults(handler=views.quarantine_retry)

    outbox = sub.add_parser("outbox", help="outgoing mail: list, show, retry, cancel, flush")
    outbox_sub = outbox.add_subparsers(dest="action", metavar="ACTION")
    outbox.set_defaults(handler=views.outbox_list, json=False, state=None)
    o_list = outbox_sub.add_parser("list", help="outgoing messages with their state")
    o_list.add_argument("--state", choices=list(OUTBOX_STATES))
    _add_json(o_list)
    o_list.set_defaults(handler=views.outbox_list)
    o_show = outbox_sub.add_parser("show", help="one outgoing message: headers and text, "
                                   "decoded (--raw: the bytes as sent)")
    o_show.add_argument("id", type=int)
    o_show.add_argument("--raw", action="store_true", help="write the composed bytes as sent")
    o_show.set_defaults(handler=views.outbox_show)
    o_retry = outbox_sub.add_parser(
        "retry", help="queue a failed or cancelled message again",
        description="Queue outbox item ID again with a fresh lifetime and try to deliver what "
                    "is due now. A sent message, or one being delivered right now, is refused: "
                    "retrying it would send it twice.")
    o_retry.add_argument("id", type=int, metavar="ID")
    o_retry.set_defaults(handler=views.outbox_retry)
    o_cancel = outbox_sub.add_parser(
        "cancel", help="withdraw a message that has not been sent",
        description="Withdraw outbox item ID so that it is never sent: a queued message, one "
                    "waiting for a retry, or a failed one. A message that was sent cannot be "
                    "called back and is refused, as is one being delivered right now (try "
                    "again in a moment). `maild outbox retry ID` queues a cancelled message "
                    "again.")
    o_cancel.add_argument("id", type=int, metavar="ID")
    o_cancel.add_argument("--reason", metavar="TEXT",
                          help="why, kept in the item's history (maild outbox show ID)")
    o_cancel.set_defaults(handler=views.outbox_cancel)
    o_flush = outbox_sub.add_parser(
        "flush", help="deliver what is due now",
        description="Deliver the queued messages that are due, up to outbox.batch_size in one "
                    "pass; what is left over is said, and goes in the next pass.")
    o_flush.set_defaults(handler=views.outbox_flush)

    rules = sub.add_parser("rules", help="check and show the routing rules")
    rules_sub = rules.add_subparsers(dest="action", metavar="ACTION", required=True)
    rules_check = rules_sub.add_parser("check", help="validate a rules directory (exit 0 or 78)")
    rules_check.add_argument("directory", nargs="?", metavar="DIR")
    rules_check.set_defaults(handler=rules_commands.check, needs_database=False)
    show_rules = rules_sub.add_parser("show", help="customers, domains, queues, policies, "
                                      "served addresses")
    _add_json(show_rules)
    show_rules.set_defaults(handler=rules_commands.show, needs_database=False)
    addresses = rules_sub.add_parser(
        "addresses", help="the served support addresses (a Postfix recipient map with --postfix)",
        description="Print the support addresses maild serves, one per line. With --postfix, "
                    "print them as a Postfix lookup table for virtual_mailbox_maps, so that "
                    "Postfix refuses mail to any other address at RCPT. With "
                    "recipient_delimiter = + Postfix finds support+tag@domain under "
                    "support@domain, as maild does.")
    addresses.add_argument("--postfix", action="store_true",
                           help="a Postfix table: address, tab, 'maild' (for postmap)")
    addresses.set_defaults(handler=rules_commands.addresses, needs_database=False)
    explain = rules_sub.add_parser(
        "explain", help="show how mail from an address is routed, rule by rule",
        description="Route a message from ADDRESS through the rules and print the customer, "
                    "policy, queue, priority, private flag and entitlement, with every rule "
                    "tried in order, for genuine mail from ADDRESS (as if the trusted MTA had "
                    "authenticated it).")
    explain.add_argument("address", metavar="ADDRESS", help="the sender's e-mail address")
    explain.add_argument("--to", metavar="SUPPORT_ADDRESS",
                         help="the support address written to (default: the first served one)")
    explain.add_argument("--subject", metavar="TEXT", default="",
                         help="a subject, for rules that read it")
    _add_json(explain)
    explain.set_defaults(handler=rules_commands.explain, needs_database=False)
    from maild.commands.users import add_parsers as add_user_parsers

    add_user_parsers(sub)
    return parser


def daemon_command(context: Context, args: argparse.Namespace) -> int:
    """`maild run`: the daemon, with command-line overrides of the listeners."""
    from dataclasses import replace

    from maild.config import ListenAddress
    from maild.daemon import run
    from maild.routing.reload import LiveRules

    config = context.config

    def listeners(values: list[str] | None, current: tuple[ListenAddress, ...],
                  key: str) -> tuple[ListenAddress, ...]:
        if values is None:
            return current
        if values == ["off"]:
            return ()
        overridden = load_config(args.config, overrides={key: ",".join(values)})
        return overridden.smtp_listen if key == "smtp.listen" else overridden.lmtp_listen

    try:
        config = replace(
            config,
            smtp_listen=listeners(args.smtp, config.smtp_listen, "smtp.listen"),
            lmtp_listen=listeners(args.lmtp, config.lmtp_listen, "lmtp.listen"),
            imap=() if args.no_imap else config.imap,
        )
    except ConfigError as error:
        raise CommandError(f"configuration error: {error}", code=EX_CONFIG) from error
    return run(config, lambda: LiveRules(config.rules_dir))


def _rules_problems(error: Exception) -> list[object] | None:
    """The problems of a `RulesError`, or None for any other exception."""
    if "maild.routing.load" not in sys.modules:
        return None  # the rules were never loaded, so this cannot be a rules error
    from maild.routing.load import RulesError

    return list(error.problems) if isinstance(error, RulesError) else None


def _is_storage_error(error: Exception) -> bool:
    if "maild.db" not in sys.modules:
        return False
    from maild.db import StorageError

    return isinstance(error, StorageError)


def _deliver(args: argparse.Namespace) -> int:
    """`maild deliver` for an MTA: exits 0, 65 or 75 only, with one line of output.

    Every configuration or storage problem is 75, so the MTA keeps the message
    and tries again instead of bouncing it; no traceback reaches a bounce notice.
    Log events go to standard error only with -v (the MTA logs what deliver prints);
    the handler configures logging only on the paths that load the logging library.
    """
    try:
        config = load_config(args.config, overrides={"data_dir": args.data_dir,
                                                     "rules_dir": args.rules_dir})
    except ConfigError as error:
        print(f"maild: configuration error, message not stored (the MTA will retry): {error}",
              file=sys.stderr)
        return EX_TEMPFAIL
    try:
        code: int = args.handler(Context(config, verbose=args.verbose), args)
        return code
    except Exception as error:  # the MTA must never see a traceback or exit 1
        reason = " ".join(str(error).split())[:300] or type(error).__name__
        print(f"maild: temporary failure, message not stored (the MTA will retry): {reason}",
              file=sys.stderr)
        return EX_TEMPFAIL


def main(argv: Sequence[str] | None = None) -> int:
    """Run `maild` with `argv`; returns the exit code."""
    is_deliver = _command_of(sys.argv[1:] if argv is None else argv) == "deliver"
    parser = build_parser(only_deliver=is_deliver)
    if is_deliver:
        parser.usage_exit_code = EX_TEMPFAIL  # also for unknown options after `deliver`
    args = parser.parse_args(argv)
    if args.command == "deliver":
        return _deliver(args)
    from maild.allocator import return_large_blocks

    return_large_blocks()  # the daemon and its workers: a large mail's copies are given back
    try:
        config = load_config(args.config, overrides={"data_dir": args.data_dir,
                                                     "rules_dir": args.rules_dir})
    except ConfigError as error:
        print(f"maild: configuration error: {error}", file=sys.stderr)
        return EX_CONFIG
    from maild.log import configure_logging

    level = config.log_level
    long_running = args.command == "run" or getattr(args, "follow", False)
    if not args.verbose and not long_running and level in ("debug", "info"):
        level = "warning"
    configure_logging(level, config.log_format, once=args.command == "run")
    context = Context(config)
    handler: Handler = args.handler
    try:
        return handler(context, args)
    except CommandError as error:
        print(f"maild: {error}", file=sys.stderr)
        return error.code
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        problems = _rules_problems(error)
        if problems is not None:
            print(f"maild: the rules in {config.rules_dir} have problems:", file=sys.stderr)
            for problem in problems:
                print(f"  {problem}", file=sys.stderr)
            return EX_CONFIG
        if _is_storage_error(error):
            print(f"maild: {error}", file=sys.stderr)
            return EX_TEMPFAIL
        raise


if __name__ == "__main__":
    sys.exit(main())
