"""Safe edits of customer files from the web: comments kept, checked, atomic, recorded.

An edit reads the customer's TOML file as it is on disk now (so a hand edit
made a minute ago is kept), changes one thing with tomlkit (comments and
layout stay), loads the whole rules directory with the changed file in a
scratch copy (the same checks as `maild rules check`), and only then replaces
the file with a rename. Who did it, and when, goes to the admin_event table.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tomlkit
from sqlalchemy import Engine
from sqlmodel import Session, col, select
from tomlkit.items import AoT, Array, Table

from maild.classify.sender import normalize_domain
from maild.log import get_logger
from maild.models import AdminEvent, utcnow
from maild.routing.load import RulesError, load_rules, valid_address

log = get_logger("maild.web.rules")
_LOCK = threading.Lock()


class EditRefused(Exception):
    """The edit would make the rules invalid, or names nothing; the text says why."""


def _customer_file(directory: Path, customer: str) -> Path:
    path = directory / "customers" / f"{customer}.toml"
    if not customer or "/" in customer or customer.startswith(".") or not path.is_file():
        raise EditRefused(f"no customer {customer}")
    return path


def _domains(document: tomlkit.TOMLDocument) -> Array:
    domains = document.get("domains")
    if domains is None:
        document["domains"] = tomlkit.array()
        domains = document["domains"]
    assert isinstance(domains, Array)
    return domains


def add_domain(document: tomlkit.TOMLDocument, domain: str) -> str:
    """Append `domain` to the customer's domains."""
    clean = normalize_domain(domain)
    if clean in [str(item) for item in _domains(document)]:
        raise EditRefused(f"{clean} is already one of the customer's domains")
    _domains(document).append(clean)
    return clean


def remove_domain(document: tomlkit.TOMLDocument, domain: str) -> str:
    """Remove `domain` from the customer's domains."""
    domains = _domains(document)
    for index, item in enumerate(domains):
        if str(item) == domain:
            del domains[index]
            return domain
    raise EditRefused(f"{domain} is not one of the customer's domains")


def add_contact(document: tomlkit.TOMLDocument, address: str, name: str, title: str) -> str:
    """Add a [[contact]] table."""
    address = address.strip().lower()
    if not valid_address(address):
        raise EditRefused(f"'{address}' is not an e-mail address")
    if not name.strip():
        raise EditRefused("a contact needs a name")
    contacts = document.get("contact")
    if contacts is None:
        contacts = tomlkit.aot()
        document.append("contact", contacts)
    assert isinstance(contacts, AoT)
    if any(str(entry.get("address", "")).lower() == address for entry in contacts):
        raise EditRefused(f"{address} is already a contact")
    entry = tomlkit.table()
    entry["address"] = address
    entry["name"] = name.strip()
    if title.strip():
        entry["title"] = title.strip()
    contacts.append(entry)
    return address


def remove_contact(document: tomlkit.TOMLDocument, address: str) -> str:
    """Remove the [[contact]] with `address`."""
    contacts = document.get("contact")
    if isinstance(contacts, AoT):
        for index, entry in enumerate(contacts):
            if isinstance(entry, Table) and str(entry.get("address", "")).lower() == \
                    address.lower():
                del contacts[index]
                if not len(contacts):
                    del document["contact"]
                return address
    raise EditRefused(f"{address} is not a contact of this customer")


def set_status(document: tomlkit.TOMLDocument, status: str) -> str:
    """Set the customer's status (active or suspended)."""
    if status not in ("active", "suspended"):
        raise EditRefused("status must be active or suspended")
    document["status"] = status
    return status


def _check(directory: Path, path: Path, text: str) -> None:
    """Load the rules with `text` in place of `path`; EditRefused with every problem."""
    with tempfile.TemporaryDirectory(prefix="maild-rules-check-") as scratch:
        copy = Path(scratch) / "rules"
        shutil.copytree(directory, copy)
        (copy / path.relative_to(directory)).write_text(text, encoding="utf-8")
        try:
            load_rules(copy)
        except RulesError as error:
            problems = "; ".join(str(problem).replace(str(copy), str(directory))
                                 for problem in error.problems)
            raise EditRefused(f"the change would break the rules: {problems}") from None


def _replace(path: Path, text: str, expected_digest: str) -> None:
    """Write `text` to `path` by rename, unless the file changed since it was read."""
    if hashlib.sha256(path.read_bytes()).hexdigest() != expected_digest:
        raise EditRefused(f"{path.name} was changed by someone else meanwhile; "
                          "nothing written, try again")
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                         suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, path.stat().st_mode & 0o777)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def edit_customer(engine: Engine, directory: Path, customer: str, action: str,
                  change: Callable[[tomlkit.TOMLDocument], str], *, actor: str) -> str:
    """Apply `change` to the customer's file if the rules stay valid; record who and what."""
    with _LOCK:
        path = _customer_file(directory, customer)
        before = path.read_bytes()
        try:
            document = tomlkit.parse(before.decode("utf-8"))
        except (UnicodeDecodeError, tomlkit.exceptions.TOMLKitError) as error:
            raise EditRefused(f"{path.name} cannot be read: {error}") from None
        value = change(document)
        text = tomlkit.dumps(document)
        _check(directory, path, text)
        _replace(path, text, hashlib.sha256(before).hexdigest())
        with Session(engine) as session:
            session.add(AdminEvent(at=utcnow(), actor=actor, action=action,
                                   target=f"customer {customer}",
                                   detail={"value": value, "file": str(path)}))
            session.commit()
    log.info("web.rules_edited", user=actor, customer=customer, action=action, value=value)
    return value


def recent_changes(engine: Engine, limit: int = 50) -> list[dict[str, Any]]:
    """The latest administrators' changes, newest first."""
    with Session(engine) as session:
        return [{"at": event.at, "actor": event.actor, "action": event.action,
                 "target": event.target, "value": event.detail.get("value")}
                for event in session.exec(select(AdminEvent)
                                          .order_by(col(AdminEvent.at).desc()).limit(limit))]
