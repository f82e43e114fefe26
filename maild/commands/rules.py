"""`maild rules check` and `maild rules show`: the admin's view of `rules/`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from maild.commands.common import (
    EX_CONFIG,
    EX_OK,
    CommandError,
    Context,
    console,
    print_json,
    print_table,
)
from maild.routing.load import RulesError, load_rules
from maild.routing.model import Policy, Rules


def check(context: Context, args: argparse.Namespace) -> int:
    """Validate a rules directory; print every problem as file:line: sentence."""
    directory = Path(args.directory) if args.directory else context.config.rules_dir
    try:
        rules = load_rules(directory)
    except RulesError as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        count = len(error.problems)
        print(f"{directory}: {count} problem{'s' if count != 1 else ''}; maild will not use "
              "these rules", file=sys.stderr)
        return EX_CONFIG
    console().print(f"{directory}: ok (version {rules.version}: {len(rules.customers)} "
                    f"customers, {len(rules.policies)} policies, {len(rules.queues)} queues, "
                    f"{len(rules.addresses)} support addresses)")
    return EX_OK


def rules_json(rules: Rules) -> dict[str, Any]:
    """The rules as data for scripts."""
    return {
        "version": rules.version,
        "directory": str(rules.directory),
        "addresses": [{"address": a.address, "queue": a.queue} for a in rules.addresses],
        "customers": [{
            "id": c.id, "name": c.name, "domains": list(c.domains), "policy": c.policy,
            "queue": c.queue, "language": c.language, "status": c.status,
            "contacts": [{"address": p.address, "name": p.name, "title": p.title}
                         for p in c.contacts],
            "queue_by_address": dict(c.queue_by_address), "timezone": c.timezone,
        } for c in rules.customers.values()],
        "queues": [{"id": q.id, "name": q.name, "team": list(q.team), "hours": q.hours,
                    "escalation": list(q.escalation), "names": dict(q.names)}
                   for q in rules.queues.values()],
        "policies": [{
            "id": p.id, "name": p.name, "hours": p.hours, "holidays": p.holidays,
            "priorities": list(p.priorities), "default_priority": p.default_priority,
            "required": list(p.required), "max_contacts": p.max_contacts,
            "targets": {level: {"response": t.response, "resolution": t.resolution,
                                "hours": t.hours, "holidays": t.holidays}
                        for level, t in p.targets.items()},
            **_sla_terms(p),
        } for p in rules.policies.values()],
        "no_agreement": {"policy": rules.no_agreement.policy,
                         "queue": rules.no_agreement.queue},
        "private_domains": len(rules.private),
    }


def _sla_terms(policy: Policy) -> dict[str, Any]:
    """The policy's action targets, conditional items, queue services and review rule."""
    return {
        "action": {level: t.action for level, t in policy.targets.items() if t.action},
        "required_when": {c.item: list(c.mentions) for c in policy.required_when},
        "queue_services": {queue: {"hours": s.hours, "holidays": s.holidays,
                                   "response": s.response, "action": s.action,
                                   "resolution": s.resolution}
                           for queue, s in policy.queue_services.items()},
        "review_required": list(policy.review_required),
    }


def show(context: Context, args: argparse.Namespace) -> int:
    """Print customers, domains, queues, policies and the served support addresses."""
    rules = load_rules(context.config.rules_dir)
    if args.json:
        print_json(rules_json(rules))
        return EX_OK
    out = console()
    out.print(f"rules {rules.directory} (version {rules.version})")
    print_table("support addresses", ["address", "queue"],
                [[a.address, a.queue] for a in rules.addresses])
    print_table("customers", ["id", "name", "domains", "policy", "queue", "lang", "status",
                              "contacts"],
                [[c.id, c.name, ", ".join(c.domains), c.policy, c.queue or "(address)",
                  c.language, c.status, len(c.contacts)] for c in rules.customers.values()])
    print_table("queues", ["id", "name", "team"],
                [[q.id, q.name, ", ".join(q.team)] for q in rules.queues.values()])
    print_table("policies", ["id", "name", "hours", "priorities", "default", "required"],
                [[p.id, p.name, p.hours, " > ".join(p.priorities), p.default_priority,
                  ", ".join(p.required)] for p in rules.policies.values()])
    out.print(f"no agreement: policy {rules.no_agreement.policy}, queue "
              f"{rules.no_agreement.queue}; private mail providers known: {len(rules.private)}")
    return EX_OK


