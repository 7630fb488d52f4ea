"""[[hilink]] in the config: keys, checks, and the same rates and quotas as [[modems]]."""
from __future__ import annotations

import pytest

from gatewayd.config import ConfigError, load_config, parse_config
from gatewayd.quota import QuotaTracker, sms_devices


def test_hilink_table_parses_with_defaults():
    cfg = parse_config({"hilink": [{"name": "d1", "password": "x"}]})
    h = cfg.hilink[0]
    assert (h.url, h.username, h.sms_per_minute, h.delivery_reports) == ("http://192.168.8.1/", "admin", 20.0, True)


def test_unknown_hilink_key_is_an_error():
    with pytest.raises(ConfigError, match=r"\[\[hilink\]\] #1.pasword: unknown key; did you mean 'password'"):
        parse_config({"hilink": [{"name": "d1", "pasword": "x"}]})


def test_hilink_url_must_be_http():
    with pytest.raises(ConfigError, match=r"\[\[hilink\]\] #1.url: expected the dongle's address"):
        parse_config({"hilink": [{"name": "d1", "url": "192.168.8.1"}]})


def test_hilink_url_with_a_login_in_it_is_refused_without_echoing_it():
    """huawei-lte-api's own docs write http://admin:PASSWORD@192.168.8.1/ and the library logs in
    with it; the url is shown on the device page, in status and in error messages, so the
    password would be too. The config says where the login goes instead."""
    with pytest.raises(ConfigError, match=r"\[\[hilink\]\] #1.url: .*username and password") as exc:
        parse_config({"hilink": [{"name": "d1", "url": "http://admin:Zeer-Geheim@192.168.8.1/"}]})
    assert "Zeer-Geheim" not in str(exc.value)


def test_hilink_names_are_unique_among_devices():
    with pytest.raises(ConfigError, match="used twice"):
        parse_config({"modems": [{"name": "x", "port": "/dev/ttyUSB0"}], "hilink": [{"name": "x"}]})


def test_hilink_rate_and_quota_count_like_a_modem():
    cfg = parse_config({"hilink": [{"name": "d1", "sms_per_minute": 30, "quota_per_day": 100}]})
    assert sms_devices(cfg) == [("d1", 0.5)]
    assert QuotaTracker.from_config(None, cfg).limits["d1"].per_day == 100


def test_example_config_documents_every_hilink_key():
    from dataclasses import fields

    from gatewayd.config import HilinkConfig
    text = open("config.example.toml").read()
    section = text[text.index("# [[hilink]]"):text.index("# Text-to-voice")]
    assert all(f"# {f.name} = " in section for f in fields(HilinkConfig))
    assert load_config("config.example.toml").hilink == ()
