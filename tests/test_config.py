"""Configuration: defaults with no file, file and environment, and clear errors (exit 78)."""

from __future__ import annotations

from pathlib import Path

import pytest

from maild.config import ConfigError, load_config
from tests.conftest import MaildCLI


def test_defaults_work_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config(env={})
    assert config.database_url == f"sqlite:///{tmp_path / 'var' / 'maild.db'}"
    assert config.rules_dir == tmp_path / "rules"
    assert config.outbox_maildir == tmp_path / "var" / "outbox"
    assert config.source == "defaults"


def test_file_then_environment(tmp_path: Path) -> None:
    file = tmp_path / "etc" / "maild.toml"
    file.parent.mkdir()
    file.write_text('data_dir = "/srv/maild"\nrules_dir = "rules"\n'
                    '[processing]\nmax_attempts = 5\n[tickets]\nprefix = "hd"\n')
    config = load_config(file, env={"MAILD_PROCESSING_MAX_ATTEMPTS": "2"})
    assert config.data_dir == Path("/srv/maild")
    assert config.rules_dir == tmp_path / "etc" / "rules"
    assert config.max_attempts == 2
    assert config.ticket_prefix == "HD"
    assert config.database_url == "sqlite:////srv/maild/maild.db"


def test_postgres_url_gets_the_psycopg_driver() -> None:
    config = load_config(env={"MAILD_DATABASE_URL": "postgresql://maild@db/maild"})
    assert config.database_url == "postgresql+psycopg://maild@db/maild"


@pytest.mark.parametrize(("text", "message"), [
    ("[processing]\nmax_attempts = 0\n", "processing.max_attempts: expected a whole number"),
    ("[log]\nlevel = 'loud'\n", "log.level: expected one of: debug, info"),
    ("[tickets]\nprefix = 'MD-1'\n", "tickets.prefix: expected one to six letters"),
    ("[outbox]\ntransprot = 'maildir'\n", "outbox.transprot: unknown setting"),
    ("database_url = 'mysql://x'\n", "database_url: expected a URL starting with sqlite:///"),
    ("[processing\n", "not valid TOML"),
    ("[ack]\ndomain_max_per_hour = 0\n", "ack.domain_max_per_hour: expected a whole number"),
    ("[ack]\ndomain_max_per_day = 'lots'\n", "ack.domain_max_per_day: expected a whole number"),
])
def test_bad_file_names_file_key_and_expectation(tmp_path: Path, text: str,
                                                   message: str) -> None:
    file = tmp_path / "maild.toml"
    file.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_config(file, env={})
    assert str(file) in str(error.value)
    assert message in str(error.value)


def test_bad_environment_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="environment MAILD_PROCESSING_LEASE_SECONDS: "
                                          "expected a whole number of seconds"):
        load_config(env={"MAILD_PROCESSING_LEASE_SECONDS": "soon"})


def test_cli_exits_78_with_one_line(maild: MaildCLI) -> None:
    (maild.cwd / "maild.toml").write_text("[processing]\nmax_attempts = 'many'\n")
    result = maild("tickets")
    assert result.code == 78
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "maild.toml: processing.max_attempts: expected a whole number" in lines[0]


def test_ack_domain_limits_from_file_and_environment(tmp_path: Path) -> None:
    file = tmp_path / "maild.toml"
    file.write_text("[ack]\ndomain_max_per_hour = 7\ndomain_max_per_day = 40\n")
    config = load_config(file, env={"MAILD_ACK_DOMAIN_MAX_PER_DAY": "50"})
    assert (config.ack_domain_max_per_hour, config.ack_domain_max_per_day) == (7, 50)
    defaults = load_config(env={})
    assert (defaults.ack_domain_max_per_hour, defaults.ack_domain_max_per_day) == (30, 100)
