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
    kept = Stack(tmp_path / "one").service_env("matching", keys_of="roster")
    assert env["PSEUDONYM_KEY"] == kept["PSEUDONYM_KEY"], "kept, and the roster loader's too"
    assert IntakeSettings(pseudonym_key=env["PSEUDONYM_KEY"])
    assert stat.S_IMODE((tmp_path / "one" / "secrets.json").stat().st_mode) == 0o600
    monkeypatch.setenv("LINK_SECRET", "an-operators-own-secret-0123456789")
    assert first.service_env("notify")["LINK_SECRET"] == "an-operators-own-secret-0123456789"


def test_each_service_of_a_stack_is_given_only_its_own_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The analysts' reporting can neither reverse pseudonyms nor forge supporters' links,
    even when the operator's shell holds both keys."""
    monkeypatch.setenv("PSEUDONYM_KEY", "an-operators-own-key-0123456789abcdef")
    monkeypatch.setenv("LINK_SECRET", "an-operators-own-secret-0123456789")
    monkeypatch.setenv("EXCLUSION_KEY", "an-operators-own-exclusion-key-0123456789")
    stack = Stack(tmp_path / "stack")
    keys = {"PSEUDONYM_KEY", "LINK_SECRET", "EXCLUSION_KEY"}
    given = {
        service: keys & set(stack.service_env(service))
        for service in ("intake", "matching", "notify", "reporting")
    }
    assert given == {
        "intake": {"PSEUDONYM_KEY", "EXCLUSION_KEY"},
        "matching": {"EXCLUSION_KEY"},
        "notify": {"LINK_SECRET"},
        "reporting": set(),
    }


def test_a_secret_can_come_from_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As Docker and Kubernetes mount secrets: `<NAME>_FILE` names the file."""
    key, password = tmp_path / "pseudonym_key", tmp_path / "kafka_password"
    key.write_text(secrets.token_urlsafe(32) + "\n")
    password.write_text("scram-password-from-a-file")
    monkeypatch.delenv("PSEUDONYM_KEY", raising=False)
    monkeypatch.setenv("PSEUDONYM_KEY_FILE", str(key))
    monkeypatch.setenv("KAFKA_SASL_PASSWORD_FILE", str(password))
    settings = IntakeSettings()
    assert settings.pseudonym_key.get_secret_value() == key.read_text().strip()
    assert settings.kafka_sasl_password is not None
    assert settings.kafka_sasl_password.get_secret_value() == "scram-password-from-a-file"
