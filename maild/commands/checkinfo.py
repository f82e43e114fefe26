"""`maild check-info`: which required items a message has, with the evidence found."""

from __future__ import annotations

import argparse
from pathlib import Path

from maild.checks import KNOWN_ITEMS, check_items
from maild.checks.conditions import required_items
from maild.commands.common import EX_OK, CommandError, Context, console, print_json
from maild.parse import UnparseableMail, parse_mail
from maild.routing.load import load_rules


def check_info(context: Context, args: argparse.Namespace) -> int:
    """Print each item as present or missing, with the matched text or attachment.

    With `--policy`, the items are the policy's required ones plus each
    conditional one (`required_when`) the message's case calls for.
    """
    policy = None
    if args.policy:
        rules = load_rules(context.config.rules_dir)
        policy = rules.policies.get(args.policy)
        if policy is None:
            raise CommandError(f"no policy '{args.policy}' (defined: {', '.join(rules.policies)})")
        items = list(policy.required)
    elif args.items:
        items = [item.strip() for item in args.items.split(",") if item.strip()]
    else:
        items = list(KNOWN_ITEMS)
    unknown = [item for item in items if item not in KNOWN_ITEMS]
    if unknown:
        raise CommandError(f"unknown item {', '.join(unknown)}; items are: "
                           f"{', '.join(KNOWN_ITEMS)}")
    path = Path(args.file)
    try:
        mail = parse_mail(path.read_bytes())
    except OSError as error:
        raise CommandError(f"{path}: {error.strerror}") from error
    except UnparseableMail as error:
        raise CommandError(f"{path}: {error}") from error
    because: dict[str, str] = {}
    if policy is not None:
        required = required_items(policy, mail)
        items, because = list(required.items), required.because
    results = check_items(mail, items)
    if args.json:
        print_json([{"item": r.item, "present": r.present, "evidence": r.evidence}
                    for r in results])
        return EX_OK
    out = console()
    for result in results:
        mark = "present" if result.present else "MISSING"
        evidence = f"  ({result.evidence})" if result.evidence else ""
        out.print(f"{result.item:<20} {mark}{evidence}", markup=False)
    for item, reason in because.items():
        if item not in items:
            out.print(f"{item:<20} {reason}", markup=False)
    return EX_OK
