"""maild's configuration: `maild.toml` plus `MAILD_*` environment, validated once.

Every setting has a default that works with no file at all. A setting given in
the environment wins over the file. A bad value raises `ConfigError`, whose
text names the file (or variable), the key and what was expected.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONFIG_ENV = "MAILD_CONFIG"
DEFAULT_CONFIG_FILE = "maild.toml"


class ConfigError(Exception):
    """A configuration value is missing, unknown or of the wrong form."""


class _Invalid(ValueError):
    """A value is wrong in a way more precise than the setting's general expectation."""


@dataclass(frozen=True)
class ListenAddress:
    """Where a listener accepts connections: a TCP host and port, or a Unix socket path."""

    host: str | None
    port: int | None
    path: Path | None = None

    def __str__(self) -> str:
        if self.path is not None:
            return f"unix:{self.path}"
        host = f"[{self.host}]" if self.host and ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class UnixSocketAccess:
    """Who may connect to maild's LMTP Unix socket: its owner, group and mode."""

    owner: str | None = None           # a user name or number; None: maild's own user
    group: str | None = None           # a group name or number; None: maild's own group
    mode: int = 0o660


@dataclass(frozen=True)
class RelaySettings:
    """The SMTP relay the outbox delivers through."""

    host: str
    port: int
    security: str                      # "none", "starttls" or "tls"
    user: str | None = None
    password: str | None = None
    password_file: Path | None = None
    ca_file: Path | None = None
    timeout: float = 60.0


@dataclass(frozen=True)
class ImapAccount:
    """One mailbox maild fetches from, and what it does with a message once stored."""

    name: str
    host: str
    port: int
    security: str                      # "tls", "starttls" or "none"
    user: str
    password: str | None = None
    password_file: Path | None = None
    oauth2_token_file: Path | None = None
    oauth2_token_command: str | None = None
    folders: tuple[str, ...] = ("INBOX",)
    after: str = "seen"                # "seen", "move" or "delete"
    move_to: str | None = None
    poll_interval: float = 60.0
    batch_size: int = 50
    recipient: str | None = None
    ca_file: Path | None = None


@dataclass(frozen=True)
class Config:
    """The validated settings of one maild instance."""

    data_dir: Path
    database_url: str
    rules_dir: Path
    outbox_transport: str
    outbox_maildir: Path
    mail_domain: str | None
    ticket_prefix: str
    max_attempts: int
    lease_seconds: int
    log_level: str
    log_format: str
    source: str
    smtp_listen: tuple[ListenAddress, ...] = ()
    lmtp_listen: tuple[ListenAddress, ...] = ()
    lmtp_socket: UnixSocketAccess | None = None
    smtp_hostname: str | None = None
    max_message_size: int = 26_214_400
    smtp_timeout: int = 300
    max_connections: int = 500
    max_connections_per_client: int = 50
    tls_cert: Path | None = None
    tls_key: Path | None = None
    drain_seconds: int = 30
    worker_interval: float = 5.0
    outbox_interval: float = 30.0
    imap: tuple[ImapAccount, ...] = ()
    relay: RelaySettings | None = None
    outbox_lifetime_hours: float = 48.0
    outbox_lease_seconds: int = 25
    outbox_batch_size: int = 500
    processing_batch_size: int = 32
    processing_workers: int = 0
    ack_max_per_hour: int = 5
    ack_max_per_day: int = 20
    ack_domain_max_per_hour: int = 30
    ack_domain_max_per_day: int = 100
    ack_duplicate_window_hours: float = 24.0
    bounce_suppression_days: int = 60
    reopen_days: int = 14
    http_listen: ListenAddress | None = None
    http_sso_header: str | None = None
    http_trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")
    http_session_hours: float = 12.0

    @property
    def sqlite_path(self) -> Path | None:
        """The database file when the database is SQLite, else None."""
        prefix = "sqlite:///"
        if self.database_url.startswith(prefix):
            return Path(self.database_url[len(prefix):])
        return None


