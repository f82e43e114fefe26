"""The shipped unit file and example configuration are valid as shipped."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from maild.config import load_config
from tests.conftest import ROOT
from tests.readme_blocks import readme_block

UNIT = ROOT / "systemd" / "maild.service"
EXAMPLE = ROOT / "systemd" / "maild.toml.example"


def _unit(*texts: str) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string(UNIT.read_text())
    for text in texts:  # drop-ins: later settings win
        unit.read_string(text)
    return unit


def test_unit_file_has_what_the_daemon_relies_on() -> None:
    unit = _unit()
    service = unit["Service"]
    assert service["Type"] == "notify"
    assert service["Restart"] == "on-failure"
    assert service["RestartPreventExitStatus"] == "78"
    assert int(service["WatchdogSec"]) > 0
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    # The static maild user: Postfix's pipe runs `maild deliver` as it, outside the unit.
    assert "DynamicUser" not in service
    for key, value in {"User": "maild", "Group": "maild", "ProtectSystem": "strict",
                       "NoNewPrivileges": "yes", "PrivateTmp": "yes", "UMask": "0027",
                       "StateDirectory": "maild", "ReadWritePaths": "/var/lib/maild",
                       "RuntimeDirectory": "maild"}.items():
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


def test_readme_lmtp_socket_is_where_the_unit_lets_maild_create_it_and_postfix_reach_it() -> None:
    service = _unit(readme_block("# /etc/systemd/system/maild.service.d/postfix.conf"))["Service"]
    lmtp = tomllib.loads(readme_block("# /etc/maild/maild.toml", "### Behind Postfix"))["lmtp"]
    [listen] = lmtp["listen"]
    socket = Path(listen.removeprefix("unix:"))
    # ProtectSystem=strict: maild may write only its StateDirectory, RuntimeDirectory and
    # ReadWritePaths; the socket's directory must be the RuntimeDirectory.
    assert socket.parent == Path("/run") / service["RuntimeDirectory"]
    mode = int(service["RuntimeDirectoryMode"], 8)
    assert mode & 0o005 == 0o005, "Postfix (another user) must be able to enter /run/maild"
    # maild can give the socket to the postfix group only as a member of it.
    assert lmtp["socket_group"] in service["SupplementaryGroups"].split()
    assert int(lmtp["socket_mode"], 8) & 0o060 == 0o060, "the group may connect"
    assert int(lmtp["socket_mode"], 8) & 0o007 == 0, "nobody else may"
    config = load_config(None, env={}, overrides={"lmtp.listen": listen,
                                                  "lmtp.socket_group": lmtp["socket_group"],
                                                  "lmtp.socket_mode": lmtp["socket_mode"]})
    assert config.lmtp_socket is not None and config.lmtp_socket.mode == 0o660


def test_readme_install_commands_name_the_shipped_files_and_the_units_paths() -> None:
    block = readme_block("# as root", "### Running under systemd")
    service = _unit()["Service"]
    names = re.findall(r"(?<=\s)(systemd/[\w.]+|rules)(?=\s)", block)
    assert sorted(set(names)) == ["rules", "systemd/maild.service", "systemd/maild.toml.example"]
    for name in names:
        assert (ROOT / name).exists(), name
    config_path = re.search(r"--config (\S+)", service["ExecStart"])
    assert config_path is not None and config_path.group(1) in block
    example = load_config(EXAMPLE, env={})
    assert str(example.rules_dir) in block, "the rules are copied where the example looks"
    assert service["WorkingDirectory"] == str(example.data_dir)
