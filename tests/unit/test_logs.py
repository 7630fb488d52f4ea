"""Log lines: structured, one per event, and never holding numbers or secrets."""
from __future__ import annotations

import io
import logging

import pytest

from gatewayd.config import parse_config
from gatewayd.logs import RedactingFormatter, config_secrets, redact_text, setup_logging

NUMBER = "+32470123456"
AMI_SECRET = "s3cr3t-ami-Pa55"
PIN = "4821"
WEB_KEY = "Zq8v2LwV0b9XkD1yF7tR3uH6nM4pS5aG"
SMTP_PASSWORD = "mail-Pa55word"


@pytest.fixture
def out():
    """Logging set up as the daemon does it, into a buffer; the root logger restored afterwards."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    buf = io.StringIO()
    setup_logging("DEBUG", (AMI_SECRET, PIN, WEB_KEY, SMTP_PASSWORD), stream=buf)
    yield buf
    root.handlers[:], root.level = saved[0], saved[1]


@pytest.mark.parametrize("written", [NUMBER, "0470123456", "0470 12 34 56", "+32 470 12 34 56",
                                     "0470/12.34.56", "32470123456", "0032470123456"])
def test_phone_numbers_are_masked_in_every_notation(out, written):
    logging.getLogger("gatewayd.dispatch").info("message 7 to %s sent", written)
    line = out.getvalue()
    assert "1234" not in line.replace("2026", ""), line
    assert line.rstrip().endswith("****56 sent")


def test_masked_numbers_stay_distinguishable(out):
    log = logging.getLogger("gatewayd")
    log.info("to %s", "+32470123456")
    log.info("to %s", "+32470123499")
    a, b = out.getvalue().splitlines()
    assert a.split()[-1] != b.split()[-1]


@pytest.mark.parametrize("secret", [AMI_SECRET, PIN, WEB_KEY, SMTP_PASSWORD])
def test_configured_secrets_never_appear(out, secret):
    logging.getLogger("gatewayd").warning("login with %s failed", secret)
    assert secret not in out.getvalue()


@pytest.mark.parametrize("line", ['Action: Login\r\nUsername: gatewayd\r\nSecret: unconfigured9\r\n',
                                  'AT+CPIN="9931"', "connect password=unconfigured9"])
def test_credentials_are_masked_even_when_not_configured(out, line):
    logging.getLogger("asterisk.ami").debug("sending %s", line)
    text = out.getvalue()
    assert "unconfigured9" not in text and "9931" not in text


def test_exception_tracebacks_are_redacted_and_kept_on_one_line(out):
    try:
        raise RuntimeError(f"modem refused {NUMBER} with pin {PIN}")
    except RuntimeError:
        logging.getLogger("gatewayd").exception("send failed")
    text = out.getvalue()
    assert NUMBER not in text and f"pin {PIN}" not in text
    assert text.count("\n") == 1 and "Traceback" in text


def test_sms_pdus_are_not_logged(out):
    pdu = "0011000B912374101032F50000AA05C8329BFD06"
    logging.getLogger("gsmmodem").debug("write AT+CMGS: %s", pdu)
    assert pdu not in out.getvalue() and "<pdu" in out.getvalue()


def test_line_is_structured(out):
    logging.getLogger("gatewayd.keeper").warning("hello")
    assert " level=WARNING logger=gatewayd.keeper hello" in out.getvalue()


def test_a_broken_log_call_still_gives_a_redacted_line():
    record = logging.LogRecord("gatewayd", logging.INFO, __file__, 1, "to %s and %s", (NUMBER,), None)
    line = RedactingFormatter().format(record)
    assert "unformattable" in line and NUMBER not in line


def test_ordinary_numbers_dates_and_addresses_are_left_alone():
    line = "alert 12345 at 2026-11-29 03:42:17 from 192.168.100.200:5038, 3 segments"
    assert redact_text(line) == line


def test_config_secrets_lists_every_secret():
    cfg = parse_config({"database": {"url": "postgresql+psycopg://gw:dbPa55word@db/gw"},
                        "asterisk": {"secret": AMI_SECRET}, "web": {"secret_key": WEB_KEY},
                        "modems": [{"name": "m1", "port": "/dev/ttyUSB0", "pin": PIN}],
                        "keeper": {"smtp_password": SMTP_PASSWORD}})
    assert set(config_secrets(cfg)) == {AMI_SECRET, WEB_KEY, PIN, SMTP_PASSWORD, "dbPa55word"}
