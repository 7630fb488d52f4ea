"""The one adapter around `huawei-lte-api` (pinned in pyproject): a HiLink dongle's web API.

Huawei's LTE dongles in HiLink mode (E3372h-320 and kin) are a network card
with a web API at 192.168.8.1 and no AT port. The library does the session
and token handshake (session cookie, `__RequestVerificationToken` rotated on
every write, the SHA-256 login); this module turns its calls and exceptions
into what the HiLink channel needs, so nothing else in gatewayd imports it.
"""
from __future__ import annotations

import enum
import functools
import re
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Callable
from xml.parsers.expat import ExpatError

import requests
from huawei_lte_api import exceptions as hx
from huawei_lte_api.Client import Client
from huawei_lte_api.Connection import Connection
from huawei_lte_api.enums.sms import BoxTypeEnum, TextModeEnum, TypeEnum

from .registration import Verdict

# What the library lets through from an answer that is not the API's XML: an HTML page from
# a restarting web server, a truncated body (ExpatError is not a ValueError).
UNREADABLE = (ValueError, ExpatError)


class HilinkError(Exception):
    """Trouble with the dongle; the message says what failed and what to check."""


class HilinkGone(HilinkError):
    """The dongle does not answer, or the session ended: reconnect."""


class AnswerLost(HilinkGone):
    """The request reached the dongle but its answer did not come in time: it may have done it."""


class LoginRefused(HilinkError):
    """Wrong username or password: a person must fix the config (retrying may lock the login)."""


class LoginLocked(HilinkError):
    """The dongle locked its web login after too many wrong passwords (ours or a person's at its
    web page); it unlocks itself after a while."""


class Refused(HilinkError):
    """The API answered with an error code."""

    def __init__(self, what: str, code: int | None, message: str = ""):
        self.code = code
        super().__init__(f"{what}: the dongle answered error {code}{f' ({message})' if message else ''}")


class StoredKind(enum.StrEnum):
    TEXT = "text"                        # an SMS someone sent us
    DELIVERED = "delivered"              # a status report: it reached the phone
    NOT_DELIVERED = "not delivered"      # a status report: it did not


@dataclass(frozen=True)
class Stored:
    """One message in the dongle's inbox."""

    index: int
    number: str
    text: str
    kind: StoredKind
    date: str = ""


@dataclass(frozen=True)
class Radio:
    signal: int | None                   # 0..31 like +CSQ, None when unknown
    network: Verdict
    service: str                         # in words, for the device page
    operator: str = ""
    technology: str = ""


# monitoring/status <ServiceStatus>: 2 service available, 0/1 none or limited (HiLink API).
SERVICE = {"2": "service available", "1": "limited service", "0": "no service", "3": "restricted service",
           "4": "power saving"}
TECHNOLOGY = {"19": "LTE", "101": "LTE", "1011": "LTE", "9": "HSPA+", "7": "HSPA", "3": "GSM/EDGE", "2": "GPRS"}
_REPORT_TYPES = {TypeEnum.DELIVERY_CONFIRMATION_SUCCESS.value: StoredKind.DELIVERED,
                 TypeEnum.DELIVERY_CONFIRMATION_FAILURE.value: StoredKind.NOT_DELIVERED}


