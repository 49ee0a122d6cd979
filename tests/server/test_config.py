"""Settings from a TOML file, the environment and flags: precedence, sources, errors, the redacted dump."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.cli import main
from server.config import ConfigError, read_config_file, resolve
from server.settings import Settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cocreate.toml"
    path.write_text(text)
    return path


def test_flags_beat_the_environment_which_beats_the_file_which_beats_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, 'port = 4000\nhost = "0.0.0.0"\nclose-timeout = 2\nlog_format = "json"\n')
    environ = {"COCREATE_PORT": "5000", "COCREATE_CLOSE_TIMEOUT": "3.5"}
    settings, sources = resolve({"port": "6000"}, environ, path)
    assert (settings.port, settings.close_timeout, settings.host, settings.log_format) == (
        6000,
        3.5,
        "0.0.0.0",
        "json",
    )
    assert sources["port"] == "flag --port"
    assert sources["close_timeout"] == "environment COCREATE_CLOSE_TIMEOUT"
    assert sources["host"] == f"file {path}"
    assert sources["ws_path"] == "default" and settings.ws_path == Settings().ws_path


@given(
    file=st.one_of(st.none(), st.integers(1, 9000)),
    env=st.one_of(st.none(), st.integers(1, 9000)),
    flag=st.one_of(st.none(), st.integers(1, 9000)),
)
def test_the_highest_layer_that_sets_a_value_wins(
    tmp_path_factory: pytest.TempPathFactory, file: int | None, env: int | None, flag: int | None
) -> None:
    path = tmp_path_factory.mktemp("cfg") / "c.toml"
    path.write_text("" if file is None else f"port = {file}\n")
    environ = {} if env is None else {"COCREATE_PORT": str(env)}
    flags = {} if flag is None else {"port": str(flag)}
    settings, _ = resolve(flags, environ, path)
    expected = next((v for v in (flag, env, file) if v is not None), Settings().port)
    assert settings.port == expected


def test_the_config_variable_names_the_file_when_no_flag_does(tmp_path: Path) -> None:
    path = write(tmp_path, "idle_timeout = 30.5\n")
    settings, sources = resolve({}, {"COCREATE_CONFIG": str(path)})
    assert settings.idle_timeout == 30.5 and sources["idle_timeout"] == f"file {path}"


def test_an_unknown_key_is_named_in_the_error(tmp_path: Path) -> None:
    path = write(tmp_path, "port = 1\nmax_mesage_size = 10\n")
    with pytest.raises(ConfigError, match=r"unknown setting 'max_mesage_size'"):
        read_config_file(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('port = "x1"\n', r"setting 'port' must be of type int, not str"),
        ("port = 1.5\n", r"setting 'port' must be of type int, not float"),
        ("host = 5\n", r"setting 'host' must be of type str, not int"),
        ("close_timeout = true\n", r"setting 'close_timeout' must be of type int or float, not bool"),
        ("[server]\nport = 1\n", r"unknown setting 'server'"),
        ("port = \n", r"not valid TOML"),
        ('log_format = "xml"\n', r"'log_format' must be one of text, json"),
    ],
)
def test_bad_values_get_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        resolve({}, {}, write(tmp_path, text))


def test_a_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config file .*missing\.toml"):
        resolve({}, {}, tmp_path / "missing.toml")


def test_settings_command_prints_redacted_values_and_their_sources(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, 'database_url = "postgresql+asyncpg://app:hunter2@db.internal/cocreate"\n')
    monkeypatch.setenv("COCREATE_SECRET", "a-very-secret-signing-key-0123456789")
    monkeypatch.setenv("COCREATE_METRICS_TOKEN", "scrape-me-token")
    assert main(["settings", "--config", str(path), "--port", "7000"]) == 0
    out = capsys.readouterr().out
    assert "hunter2" not in out and "a-very-secret" not in out and "scrape-me" not in out
    shown = {}
    for line in out.splitlines():
        assignment, source = line.rsplit("  # ", 1)
        name, value = assignment.rstrip().split(" = ", 1)
        shown[name] = (value, source)
    assert shown["database_url"] == ("postgresql+asyncpg://app:***@db.internal/cocreate", f"file {path}")
    assert shown["secret"] == ("***", "environment COCREATE_SECRET")
    assert shown["metrics_token"] == ("***", "environment COCREATE_METRICS_TOKEN")
    assert shown["port"] == ("7000", "flag --port")
    assert shown["ws_path"] == ("/ws/", "default")


def test_serve_refuses_a_config_file_with_an_unknown_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "prot = 1\n")
    with pytest.raises(SystemExit) as stopped:
        main(["serve", "--config", str(path)])
    assert stopped.value.code == 2
    assert "unknown setting 'prot'" in capsys.readouterr().err