@dataclass(frozen=True)
class _Setting:
    key: str
    parse: Callable[[Any], Any]
    expected: str


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError
    return value.strip()


def _optional_text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return _text(value)


def _int_at_least(minimum: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool):
            raise TypeError
        number = int(value)
        if number < minimum:
            raise ValueError
        return number

    return parse


_positive_int = _int_at_least(1)
_non_negative_int = _int_at_least(0)


def _choice(*choices: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = _text(value).lower()
        if text not in choices:
            raise ValueError
        return text

    return parse


def _listen(value: Any) -> tuple[ListenAddress, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise TypeError
    addresses = []
    for item in items:
        if not isinstance(item, str):
            raise TypeError
        text = item.strip()
        if not text:
            continue
        if text.startswith("unix:"):
            addresses.append(ListenAddress(None, None, Path(text[5:])))
            continue
        host, _, port = text.rpartition(":")
        host = host.strip("[]")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise _Invalid(f"HOST:PORT or unix:PATH, got {text!r}")
        addresses.append(ListenAddress(host, int(port)))
    return tuple(addresses)


def _account_name(value: Any) -> str | None:
    """A user or group name (letters, digits, . _ -) or number, or None."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    text = _optional_text(value)
    if text is not None and not all(c.isalnum() or c in "._-" for c in text):
        raise ValueError
    return text


def _http_listen(value: Any) -> ListenAddress | None:
    text = _optional_text(value)
    if text is None or text.lower() == "off":
        return None
    addresses = _listen(text)
    if len(addresses) != 1 or addresses[0].path is not None:
        raise _Invalid(f"one HOST:PORT such as 127.0.0.1:8025, or \"off\", got {text!r}")
    return addresses[0]


def _addresses_list(value: Any) -> tuple[str, ...]:
    import ipaddress

    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise TypeError
    found = []
    for item in items:
        try:
            found.append(str(ipaddress.ip_address(str(item).strip())))
        except ValueError:
            raise _Invalid(f"a list of IP addresses, got {item!r}") from None
    return tuple(found)


def _header_name(value: Any) -> str | None:
    text = _optional_text(value)
    if text is not None and not all(ch.isalnum() or ch == "-" for ch in text):
        raise ValueError
    return text


def _file_mode(value: Any) -> int:
    """A permission mode written in octal, such as "0660" or "660" (or TOML's 0o660)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0o777:
        return value
    text = _text(value) if isinstance(value, str) else None
    if text is None or not text.isdigit() or any(c in "89" for c in text):
        raise ValueError
    mode = int(text, 8)
    if mode > 0o777:
        raise ValueError
    return mode


def _optional_path(value: Any) -> Path | None:
    text = _optional_text(value)
    return Path(text) if text else None


def _seconds(value: Any) -> float:
    if isinstance(value, bool):
        raise TypeError
    number = float(value)
    if number <= 0:
        raise ValueError
    return number


def _imap_accounts(value: Any) -> tuple[ImapAccount, ...]:
    if not isinstance(value, list):
        raise _Invalid("[[imap]] tables, one per mailbox")
    accounts: list[ImapAccount] = []
    names: set[str] = set()
    for index, entry in enumerate(value):
        accounts.append(_imap_account(index, entry))
        if accounts[-1].name in names:
            raise _Invalid(f"a unique name per account; imap[{index}] repeats "
                           f"{accounts[-1].name!r}")
        names.add(accounts[-1].name)
    return tuple(accounts)


_IMAP_KEYS = ("name", "host", "port", "security", "user", "password", "password_file",
              "oauth2_token_file", "oauth2_token_command", "folders", "after", "move_to",
              "poll_interval", "batch_size", "recipient", "ca_file")


def _imap_account(index: int, entry: Any) -> ImapAccount:
    where = f"imap[{index}]"
    if not isinstance(entry, dict):
        raise _Invalid(f"{where} to be a table")
    for key in entry:
        if key not in _IMAP_KEYS:
            raise _Invalid(f"{where}: no unknown key {key!r} (known: {', '.join(_IMAP_KEYS)})")

    def need(key: str, parse: Callable[[Any], Any], expected: str, default: Any = None) -> Any:
        if key not in entry:
            if default is None:
                raise _Invalid(f"{where}.{key}: {expected} (missing)")
            return parse(default)
        try:
            return parse(entry[key])
        except (ValueError, TypeError):
            raise _Invalid(f"{where}.{key}: {expected}, got {entry[key]!r}") from None

    security = need("security", _choice("tls", "starttls", "none"),
                    "one of: tls, starttls, none", "tls")
    after = need("after", _choice("seen", "move", "delete"), "one of: seen, move, delete",
                 "seen")
    account = ImapAccount(
        name=need("name", _text, "a name for the account", f"imap{index}"),
        host=need("host", _text, "the server's host name"),
        port=need("port", _positive_int, "a port number", 993 if security == "tls" else 143),
        security=security,
        user=need("user", _text, "the login name"),
        password=need("password", _optional_text, "the password as text", ""),
        password_file=need("password_file", _optional_path, "a file path", ""),
        oauth2_token_file=need("oauth2_token_file", _optional_path, "a file path", ""),
        oauth2_token_command=need("oauth2_token_command", _optional_text, "a command", ""),
        folders=tuple(need("folders", _string_list, "a list of folder names", ["INBOX"])),
        after=after,
        move_to=need("move_to", _optional_text, "a folder name", ""),
        poll_interval=need("poll_interval", _seconds, "seconds, more than 0", 60.0),
        batch_size=need("batch_size", _positive_int, "a whole number of at least 1", 50),
        recipient=need("recipient", _optional_text, "a support address", ""),
        ca_file=need("ca_file", _optional_path, "a file path", ""),
    )
    secrets = [account.password, account.password_file, account.oauth2_token_file,
               account.oauth2_token_command]
    if sum(1 for secret in secrets if secret) != 1:
        raise _Invalid(f"{where}: exactly one of password, password_file, oauth2_token_file, "
                       "oauth2_token_command")
    if after == "move" and not account.move_to:
        raise _Invalid(f"{where}.move_to: the folder to move stored messages to "
                       "(after = \"move\")")
    return account


def _string_list(value: Any) -> list[str]:
    if not isinstance(value, list) or not value or not all(
            isinstance(item, str) and item.strip() for item in value):
        raise ValueError
    return [item.strip() for item in value]


def _ticket_prefix(value: Any) -> str:
    text = _text(value).upper()
    if not text.isascii() or not text.isalpha() or len(text) > 6:
        raise ValueError
    return text


_SETTINGS: tuple[_Setting, ...] = (
    _Setting("data_dir", _text, "a directory path"),
    _Setting("database_url", _text, "a database URL such as sqlite:///var/maild.db "
             "or postgresql+psycopg://user@host/db"),
    _Setting("rules_dir", _text, "a directory path"),
    _Setting("outbox.transport", _choice("maildir", "smtp"), "one of: maildir, smtp"),
    _Setting("outbox.relay_host", _optional_text, "the relay's host name"),
    _Setting("outbox.relay_port", _positive_int, "a port number"),
    _Setting("outbox.relay_security", _choice("none", "starttls", "tls"),
             "one of: none, starttls, tls"),
    _Setting("outbox.relay_user", _optional_text, "a user name"),
    _Setting("outbox.relay_password", _optional_text, "a password"),
    _Setting("outbox.relay_password_file", _optional_path, "a file path"),
    _Setting("outbox.relay_ca_file", _optional_path, "a file path (PEM)"),
    _Setting("outbox.lifetime_hours", _seconds, "hours, more than 0"),
    _Setting("outbox.lease_seconds", _positive_int, "a whole number of seconds, at least 1"),
    _Setting("outbox.batch_size", _positive_int, "a whole number of at least 1"),
    _Setting("ack.max_per_hour", _positive_int, "a whole number of at least 1"),
    _Setting("ack.max_per_day", _positive_int, "a whole number of at least 1"),
    _Setting("ack.domain_max_per_hour", _positive_int, "a whole number of at least 1"),
    _Setting("ack.domain_max_per_day", _positive_int, "a whole number of at least 1"),
    _Setting("ack.duplicate_window_hours", _seconds, "hours, more than 0"),
    _Setting("ack.bounce_suppression_days", _positive_int, "a whole number of days"),
    _Setting("outbox.maildir", _text, "a directory path"),
    _Setting("mail.domain", _optional_text, "a domain name such as example.se"),
    _Setting("tickets.prefix", _ticket_prefix, "one to six letters, such as MD"),
    _Setting("tickets.reopen_days", _positive_int, "a whole number of days, at least 1"),
    _Setting("processing.max_attempts", _positive_int, "a whole number of at least 1"),
    _Setting("processing.lease_seconds", _positive_int, "a whole number of seconds, at least 1"),
    _Setting("processing.batch_size", _positive_int, "a whole number of at least 1"),
    _Setting("processing.workers", _non_negative_int, "a whole number, 0 or more"),
    _Setting("log.level", _choice("debug", "info", "warning", "error"),
             "one of: debug, info, warning, error"),
    _Setting("log.format", _choice("auto", "console", "json"), "one of: auto, console, json"),
    _Setting("smtp.listen", _listen, "a list of HOST:PORT or unix:PATH"),
    _Setting("smtp.hostname", _optional_text, "the host name maild greets with"),
    _Setting("smtp.max_message_size", _positive_int, "a size in bytes, at least 1"),
    _Setting("smtp.timeout", _positive_int, "seconds, at least 1"),
    _Setting("smtp.max_connections", _positive_int, "a number of connections, at least 1"),
    _Setting("smtp.max_connections_per_client", _positive_int,
             "a number of connections, at least 1"),
    _Setting("smtp.tls_cert", _optional_path, "the certificate file (PEM)"),
    _Setting("smtp.tls_key", _optional_path, "the private key file (PEM)"),
    _Setting("lmtp.listen", _listen, "a list of HOST:PORT or unix:PATH"),
    _Setting("lmtp.socket_owner", _account_name, "a user name or number"),
    _Setting("lmtp.socket_group", _account_name, "a group name or number"),
    _Setting("lmtp.socket_mode", _file_mode, "an octal permission mode such as \"0660\""),
    _Setting("daemon.drain_seconds", _positive_int, "seconds, at least 1"),
    _Setting("daemon.worker_interval", _seconds, "seconds, more than 0"),
    _Setting("daemon.outbox_interval", _seconds, "seconds, more than 0"),
    _Setting("imap", _imap_accounts, "[[imap]] tables"),
    _Setting("http.listen", _http_listen, "HOST:PORT such as 127.0.0.1:8025, or \"off\""),
    _Setting("http.sso_header", _header_name, "a header name such as X-Remote-User"),
    _Setting("http.trusted_proxies", _addresses_list, "a list of IP addresses"),
    _Setting("http.session_hours", _seconds, "hours, more than 0"),
)

_DEFAULTS: dict[str, Any] = {
    "data_dir": "var",
    "database_url": None,
    "rules_dir": "rules",
    "outbox.transport": "maildir",
    "outbox.relay_host": None,
    "outbox.relay_port": 25,
    "outbox.relay_security": "starttls",
    "outbox.relay_user": None,
    "outbox.relay_password": None,
    "outbox.relay_password_file": None,
    "outbox.relay_ca_file": None,
    "outbox.lifetime_hours": 48.0,
    "outbox.lease_seconds": 25,
    "outbox.batch_size": 500,
    "ack.max_per_hour": 5,
    "ack.max_per_day": 20,
    "ack.domain_max_per_hour": 30,
    "ack.domain_max_per_day": 100,
    "ack.duplicate_window_hours": 24.0,
    "ack.bounce_suppression_days": 60,
    "outbox.maildir": None,
    "mail.domain": None,
    "tickets.prefix": "MD",
    "tickets.reopen_days": 14,
    "processing.max_attempts": 3,
    "processing.lease_seconds": 30,
    "processing.batch_size": 32,
    "processing.workers": 0,
    "log.level": "info",
    "log.format": "auto",
    "smtp.listen": ["127.0.0.1:2525"],
    "smtp.hostname": None,
    "smtp.max_message_size": 26_214_400,
    "smtp.timeout": 300,
    "smtp.max_connections": 500,
    "smtp.max_connections_per_client": 50,
    "smtp.tls_cert": None,
    "smtp.tls_key": None,
    "lmtp.listen": [],
    "lmtp.socket_owner": None,
    "lmtp.socket_group": None,
    "lmtp.socket_mode": "0660",
    "daemon.drain_seconds": 30,
    "daemon.worker_interval": 5.0,
    "daemon.outbox_interval": 30.0,
    "imap": [],
    "http.listen": None,
    "http.sso_header": None,
    "http.trusted_proxies": ["127.0.0.1", "::1"],
    "http.session_hours": 12.0,
}


def env_name(key: str) -> str:
    """The variable that sets `key`: processing.max_attempts → MAILD_PROCESSING_MAX_ATTEMPTS."""
    return "MAILD_" + key.replace(".", "_").upper()


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for name, value in table.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict):
            flat.update(_flatten(value, key + "."))
        else:
            flat[key] = value
    return flat


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return _flatten(tomllib.load(handle))
    except FileNotFoundError:
        raise ConfigError(f"{path}: the configuration file does not exist") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot be read: {error.strerror}") from None


def _find_file(explicit: str | os.PathLike[str] | None, env: Mapping[str, str]) -> Path | None:
    if explicit is not None:
        return Path(explicit)
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV])
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None


