import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel

from config.reference import CONFIGURATION_DOC, DEFAULT_TOML, configuration_doc, default_toml
from config.settings import Settings, load_settings


def test_the_generated_reference_is_what_the_models_say():
    """config/default.toml and the table of docs/configuration.md are
    generated from config/settings.py: run `make docs` when this fails."""
    assert DEFAULT_TOML.read_text() == default_toml()
    assert CONFIGURATION_DOC.read_text() == configuration_doc(CONFIGURATION_DOC.read_text())


def test_the_reference_file_as_a_config_gives_the_defaults():
    """Copying config/default.toml and editing it works: read back as a user
    file, it parses and gives exactly the defaults."""
    assert load_settings(DEFAULT_TOML).model_dump() == load_settings().model_dump()
    toml = tomllib.loads(DEFAULT_TOML.read_text())
    assert toml["detection"]["max_side"] == 1600 and toml["service"]["trusted_proxies"] == ["127.0.0.1", "::1"]


def test_every_setting_says_what_it_does():
    for name, field in Settings.model_fields.items():
        group = field.get_default(call_default_factory=True)
        if isinstance(group, BaseModel):
            assert type(group).__doc__, name
            assert all(sub.description for sub in type(group).model_fields.values()), name
        else:
            assert field.description, name


def test_precedence_file_then_env_then_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    user = tmp_path / "user.toml"
    user.write_text('data_dir = "/from/file"\n[detection]\nupsample = 2\njitters = 3\n[service]\nport = 9001\n')
    s = load_settings(user)
    assert (str(s.data_dir), s.detection.upsample, s.detection.jitters, s.service.port) == ("/from/file", 2, 3, 9001)
    assert s.detection.max_side == 1600  # untouched keys keep the defaults (deep merge)

    monkeypatch.setenv("FACESEARCH_DATA_DIR", "/from/env")
    monkeypatch.setenv("FACESEARCH_DETECTION__UPSAMPLE", "0")
    s = load_settings(user)
    assert (str(s.data_dir), s.detection.upsample, s.detection.jitters) == ("/from/env", 0, 3)

    s = load_settings(user, data_dir="/from/flag", detection={"jitters": 5})
    assert (str(s.data_dir), s.detection.upsample, s.detection.jitters) == ("/from/flag", 0, 5)


def test_config_file_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    user = tmp_path / "env.toml"
    user.write_text("[search]\ndefault_k = 3\n")
    monkeypatch.setenv("FACESEARCH_CONFIG", str(user))
    assert load_settings().search.default_k == 3


def test_none_overrides_fall_through(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FACESEARCH_DATA_DIR", "/env")
    assert str(load_settings(data_dir=None).data_dir) == "/env"


def test_api_keys_comma_separated(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FACESEARCH_API_KEYS", " one, two ,,")
    assert load_settings().api_keys == ["one", "two"]


def test_invalid_values_and_missing_file_are_refused(tmp_path: Path):
    with pytest.raises(ValueError):
        load_settings(detection={"model": "sift"})
    with pytest.raises(ValueError):
        load_settings(nonsense=1)
    with pytest.raises(FileNotFoundError):
        load_settings(tmp_path / "missing.toml")
