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


def _positive_int(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError
    number = int(value)
    if number < 1:
        raise ValueError
    return number


def _choice(*choices: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = _text(value).lower()
        if text not in choices:
            raise ValueError
        return text

    return parse


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
    _Setting("outbox.transport", _choice("maildir"), "one of: maildir"),
    _Setting("outbox.maildir", _text, "a directory path"),
    _Setting("mail.domain", _optional_text, "a domain name such as example.se"),
    _Setting("tickets.prefix", _ticket_prefix, "one to six letters, such as MD"),
    _Setting("processing.max_attempts", _positive_int, "a whole number of at least 1"),
    _Setting("processing.lease_seconds", _positive_int, "a whole number of seconds, at least 1"),
    _Setting("log.level", _choice("debug", "info", "warning", "error"),
             "one of: debug, info, warning, error"),
    _Setting("log.format", _choice("auto", "console", "json"), "one of: auto, console, json"),
)

_DEFAULTS: dict[str, Any] = {
    "data_dir": "var",
    "database_url": None,
    "rules_dir": "rules",
    "outbox.transport": "maildir",
    "outbox.maildir": None,
    "mail.domain": None,
    "tickets.prefix": "MD",
    "processing.max_attempts": 3,
    "processing.lease_seconds": 300,
    "log.level": "info",
    "log.format": "auto",
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
        log_level=values["log.level"],
        log_format=values["log.format"],
        source=str(file) if file is not None else "defaults",
    )