def load_config(
    path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Read the configuration file (if any), then the environment, then `overrides`.

    Relative paths in the file are relative to the file's directory; relative
    paths from the environment, overrides and defaults are relative to the
    working directory.
    """
    env = os.environ if env is None else env
    file = _find_file(path, env)
    from_file = _read_file(file) if file is not None else {}
    known = {setting.key: setting for setting in _SETTINGS}
    for key in from_file:
        if key not in known:
            raise ConfigError(f"{file}: {key}: unknown setting (known: {', '.join(known)})")

    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    base_dirs: dict[str, Path] = {}
    for setting in _SETTINGS:
        raw: Any = _DEFAULTS[setting.key]
        origin = "default"
        base = Path.cwd()
        if setting.key in from_file:
            raw, origin = from_file[setting.key], f"{file}: {setting.key}"
            base = (file.parent if file is not None else Path.cwd()).resolve()
        name = env_name(setting.key)
        if name in env:
            raw, origin, base = env[name], f"environment {name}", Path.cwd()
        if overrides and setting.key in overrides and overrides[setting.key] is not None:
            raw, origin, base = overrides[setting.key], f"option for {setting.key}", Path.cwd()
        if raw is not None:
            try:
                values[setting.key] = setting.parse(raw)
            except _Invalid as error:
                raise ConfigError(f"{origin}: expected {error}") from None
            except (ValueError, TypeError):
                raise ConfigError(
                    f"{origin}: expected {setting.expected}, got {raw!r}"
                ) from None
        else:
            values[setting.key] = None
        origins[setting.key] = origin
        base_dirs[setting.key] = base

    def path_of(key: str) -> Path:
        candidate = Path(values[key])
        return candidate if candidate.is_absolute() else base_dirs[key] / candidate

    data_dir = path_of("data_dir")
    database_url = values["database_url"] or f"sqlite:///{data_dir / 'maild.db'}"
    if database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg://" + database_url[len("postgresql://"):]
    if not database_url.startswith(("sqlite:///", "postgresql+psycopg://")):
        raise ConfigError(
            f"{origins['database_url']}: expected a URL starting with sqlite:/// or "
            f"postgresql+psycopg://, got {database_url!r}"
        )
    outbox_maildir = (
        path_of("outbox.maildir") if values["outbox.maildir"] else data_dir / "outbox"
    )

    def optional_path(key: str) -> Path | None:
        return path_of(key) if values[key] is not None else None

    relay: RelaySettings | None = None
    if values["outbox.transport"] == "smtp":
        if not values["outbox.relay_host"]:
            raise ConfigError(f"{origins['outbox.transport']}: outbox.transport = \"smtp\" "
                              "needs outbox.relay_host, the relay to deliver through")
        relay = RelaySettings(
            host=values["outbox.relay_host"], port=values["outbox.relay_port"],
            security=values["outbox.relay_security"], user=values["outbox.relay_user"],
            password=values["outbox.relay_password"],
            password_file=optional_path("outbox.relay_password_file"),
            ca_file=optional_path("outbox.relay_ca_file"))
    if (values["smtp.tls_cert"] is None) != (values["smtp.tls_key"] is None):
        raise ConfigError(f"{origins['smtp.tls_cert']}: smtp.tls_cert and smtp.tls_key go "
                          "together: give both or neither")
    return Config(
        data_dir=data_dir,
        database_url=database_url,
        rules_dir=path_of("rules_dir"),
        outbox_transport=values["outbox.transport"],
        outbox_maildir=outbox_maildir,
        mail_domain=values["mail.domain"],
        ticket_prefix=values["tickets.prefix"],
        max_attempts=values["processing.max_attempts"],
        lease_seconds=values["processing.lease_seconds"],
        processing_batch_size=values["processing.batch_size"],
        processing_workers=values["processing.workers"],
        log_level=values["log.level"],
        log_format=values["log.format"],
        source=str(file) if file is not None else "defaults",
        smtp_listen=values["smtp.listen"],
        lmtp_listen=values["lmtp.listen"],
        lmtp_socket=UnixSocketAccess(owner=values["lmtp.socket_owner"],
                                     group=values["lmtp.socket_group"],
                                     mode=values["lmtp.socket_mode"]),
        smtp_hostname=values["smtp.hostname"],
        max_message_size=values["smtp.max_message_size"],
        smtp_timeout=values["smtp.timeout"],
        max_connections=values["smtp.max_connections"],
        max_connections_per_client=values["smtp.max_connections_per_client"],
        tls_cert=optional_path("smtp.tls_cert"),
        tls_key=optional_path("smtp.tls_key"),
        drain_seconds=values["daemon.drain_seconds"],
        worker_interval=values["daemon.worker_interval"],
        outbox_interval=values["daemon.outbox_interval"],
        imap=tuple(_resolve_account(account, base_dirs["imap"]) for account in values["imap"]),
        relay=relay,
        outbox_lifetime_hours=values["outbox.lifetime_hours"],
        outbox_lease_seconds=values["outbox.lease_seconds"],
        outbox_batch_size=values["outbox.batch_size"],
        ack_max_per_hour=values["ack.max_per_hour"],
        ack_max_per_day=values["ack.max_per_day"],
        ack_domain_max_per_hour=values["ack.domain_max_per_hour"],
        ack_domain_max_per_day=values["ack.domain_max_per_day"],
        ack_duplicate_window_hours=values["ack.duplicate_window_hours"],
        bounce_suppression_days=values["ack.bounce_suppression_days"],
        reopen_days=values["tickets.reopen_days"],
        http_listen=values["http.listen"],
        http_sso_header=values["http.sso_header"],
        http_trusted_proxies=values["http.trusted_proxies"],
        http_session_hours=values["http.session_hours"],
    )


def _resolve_account(account: ImapAccount, base: Path) -> ImapAccount:
    """The account with its file paths made absolute against `base`."""
    from dataclasses import replace

    def absolute(path: Path | None) -> Path | None:
        return path if path is None or path.is_absolute() else base / path

    return replace(account, password_file=absolute(account.password_file),
                   oauth2_token_file=absolute(account.oauth2_token_file),
                   ca_file=absolute(account.ca_file))
