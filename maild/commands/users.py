"""`maild user add|list|remove|passwd`: who may log in to the web, with which role and queues."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import TYPE_CHECKING, Any

from maild.commands.common import EX_OK, CommandError, Context, console, print_json, print_table

if TYPE_CHECKING:
    from sqlmodel import Session


def _session(context: Context) -> Session:
    """A database session; SQLAlchemy is imported only when a user command runs, so that
    building the command line (`maild --version`, `maild deliver`) stays light."""
    from sqlmodel import Session

    return Session(context.runtime.engine)


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise CommandError("give the password with --password-stdin when not at a terminal")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise CommandError("the passwords differ; nothing changed")
    return first


def _queues(text: str | None) -> list[str]:
    return [queue.strip() for queue in (text or "").split(",") if queue.strip()]


def add(context: Context, args: argparse.Namespace) -> int:
    """Create a web user with a role, queues and (unless --sso-only) a password."""
    from maild.web.users import UserError, add_user

    queues = _queues(args.queues)
    known = list(context.runtime.rules.queues)
    password = None if args.sso_only else _read_password(args)
    with _session(context) as session:
        try:
            add_user(session, args.name, args.role, queues, password=password,
                     known_queues=known, language=args.language)
        except UserError as error:
            raise CommandError(str(error)) from None
        session.commit()
    console().print(f"user {args.name} added ({args.role}"
                    + (f", queues {', '.join(queues)}" if queues else "") + ")", markup=False)
    return EX_OK


def list_users(context: Context, args: argparse.Namespace) -> int:
    """Every web user with role, queues and whether a password is set."""
    from maild.web.users import all_users

    with _session(context) as session:
        users = all_users(session)
    rows = [{"name": u.name, "role": u.role, "queues": list(u.queues or []),
             "language": u.language, "password": bool(u.password_hash),
             "created_at": u.created_at.isoformat()} for u in users]
    if args.json:
        print_json(rows)
        return EX_OK
    if not users:
        console().print("no web users; add one with: maild user add NAME --role admin")
        return EX_OK
    print_table(None, ["name", "role", "queues", "language", "log-in"],
                [[u.name, u.role, "(all)" if u.role == "admin" else ", ".join(u.queues or []),
                  u.language, "password" if u.password_hash else "single sign-on only"]
                 for u in users])
    return EX_OK


def remove(context: Context, args: argparse.Namespace) -> int:
    """Delete a web user and end their sessions."""
    from maild.web.users import UserError, remove_user

    with _session(context) as session:
        try:
            remove_user(session, args.name)
        except UserError as error:
            raise CommandError(str(error)) from None
        session.commit()
    console().print(f"user {args.name} removed", markup=False)
    return EX_OK


def passwd(context: Context, args: argparse.Namespace) -> int:
    """Set a new password (the user's browsers are logged out)."""
    from maild.web.users import UserError, set_password

    password = _read_password(args)
    with _session(context) as session:
        try:
            set_password(session, args.name, password)
        except UserError as error:
            raise CommandError(str(error)) from None
        session.commit()
    console().print(f"password of {args.name} changed; their sessions are ended", markup=False)
    return EX_OK


def add_parsers(sub: argparse._SubParsersAction[Any]) -> None:
    """The `maild user ...` subcommands."""
    user = sub.add_parser("user", help="web users: add, list, remove, passwd")
    user_sub = user.add_subparsers(dest="action", metavar="ACTION", required=True)
    add_parser = user_sub.add_parser(
        "add", help="add a web user", description="Add a user of the web. An agent sees the "
        "tickets of the queues named; an admin sees every queue and edits customers. The "
        "password is asked for twice at a terminal, or read from one line of standard input "
        "with --password-stdin.")
    add_parser.add_argument("name", metavar="NAME")
    add_parser.add_argument("--role", choices=["agent", "admin"], required=True)
    add_parser.add_argument("--queues", metavar="Q1,Q2", help="queue ids (agents)")
    add_parser.add_argument("--language", choices=["sv", "en"], default="sv",
                            help="the web's language for this user (default sv)")
    secret = add_parser.add_mutually_exclusive_group()
    secret.add_argument("--password-stdin", action="store_true",
                        help="read the password from standard input")
    secret.add_argument("--sso-only", action="store_true",
                        help="no password: logs in only through the single sign-on proxy")
    add_parser.set_defaults(handler=add)
    list_parser = user_sub.add_parser("list", help="web users with role and queues")
    list_parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    list_parser.set_defaults(handler=list_users)
    remove_parser = user_sub.add_parser("remove", help="delete a web user")
    remove_parser.add_argument("name", metavar="NAME")
    remove_parser.set_defaults(handler=remove)
    passwd_parser = user_sub.add_parser("passwd", help="set a user's password")
    passwd_parser.add_argument("name", metavar="NAME")
    passwd_parser.add_argument("--password-stdin", action="store_true",
                               help="read the password from standard input")
    passwd_parser.set_defaults(handler=passwd)
