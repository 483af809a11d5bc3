"""Settings as a user sets them: a bad value is one line naming the variable; `k` has one range everywhere."""

from __future__ import annotations

import pytest

from config.errors import ConfigError
from config.secrets import REDACTED, redactor
from config.settings import MAX_K, check_k, get_settings


@pytest.mark.parametrize(("var", "value"), [("RAG_K", "abc"), ("RAG_K", "0"), ("RAG_K", "51"), ("RAG_MODE", "fast")])
def test_a_bad_variable_is_one_config_error_naming_it(monkeypatch: pytest.MonkeyPatch, var: str, value: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as info:
        get_settings()
    assert str(info.value).startswith(f"{var} is invalid") and "\n" not in str(info.value)
    assert info.value.exit_code == 2


def test_a_bad_secret_is_named_but_never_quoted(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError) as info:
        get_settings(deepseek_api_key=["sk-not-a-string-1234"])
    assert "DEEPSEEK_API_KEY" in str(info.value) and "1234" not in str(info.value)


@pytest.mark.parametrize("k", [0, -1, MAX_K + 1, 2.5, "3", True])
def test_k_outside_its_range_is_refused(k: object) -> None:
    with pytest.raises(ConfigError, match=f"from 1 to {MAX_K}"):
        check_k(k)
    assert check_k(1) == 1 and check_k(MAX_K) == MAX_K


def test_redaction_rules() -> None:
    traced = redactor(["root:milvus-token-7d1f3a", "Milvus"])
    assert traced("token root:milvus-token-7d1f3a here") == f"token {REDACTED} here"
    assert traced("Milvus stores data") == "Milvus stores data"  # a short secret only as the whole string
    assert traced("Milvus") == REDACTED
    assert redactor(["abc"], min_substring=1)("uri http://abc@host") == f"uri http://{REDACTED}@host"
    hint = redactor(key_like=True)("Authentication Fails, Your api key: ****9876 is invalid, Bearer sk-123")
    assert "9876" not in hint and "sk-123" not in hint