class HilinkApi:
    """One logged-in session with one dongle. Not thread-safe: the channel serialises calls."""

    def __init__(self, url: str, username: str, password: str, timeout: float):
        self.url = url
        self.username = username
        self._password = password
        self.timeout = timeout
        self._connection: Connection | None = None
        self._client: Client | None = None

    # ------------------------------------------------------------ session

    def connect(self) -> None:
        """Open the session and log in (the library does the cookie and token handshake)."""
        self.close()
        try:
            self._connection = Connection(self.url, username=self.username or None,
                                          password=self._password or None, timeout=self.timeout)
        except (hx.LoginErrorUsernameWrongException, hx.LoginErrorPasswordWrongException,
                hx.LoginErrorUsernamePasswordWrongException) as exc:
            raise LoginRefused(f"dongle at {self.url} refused the login for '{self.username}' ({exc}): check "
                               f"username and password in [[hilink]]; not retried") from None
        except hx.LoginErrorUsernamePasswordOverrunException:
            raise LoginLocked(f"dongle at {self.url} locked its login after too many wrong passwords (at its web "
                              f"page, or a wrong password in [[hilink]]): gatewayd tries again in a while") from None
        except (requests.RequestException, hx.ResponseErrorException, *UNREADABLE) as exc:
            raise HilinkGone(f"dongle at {self.url} does not answer ({_short(exc)}): is it plugged in, and is "
                             f"this box on its network (ip addr: an address in 192.168.8.0/24)?") from None
        self._client = Client(self._connection)

    def close(self) -> None:
        conn, self._connection, self._client = self._connection, None, None
        if conn is not None:
            try:
                conn.close()        # logs out
            except Exception:
                pass

    def _call(self, what: str, fn: Callable[[Client], Any]) -> Any:
        """fn(client), its exceptions turned into ours."""
        if self._client is None:
            raise HilinkGone(f"dongle at {self.url}: not connected")
        try:
            return fn(self._client)
        except (hx.ResponseErrorLoginRequiredException, hx.ResponseErrorWrongSessionToken,
                hx.ResponseErrorLoginCsrfException) as exc:
            raise HilinkGone(f"dongle at {self.url}: the session ended during {what} ({_short(exc)})") from None
        except hx.ResponseErrorException as exc:
            raise Refused(f"dongle at {self.url}: {what}", getattr(exc, "code", None), str(exc)) from None
        except requests.ReadTimeout as exc:
            raise AnswerLost(f"dongle at {self.url} did not answer in time during {what} ({_short(exc)}); "
                             f"it may have done it") from None
        except (requests.RequestException, *UNREADABLE) as exc:
            raise HilinkGone(f"dongle at {self.url} stopped answering during {what} ({_short(exc)})") from None

    # ------------------------------------------------------------ SMS

    def enable_reports(self) -> bool:
        """Ask for status reports (sms/config UseSReport); False when the dongle refuses."""
        current = self._call("reading the SMS settings", lambda c: c.sms.config())
        if str(current.get("UseSReport", "0")) == "1":
            return True
        try:
            self._call("turning status reports on",
                       lambda c: c.sms.set_config(current.get("Sca") or "", use_s_report=True))
        except Refused:
            return False
        return True

    def send(self, number: str, text: str, ucs2: bool) -> None:
        """Hand one text to the dongle, which splits and sends it; Refused or HilinkGone when not taken."""
        mode = TextModeEnum.UCS2 if ucs2 else TextModeEnum.SEVEN_BIT
        self._call("sending an SMS", lambda c: c.sms.send_sms([number], text, text_mode=mode))

    def wait_sent(self, number: str, timeout: float, busy: Collection[int] = ()) -> bool | None:
        """Poll sms/send-status until the dongle says NUMBER succeeded (True) or failed (False);
        None when it did not say within TIMEOUT. Error codes in BUSY (busy sending) mean: ask again."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                st = self._call("asking how the send went", lambda c: c.sms.send_status())
            except Refused as exc:
                if exc.code not in busy:
                    raise
                st = {}
            if number in _numbers(st.get("SucPhone")):
                return True
            if number in _numbers(st.get("FailPhone")):
                return False
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.1)

    def inbox(self) -> list[Stored]:
        """Every message in the dongle's inbox, oldest first (texts and status reports)."""
        out: list[Stored] = []
        page = 1
        while True:
            got = self._call("reading the inbox", functools.partial(_inbox_page, page=page))
            items = (got.get("Messages") or {}).get("Message") or []
            for m in items:
                kind = _REPORT_TYPES.get(int(m.get("SmsType") or 1), StoredKind.TEXT)
                out.append(Stored(int(m["Index"]), m.get("Phone") or "", m.get("Content") or "", kind,
                                  m.get("Date") or ""))
            if len(items) < 50:
                return out
            page += 1

    def delete(self, index: int) -> None:
        self._call("deleting a message", lambda c: c.sms.delete_sms(index))

    # ------------------------------------------------------------ health

    def radio(self) -> Radio:
        """Signal, service (registration) and operator from monitoring/status, device/signal, net/current-plmn."""
        status = self._call("reading the status", lambda c: c.monitoring.status())
        try:
            signal = _csq(self._call("reading the signal", lambda c: c.device.signal()).get("rssi"))
        except Refused:
            signal = None
        if signal is None and status.get("SignalIcon") not in (None, ""):
            signal = min(31, int(status["SignalIcon"]) * 6)       # 0..5 bars
        try:
            plmn = self._call("reading the operator", lambda c: c.net.current_plmn())
        except Refused:
            plmn = {}
        service = str(status.get("ServiceStatus") or "")
        network = {"2": Verdict.REGISTERED, "0": Verdict.NOT_REGISTERED}.get(service, Verdict.UNCLEAR)
        return Radio(signal, network, SERVICE.get(service, f"status {service or '?'}"),
                     plmn.get("FullName") or plmn.get("ShortName") or "",
                     TECHNOLOGY.get(str(status.get("CurrentNetworkType") or ""), ""))


def probe(url: str, timeout: float) -> str | None:
    """The model name of a HiLink dongle answering at URL (no login needed), or None."""
    try:
        with Connection(url, timeout=timeout) as conn:
            info = Client(conn).device.basic_information()
    except (requests.RequestException, hx.ResponseErrorException, *UNREADABLE):
        return None
    return str(info.get("devicename") or info.get("productfamily") or "HiLink dongle")


def _inbox_page(c: Client, page: int) -> Any:
    return c.sms.get_sms_list(page=page, box_type=BoxTypeEnum.LOCAL_INBOX, read_count=50, ascending=True)


def _numbers(field: object) -> set[str]:
    return {n.strip() for n in str(field or "").split(",") if n.strip()}


def _csq(rssi: object) -> int | None:
    """'-67dBm' -> 23, on the 0..31 scale of +CSQ (-113 dBm + 2 per step)."""
    m = re.search(r"-?\d+", str(rssi or ""))
    if not m:
        return None
    return max(0, min(31, (int(m.group(0)) + 113) // 2))


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:160] or type(exc).__name__
