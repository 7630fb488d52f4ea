"""Config: strict, typed, errors naming file and key."""
from __future__ import annotations

import pytest

from gatewayd.config import ConfigError, load_config, parse_config, quiet_window


def write(tmp_path, text):
    p = tmp_path / "g.toml"
    p.write_text(text)
    return p


def test_defaults_without_a_file(monkeypatch):
    monkeypatch.delenv("GATEWAYD_CONFIG", raising=False)
    cfg = load_config(None)
    assert cfg.dispatch.quiet_hours == "22:00-07:00" and cfg.modems == ()


def test_full_example_config_parses():
    cfg = load_config("config.example.toml")
    assert cfg.modems[0].sms_per_minute > 0 and cfg.asterisk.max_calls >= 1


def test_unknown_key_names_file_and_key(tmp_path):
    p = write(tmp_path, "[dispatch]\nquiet_hour = '22:00-07:00'\n")
    with pytest.raises(ConfigError,
                       match=r"g.toml: \[dispatch\].quiet_hour: unknown key; did you mean 'quiet_hours'\?"):
        load_config(p)


def test_unknown_section_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="unknown section 'modem'"):
        load_config(write(tmp_path, "[modem]\nport='x'\n"))


def test_wrong_type_says_what_is_expected(tmp_path):
    p = write(tmp_path, "[[modems]]\nname='m1'\nport='/dev/ttyUSB0'\nbaudrate='fast'\n")
    with pytest.raises(ConfigError, match=r"\[\[modems\]\] #1.baudrate: expected an integer, got str 'fast'"):
        load_config(p)


def test_missing_required_key(tmp_path):
    with pytest.raises(ConfigError, match=r"\[\[modems\]\] #1.port: missing"):
        load_config(write(tmp_path, "[[modems]]\nname='m1'\n"))


def test_bad_quiet_hours(tmp_path):
    with pytest.raises(ConfigError, match="quiet_hours"):
        load_config(write(tmp_path, "[dispatch]\nquiet_hours='late'\n"))


def test_duplicate_device_names(tmp_path):
    text = "[[modems]]\nname='m'\nport='/a'\n[[modems]]\nname='m'\nport='/b'\n"
    with pytest.raises(ConfigError, match="used twice"):
        load_config(write(tmp_path, text))


def test_invalid_toml_is_reported(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[dispatch\n"))


def test_unreadable_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "nope.toml")


def test_asterisk_needs_secret_and_number_placeholder():
    with pytest.raises(ConfigError, match="secret"):
        parse_config({"asterisk": {"channel": "PJSIP/{number}@t"}})
    with pytest.raises(ConfigError, match="channel"):
        parse_config({"asterisk": {"channel": "PJSIP/x@t", "secret": "s"}})


def test_quiet_window_wraps_midnight():
    assert quiet_window("22:00-07:00") == (1320, 420)
    assert quiet_window("") is None


@pytest.mark.parametrize("raw,needle", [
    ({"dispatch": {"quiet_hours": "24:00-07:00"}}, "[dispatch].quiet_hours: '24:00-07:00' is not a time of day"),
    ({"dispatch": {"quiet_hours": "23:99-07:00"}}, "quiet_hours"),
    ({"dispatch": {"expiry_urgent_minutes": 0}}, "[dispatch].expiry_urgent_minutes: expected 1 or more"),
    ({"dispatch": {"poll_interval": -1}}, "[dispatch].poll_interval: expected a number above 0"),
    ({"dispatch": {"max_attempts_urgent": 0}}, "max_attempts_urgent"),
    ({"dispatch": {"backoff_base": 60, "backoff_max": 10}}, "backoff_max: must be at least"),
    ({"emulated": [{"name": "e", "rate_per_minute": 0}]}, "[[emulated]] #1.rate_per_minute: expected a number above 0"),
    ({"emulated": [{"name": "e", "capacity": -3}]}, "capacity"),
    ({"modems": [{"name": "m", "port": "/dev/x", "quota_per_day": -1}]}, "quota_per_day"),
    ({"asterisk": {"secret": "s", "calls_per_minute": 0}}, "[asterisk].calls_per_minute"),
    ({"database": {"url": "nonsense"}}, "[database].url: not a database URL"),
])
def test_values_that_would_stop_sending_are_refused(raw, needle):
    with pytest.raises(ConfigError) as exc:
        parse_config(raw)
    assert needle in str(exc.value)
