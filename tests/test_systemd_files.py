"""The shipped unit file and example configuration are valid as shipped."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from maild.config import load_config
from tests.conftest import ROOT

UNIT = ROOT / "systemd" / "maild.service"
EXAMPLE = ROOT / "systemd" / "maild.toml.example"


def test_unit_file_has_what_the_daemon_relies_on() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(UNIT)
    service = unit["Service"]
    assert service["Type"] == "notify"
    assert service["Restart"] == "on-failure"
    assert service["RestartPreventExitStatus"] == "78"
    assert int(service["WatchdogSec"]) > 0
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    for key, value in {"DynamicUser": "yes", "ProtectSystem": "strict", "NoNewPrivileges": "yes",
                       "PrivateTmp": "yes", "ReadWritePaths": "/var/lib/maild"}.items():
        assert service[key] == value, key
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed; the parse test above still runs")
    maild = Path(sys.executable).parent / "maild"
    if not maild.exists():
        pytest.skip("the maild console script is not installed in this environment")
    copy = tmp_path / "maild.service"
    copy.write_text(UNIT.read_text().replace("/opt/maild/.venv/bin/maild", str(maild)))
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", str(copy)],
                          capture_output=True, text=True, timeout=60, check=False)
    problems = [line for line in (done.stdout + done.stderr).splitlines()
                if "maild.service" in line]
    assert problems == [], "\n".join(problems)


def test_example_configuration_loads_as_shipped_and_uncommented(tmp_path: Path) -> None:
    config = load_config(EXAMPLE, env={})
    assert config.data_dir == Path("/var/lib/maild")
    assert [str(address) for address in config.smtp_listen] == ["127.0.0.1:2525"]
    assert config.imap == ()
    uncommented = re.sub(r"^# (\[\[imap\]\]|[a-z_0-9]+ = )", r"\1", EXAMPLE.read_text(),
                         flags=re.MULTILINE)
    (tmp_path / "maild.toml").write_text(uncommented)
    full = load_config(tmp_path / "maild.toml", env={})
    assert [account.name for account in full.imap] == ["support", "m365"]
    assert full.imap[0].after == "move" and full.imap[0].move_to == "Registrerat"
    assert full.imap[1].oauth2_token_command is not None
    assert full.tls_cert == Path("/etc/maild/tls/fullchain.pem")
