"""Configuration: defaults, file merge, environment overrides, one-line errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from wildpy.config import ConfigError, load_config


def test_defaults_are_secure_and_documented() -> None:
    config = load_config(environ={})
    assert config.api.host == "127.0.0.1"
    assert config.api.port == 8080
    assert config.api.access_token == ""
    assert config.dbs.mongo == "" and config.dbs.redis == ""
    assert config.storage.data_dir == "./wildpy-data"
    text = (Path(__file__).parent.parent / "config" / "default.toml").read_text()
    # a comment over every key
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if "=" in line and not line.lstrip().startswith("#"):
            assert lines[index - 1].lstrip().startswith("#"), f"undocumented key: {line}"


def test_file_is_merged_over_defaults(tmp_path: Path) -> None:
    path = tmp_path / "wildpy.toml"
    path.write_text('emailDomain = "mail.test"\n[api]\nport = 9090\n')
    config = load_config(path, environ={})
    assert config.email_domain == "mail.test"
    assert config.api.port == 9090
    assert config.api.host == "127.0.0.1"  # untouched keys keep their defaults


def test_environment_overrides_case_insensitively(tmp_path: Path) -> None:
    path = tmp_path / "wildpy.toml"
    path.write_text("[api]\nport = 9090\n")
    environ = {
        "WILDPY_API__PORT": "8081",
        "wildpy_api__accesstoken": "secret-token",
        "WILDPY_API__DEBUG": "yes",
        "WILDPY_EMAILDOMAIN": "env.test",
        "WILDPY_TEST_MONGODB_URI": "mongodb://ignored",
        "UNRELATED": "x",
    }
    config = load_config(path, environ=environ)
    assert config.api.port == 8081
    assert config.api.access_token == "secret-token"
    assert config.api.debug is True
    assert config.email_domain == "env.test"


@pytest.mark.parametrize(
    ("text", "environ", "names"),
    [
        ("[api]\nprot = 1\n", {}, "api.prot"),
        ("[nosuch]\nx = 1\n", {}, "nosuch"),
        ("[api]\nport = 'eighty'\n", {}, "api.port"),
        ("[api]\nport = 70000\n", {}, "api.port"),
        ("[dbs]\nmongo = 'postgres://x'\n", {}, "dbs.mongo"),
        ("[log]\nlevel = 'loud'\n", {}, "log.level"),
        ("", {"WILDPY_API__PORT": "eighty"}, "WILDPY_API__PORT"),
        ("", {"WILDPY_API__NOPE": "1"}, "api.nope"),
        ("", {"WILDPY_API__DEBUG": "maybe"}, "WILDPY_API__DEBUG"),
    ],
)
def test_bad_keys_and_values_name_the_key(
    tmp_path: Path, text: str, environ: dict[str, str], names: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ=environ)
    message = str(caught.value)
    assert names in message
    assert "\n" not in message


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml", environ={})
    broken = tmp_path / "broken.toml"
    broken.write_text("[api\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(broken, environ={})