def postfix_map(rules: Rules) -> str:
    """The served addresses as a Postfix lookup table (for virtual_mailbox_maps), with a header.

    Postfix looks up user+tag@domain first as it is, then as user@domain when
    recipient_delimiter is "+", so the plain address serves its +tag forms too.
    """
    lines = [f"# maild support addresses from {rules.directory} (rules version {rules.version}).",
             "# Made by `maild rules addresses --postfix`; run postmap on this file after "
             "each change.",
             "# With recipient_delimiter = + Postfix finds support+tag@domain here as "
             "support@domain."]
    lines += [f"{served.address}\tmaild" for served in rules.addresses]
    return "\n".join(lines) + "\n"


def addresses(context: Context, args: argparse.Namespace) -> int:
    """Print the served support addresses; with --postfix, as a Postfix recipient table."""
    rules = load_rules(context.config.rules_dir)
    if args.postfix:
        sys.stdout.write(postfix_map(rules))
    else:
        sys.stdout.write("".join(f"{served.address}\n" for served in rules.addresses))
    return EX_OK


def _synthetic_message(sender: str, to: str, subject: str, authserv_id: str | None) -> bytes:
    """A message from `sender`, authenticated (DMARC pass) by `authserv_id` when one is given."""
    from email.message import EmailMessage
    from email.policy import SMTP

    message = EmailMessage(policy=SMTP)
    if authserv_id:
        domain = sender.rpartition("@")[2]
        message["Authentication-Results"] = f"{authserv_id}; dmarc=pass header.from={domain}"
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = "<rules-explain@maild.invalid>"
    message.set_content("(maild rules explain)\n")
    return message.as_bytes()


def explain(context: Context, args: argparse.Namespace) -> int:
    """Route a sender address through the rules and show every rule tried."""
    from maild.envelope import Envelope, identity_of
    from maild.models import utcnow
    from maild.parse import parse_mail
    from maild.pipeline import decide
    from maild.routing.load import valid_address
    from maild.tickets.correlate import NoTickets
    from maild.tickets.numbering import TicketNumbering

    rules = load_rules(context.config.rules_dir)
    if not valid_address(args.address):
        raise CommandError(f"'{args.address}' is not an e-mail address")
    to = args.to or rules.default_address.address
    if rules.support_address(to) is None:
        raise CommandError(f"maild does not serve {to}; served addresses: "
                           + ", ".join(a.address for a in rules.addresses))
    # explain answers for genuine mail from the address: as the trusted MTA would pass it on
    raw = _synthetic_message(args.address, to, args.subject or "",
                             min(rules.trust.authserv_ids, default=None))
    envelope = Envelope(sender=args.address, recipients=(to,), received_at=utcnow())
    decision = decide(parse_mail(raw), envelope, rules, lookup=NoTickets(),
                      numbering=TicketNumbering(context.config.ticket_prefix),
                      identity=identity_of(rules, context.config.mail_domain))
    record = decision.to_json()
    keys = ("kind", "sender", "sender_domain", "private", "support_address", "customer",
            "customer_name", "customer_status", "policy", "queue", "priority",
            "priority_reason", "language", "route_reason", "signal", "rules_version",
            "rules_tried", "entitlement")
    result = {key: record.get(key) for key in keys}
    if args.json:
        print_json(result)
        return EX_OK
    out = console()
    out.print(f"{result['sender']} → {result['support_address']}", markup=False)
    if result["kind"] != "new":
        out.print(f"  machine mail ({result['kind']}): {result['signal']}", markup=False)
        return EX_OK
    for step in result["rules_tried"] or []:
        mark = "matched    " if step["matched"] else "not matched"
        out.print(f"  {mark}  {step['rule']}: {step['detail']}", markup=False)
    customer = result["customer"] or "(none)"
    if result["customer_name"]:
        customer += f" ({result['customer_name']}, {result['customer_status']})"
    for label, value in (("customer", customer), ("policy", result["policy"]),
                         ("queue", result["queue"]),
                         ("priority", f"{result['priority']} ({result['priority_reason']})"),
                         ("private", "yes" if result["private"] else "no"),
                         ("entitlement", "{status} ({reason})".format(
                             **(result["entitlement"] or {"status": "-", "reason": "-"}))),
                         ("language", result["language"]),
                         ("rules version", result["rules_version"])):
        out.print(f"{label}: {value}", markup=False)
    return EX_OK
