"""`cocreate token` and the `secret` setting: the token is the last line, the secret never shows."""

from __future__ import annotations

import time

import pytest

from server.auth import Role
from server.cli import main
from server.settings import Settings
from server.tokens import verify

SECRET = "cli-secret-0123456789abcdefghijklmn"


def test_token_prints_a_verifiable_token_on_the_last_line(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["token", "--user", "ana", "--name", "Ana B", "--grant", "team/*=editor", "--grant", "x=owner"]
    assert main([*argv, "--ttl", "8h", "--secret", SECRET]) == 0
    out = capsys.readouterr()
    token = out.out.strip().splitlines()[-1]
    identity, role = verify(token, "team/plan", time.time(), SECRET)
    assert (identity.user_id, identity.name, role) == ("ana", "Ana B", Role.EDITOR)
    assert verify(token, "x", time.time(), SECRET)[1] == Role.OWNER
    assert 8 * 3600 - 60 < (identity.expires_at or 0) - time.time() <= 8 * 3600
    assert SECRET not in out.out + out.err


def test_token_reads_the_secret_from_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COCREATE_SECRET", SECRET)
    assert main(["token", "--user", "bo", "--ttl", "90s"]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    identity, role = verify(token, "anything", time.time(), SECRET)
    assert (identity.name, role) == ("bo", Role.NONE)


@pytest.mark.parametrize(
    "extra",
    [[], ["--secret", SECRET, "--grant", "team/*=admin"], ["--secret", SECRET, "--ttl", "soon"]],
)
def test_token_usage_errors(
    extra: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COCREATE_SECRET", raising=False)
    with pytest.raises(SystemExit) as info:
        main(["token", "--user", "ana", *extra])
    assert info.value.code == 2
    assert capsys.readouterr().err


def test_the_secret_setting_is_never_shown() -> None:
    settings = Settings.from_environment({"COCREATE_SECRET": SECRET})
    assert settings.secret == SECRET
    assert settings.describe()["secret"] == "***"
    assert SECRET not in repr(settings) and SECRET not in str(settings.describe())
    assert Settings().describe()["secret"] == "None"
