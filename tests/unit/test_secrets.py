"""Keys and signing secrets: a plainly predictable one is refused, and no stack runs on one
written in this repository."""

import secrets
import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from deploy.stack import Stack
from services.intake.settings import IntakeSettings
from services.notify.settings import NotifySettings


@pytest.mark.parametrize(
    "weak", ["aaaaaaaaaaaaaaaa", "abababababababababababab", "1234123412341234"]
)
def test_a_predictable_key_or_link_secret_is_refused(weak: str) -> None:
    with pytest.raises(ValidationError, match="too predictable"):
        IntakeSettings(pseudonym_key=weak)
    with pytest.raises(ValidationError, match="too predictable"):
        NotifySettings(link_secret=weak)


def test_a_random_key_is_accepted() -> None:
    key = secrets.token_urlsafe(32)
    assert IntakeSettings(pseudonym_key=key).pseudonym_key.get_secret_value() == key


def test_each_stack_makes_its_own_secrets_and_keeps_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("PSEUDONYM_KEY", "LINK_SECRET"):
        monkeypatch.delenv(name, raising=False)
    first, second = Stack(tmp_path / "one"), Stack(tmp_path / "two")
    env = first.service_env("intake")
    assert env["PSEUDONYM_KEY"] != second.service_env("intake")["PSEUDONYM_KEY"]
    assert env["PSEUDONYM_KEY"] == Stack(tmp_path / "one").service_env("notify")["PSEUDONYM_KEY"]
    assert IntakeSettings(pseudonym_key=env["PSEUDONYM_KEY"])
    assert stat.S_IMODE((tmp_path / "one" / "secrets.json").stat().st_mode) == 0o600
    monkeypatch.setenv("LINK_SECRET", "an-operators-own-secret-0123456789")
    assert first.service_env("notify")["LINK_SECRET"] == "an-operators-own-secret-0123456789"
