"""Configuration: defaults, file merge, environment overrides, one-line errors naming the key."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from wildpy.config import ConfigError, load_config
from wildpy.store.settings import StoreSettings, settings_from_config


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


def test_store_section_is_documented_and_overridable() -> None:
    config = load_config(environ={})
    settings = settings_from_config(config.store)
    # the documented defaults are the store's own defaults
    assert settings == StoreSettings()
    config = load_config(
        environ={"WILDPY_STORE__MAXSIZE": "4096", "WILDPY_STORE__ARCHIVETIME": "86400"}
    )
    settings = settings_from_config(config.store)
    assert settings.max_size == 4096
    assert settings.archive_time == timedelta(days=1)
    with pytest.raises(ConfigError, match=r"store\.maxAttempts"):
        load_config(environ={"WILDPY_STORE__MAXATTEMPTS": "0"})


def test_example_production_config_loads() -> None:
    path = Path(__file__).parent.parent / "config" / "example-production.toml"
    config = load_config(path, environ={})
    assert config.dbs.mongo.startswith("mongodb://") and "replicaSet=" in config.dbs.mongo
    assert config.dbs.redis.startswith("redis://")
    assert config.api.host != "127.0.0.1"
    assert config.store.archive_time == 14 * 86400
    assert config.api.max_body_size > config.store.max_size
    # public mail listeners with a certificate: the file names real keys, not comments
    assert config.smtp.host == "0.0.0.0" and config.smtp.name == "mx.example.com"
    assert config.tls.certificate.endswith(".pem") and config.tls.key.endswith(".pem")
