"""People: networks, their members (one by one or imported from CSV), the page's users and API tokens.

Each rule about a name, a phone number, a role or a password is checked here once,
for the CLI and the page alike.
"""
from __future__ import annotations

import csv
import hashlib
import io
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..errors import InputError, NotFound
from ..model import (
    ApiToken,
    FormProblem,
    Language,
    Member,
    MemberChannel,
    Network,
    Role,
    RowProblem,
    User,
    member_network,
    utcnow,
)
from ..passwords import MIN_LENGTH, hash_password
from ..phone import parse_phone
from .base import StoreBase

LANGUAGES = tuple(lang.value for lang in Language)
MEMBER_CHANNELS = tuple(c.value for c in MemberChannel)
MAX_NAME = 120          # a network's name and zone, a user's zone
MAX_MEMBER_NAME = 200
# Said to whoever is not allowed to see the member behind a number (and nothing more).
FOREIGN_NUMBER = "this number belongs to another network; ask an admin"
STOP_IS_FINAL = ("the member replied STOP: only they can opt in again, by texting START; "
                 "no page can re-subscribe them")
SHARED_MEMBER = ("this member is also in networks outside yours: only an admin can change "
                 "their number, opt-out or active state")


@dataclass(frozen=True)
class ImportRow:
    line: int
    name: str
    phone: str        # E.164, what is stored
    channel: str
    lang: str
    typed: str = ""   # the number as the file had it, for the preview


@dataclass(frozen=True)
class RowError:
    """One refused CSV row: PROBLEM + PARAMS for a page to word, REASON in English for the CLI."""

    line: int
    field: str
    problem: RowProblem
    params: dict[str, object]
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.reason}"

    @classmethod
    def of(cls, line: int, exc: InputError) -> RowError:
        return cls(line, exc.field, RowProblem(exc.problem or ""), exc.params, exc.reason)


class ImportFailed(InputError):
    """A CSV import with bad rows; `errors` lists each (str() is 'line N: field: reason')."""

    def __init__(self, errors: list[RowError]):
        self.errors = errors
        super().__init__("file", f"{len(errors)} bad row(s), nothing imported: "
                         + "; ".join(map(str, errors[:5])) + (" ..." if len(errors) > 5 else ""))


def foreign_row_error(row: ImportRow) -> RowError:
    return RowError(row.line, "phone", RowProblem.FOREIGN_NUMBER, {"number": row.typed or row.phone}, FOREIGN_NUMBER)


class PeopleStore(StoreBase):
    """Networks, members, users, API tokens."""

    def add_network(self, name: str, zone: str = "") -> Network:
        name, zone = network_fields(name, zone)
        with self.session.begin() as s:
            if s.scalar(select(Network.id).where(Network.name == name)):
                raise InputError("name", f"a network called {name!r} already exists", FormProblem.NETWORK_EXISTS,
                                 {"name": name})
            net = Network(name=name, zone=zone)
            s.add(net)
        return net

    def save_network(self, network_id: int | None, name: str, zone: str) -> Network:
        """Create (NETWORK_ID None) or rename / re-zone a network."""
        if network_id is None:
            return self.add_network(name, zone)
        name, zone = network_fields(name, zone)
        with self.session.begin() as s:
            net = s.get(Network, network_id)
            if net is None:
                raise NotFound("network", network_id)
            if s.scalar(select(Network.id).where(Network.name == name, Network.id != network_id)):
                raise InputError("name", f"a network called {name!r} already exists", FormProblem.NETWORK_EXISTS,
                                 {"name": name})
            net.name, net.zone = name, zone
        return net

    def network(self, s: Session, name: str) -> Network:
        net = s.scalar(select(Network).where(Network.name == name))
        if net is None:
            raise NotFound("network", name)
        return net

    def validate_member(self, phone: str, name: str = "", channel: str | None = None,
                        lang: str = "nl") -> tuple[str, str, str, str]:
        """Check one member's fields; return (e164, name, channel, lang) or raise InputError."""
        number = parse_phone(phone)
        if len(name) > MAX_MEMBER_NAME:
            raise InputError("name", f"longer than {MAX_MEMBER_NAME} characters", RowProblem.NAME_TOO_LONG,
                             {"max": MAX_MEMBER_NAME})
        lang = (lang or "nl").strip().lower()
        if lang not in LANGUAGES:
            raise InputError("lang", f"{lang!r} is not one of {', '.join(LANGUAGES)}", RowProblem.LANG_UNKNOWN,
                             {"value": lang, "allowed": ", ".join(LANGUAGES)})
        if channel in (None, ""):
            channel = (MemberChannel.VOICE if number.landline else MemberChannel.SMS).value
        channel = channel.strip().lower()
        if channel not in MEMBER_CHANNELS:
            raise InputError("channel", f"{channel!r} is not one of {', '.join(MEMBER_CHANNELS)}",
                             RowProblem.CHANNEL_UNKNOWN, {"value": channel, "allowed": ", ".join(MEMBER_CHANNELS)})
        if MemberChannel.SMS.value in channel and not number.mobile:
            raise InputError("channel", f"{number.e164} is a landline and cannot receive SMS; use voice",
                             RowProblem.LANDLINE_NO_SMS, {"number": phone.strip()})
        return number.e164, name.strip(), channel, lang

    def add_member(self, network: str, phone: str, name: str = "", channel: str | None = None,
                   lang: str = "nl", consent_at: datetime | None = None) -> Member:
        """Add a member to NETWORK; a number already known is linked, not duplicated."""
        e164, name, channel, lang = self.validate_member(phone, name, channel, lang)
        with self.session.begin() as s:
            net = self.network(s, network)
            return self._upsert_member(s, net, e164, name, channel, lang, consent_at or utcnow())

    def _upsert_member(self, s: Session, net: Network, e164: str, name: str, channel: str, lang: str,
                       consent_at: datetime) -> Member:
        member = s.scalar(select(Member).where(Member.phone == e164))
        if member is None:
            member = Member(phone=e164, name=name, channel=channel, language=lang, consent_at=consent_at)
            s.add(member)
        elif net in member.networks:
            raise InputError("phone", f"{e164} is already a member of {net.name!r}", RowProblem.ALREADY_IN_NETWORK,
                             {"number": e164, "network": net.name})
        member.networks.append(net)
        return member

    def parse_member_csv(self, text: str) -> tuple[list[ImportRow], list[RowError]]:
        """Rows and per-row errors of a CSV with columns name,phone,channel,lang."""
        reader = csv.DictReader(io.StringIO(text), delimiter=csv_separator(text))
        try:
            return self._parse_member_csv(reader)
        except csv.Error as exc:
            raise InputError("file", f"not a readable CSV file: {exc}", RowProblem.CSV_UNREADABLE,
                             {"line": reader.line_num}) from None

    def _parse_member_csv(self, reader: csv.DictReader[str]) -> tuple[list[ImportRow], list[RowError]]:
        cols = csv_columns(reader.fieldnames or [])
        if "phone" not in cols:
            raise InputError("file", "no 'phone' column; expected the header name,phone,channel,lang",
                             RowProblem.CSV_NO_PHONE_COLUMN)
        reader.fieldnames = cols
        rows: list[ImportRow] = []
        errors: list[RowError] = []
        seen: dict[str, int] = {}
        for raw in reader:
            i = record_line(reader.line_num, raw.values())
            get = {k: (v or "").strip() for k, v in raw.items() if isinstance(k, str)}.get
            try:
                e164, name, channel, lang = self.validate_member(get("phone", ""), get("name", ""),
                                                                 get("channel") or None, get("lang") or "nl")
            except InputError as exc:
                errors.append(RowError.of(i, exc))
                continue
            if e164 in seen:
                errors.append(RowError(i, "phone", RowProblem.PHONE_REPEATED,
                                       {"number": get("phone", ""), "first": seen[e164]},
                                       f"{e164} repeats line {seen[e164]}"))
                continue
            seen[e164] = i
            rows.append(ImportRow(i, name, e164, channel, lang, get("phone", "")))
        return rows, errors

    def foreign_rows(self, rows: list[ImportRow], scope: tuple[int, ...] | None) -> list[ImportRow]:
        """The ROWS whose number is a member none of whose networks is in SCOPE (None = all are)."""
        with self.session() as s:
            return self._foreign_rows(s, rows, scope)

    def _foreign_rows(self, s: Session, rows: list[ImportRow], scope: tuple[int, ...] | None) -> list[ImportRow]:
        if scope is None or not rows:
            return []
        phones = [r.phone for r in rows]
        known = set(s.scalars(select(Member.phone).where(Member.phone.in_(phones))))
        visible = set(s.scalars(select(Member.phone).join(member_network, member_network.c.member_id == Member.id)
                                .where(Member.phone.in_(phones), member_network.c.network_id.in_(scope))))
        return [r for r in rows if r.phone in known - visible]

    def import_members(self, network: str, text: str, skip_bad: bool = False,
                       scope: tuple[int, ...] | None = None) -> tuple[int, list[RowError]]:
        """Import a member CSV: all or nothing, unless SKIP_BAD. Returns (imported, errors).

        SCOPE (network ids; None = all) is the importer's: a number of a member outside it is a
        bad row, never attached (that would hand another network's member over).
        """
        rows, errors = self.parse_member_csv(text)
        if errors and not skip_bad:
            raise ImportFailed(errors)
        imported = 0
        with self.session.begin() as s:
            net = self.network(s, network)
            foreign = self._foreign_rows(s, rows, scope)
            errors = errors + [foreign_row_error(r) for r in foreign]
            if foreign and not skip_bad:
                raise ImportFailed(errors)
            skip = {r.line for r in foreign}
            existing = {m.phone: m for m in s.scalars(select(Member).where(Member.phone.in_([r.phone for r in rows])))}
            now = utcnow()
            for r in rows:
                m = existing.get(r.phone)
                if r.line in skip or (m is not None and net in m.networks):
                    continue
                if m is None:
                    m = Member(phone=r.phone, name=r.name, channel=r.channel, language=r.lang, consent_at=now)
                    s.add(m)
                m.networks.append(net)
                imported += 1
        return imported, errors

    def add_user(self, username: str, password: str, role: str, zone: str = "",
                 networks: tuple[str, ...] = ()) -> User:
        username = (username or "").strip()
        if not username or len(username) > 80 or not _plain_name(username):
            raise InputError("name", "expected 1-80 letters, digits, '.', '-' or '_'", FormProblem.USERNAME_INVALID)
        role, zone = role_of(role).value, zone_of(zone)
        check_password(password)
        with self.session.begin() as s:
            if s.scalar(select(User.id).where(User.username == username)):
                raise InputError("name", f"a user called {username!r} already exists", FormProblem.USER_EXISTS,
                                 {"name": username})
            user = User(username=username, password_hash=hash_password(password), role=role, zone=zone)
            user.networks = [self.network(s, n) for n in networks]
            s.add(user)
        return user

    def update_user(self, user_id: int, role: str, zone: str, network_ids: list[int], active: bool,
                    password: str = "") -> User:
        """Change a user's role, zone, networks, active flag and (when given) password."""
        role, zone = role_of(role).value, zone_of(zone)
        if password:
            check_password(password)
        with self.session.begin() as s:
            u = s.get(User, user_id)
            if u is None:
                raise NotFound("user", user_id)
            # A new password, another role or a deactivation ends the sessions opened before it.
            if password or role != u.role or (u.active and not active):
                u.session_version = (u.session_version or 0) + 1
            u.role, u.zone, u.active = role, zone, active
            u.networks = list(s.scalars(select(Network).where(Network.id.in_(network_ids))))
            if password:
                u.password_hash = hash_password(password)
        return u

    def rehash_password(self, user_id: int, password: str) -> None:
        """Store PASSWORD (just verified) under the current hashing parameters."""
        with self.session.begin() as s:
            user = s.get(User, user_id)
            if user is not None:
                user.password_hash = hash_password(password)

    def bump_session_version(self, user_id: int) -> None:
        """End every session USER_ID has open (logout, "log out everywhere")."""
        with self.session.begin() as s:
            s.execute(update(User).where(User.id == user_id).values(session_version=User.session_version + 1))

    # ------------------------------------------------------------------ members (the page)
    def save_member(self, member_id: int | None, phone: str, name: str, channel: str, lang: str,
                    network_ids: list[int], allowed: tuple[int, ...] | None, opted_out: bool | None = None) -> Member:
        """Create or edit a member; its networks outside ALLOWED (None = all) are left as they were.

        A non-admin never reaches, through a number, a member outside their networks (nor learns
        who it is); a member shared with networks outside ALLOWED keeps their number, opt-out and
        active state unless an admin changes them; nobody here undoes a STOP.
        """
        e164, name, channel, lang = self.validate_member(phone, name, channel or None, lang)
        chosen = [i for i in network_ids if allowed is None or i in allowed]
        if not chosen and member_id is None:
            raise _no_network()
        with self.session.begin() as s:
            other = s.scalar(select(Member).where(Member.phone == e164))
            if other is not None and other.id != member_id:
                typed: dict[str, object] = {"number": phone.strip()}
                if allowed is None:
                    raise InputError("phone", f"{e164} is already a member (#{other.id})", RowProblem.ALREADY_A_MEMBER,
                                     {**typed, "id": other.id})
                if any(n.id in allowed for n in other.networks):
                    raise InputError("phone", f"{e164} is already a member of your networks; edit that member",
                                     RowProblem.ALREADY_IN_YOUR_NETWORKS, typed)
                raise InputError("phone", FOREIGN_NUMBER, RowProblem.FOREIGN_NUMBER, typed)
            if member_id is None:
                m = Member(phone=e164, consent_at=utcnow())
                s.add(m)
            else:
                found = s.get(Member, member_id)
                if found is None:
                    raise NotFound("member", member_id)
                m = found
                if m.phone != e164 and _outside(m, allowed):
                    raise _shared("phone")
            if opted_out is not None and opted_out != m.opted_out:
                if not opted_out:
                    raise InputError("opted_out", STOP_IS_FINAL, RowProblem.STOP_IS_FINAL)
                if _outside(m, allowed):
                    raise _shared("opted_out")
                m.opted_out, m.opted_out_at = True, utcnow()
            m.phone, m.name, m.channel, m.language = e164, name, channel, lang
            kept = [n for n in m.networks if allowed is not None and n.id not in allowed]
            m.networks = kept + list(s.scalars(select(Network).where(Network.id.in_(chosen))))
            if not m.networks:
                raise _no_network()
        return m

    def set_member_active(self, member_id: int, active: bool, allowed: tuple[int, ...] | None = None) -> Member:
        """(De)activate a member; InputError when they are shared with networks outside ALLOWED."""
        with self.session.begin() as s:
            m = s.get(Member, member_id)
            if m is None:
                raise NotFound("member", member_id)
            if m.active != active and _outside(m, allowed):
                raise _shared("active")
            m.active = active
        return m

    # ------------------------------------------------------------------ API tokens
    def create_token(self, name: str, zone: str, actor: str) -> tuple[ApiToken, str]:
        """A new API token; the clear token is returned once and never stored."""
        name = (name or "").strip()
        if not name or len(name) > 80:
            raise InputError("name", "expected 1 to 80 characters", FormProblem.NAME_LENGTH, {"max": 80})
        token = "gwd_" + secrets.token_urlsafe(32)
        with self.session.begin() as s:
            row = ApiToken(name=name, token_hash=token_hash(token), prefix=token[:10], zone=zone_of(zone),
                           created_by=actor)
            s.add(row)
        return row, token

    def revoke_token(self, token_id: int) -> ApiToken:
        with self.session.begin() as s:
            row = s.get(ApiToken, token_id)
            if row is None:
                raise NotFound("token", token_id)
            if row.revoked_at is None:
                row.revoked_at = utcnow()
        return row

    def token_by_secret(self, token: str) -> ApiToken | None:
        """The live token matching TOKEN, its last use stamped; None when unknown or revoked."""
        digest = token_hash(token)
        with self.session.begin() as s:
            row = s.scalar(select(ApiToken).where(ApiToken.token_hash == digest))
            if row is None or row.revoked_at is not None:
                return None
            row.last_used_at = utcnow()
        return row

    def member_by_number(self, number: str) -> Member | None:
        with self.session() as s:
            return s.scalar(select(Member).where(Member.phone == number))



# ---------------------------------------------------------------------- the rules, each checked once
CSV_SEPARATORS = (",", ";", "\t")
# The columns as a coordinator's own spreadsheet heads them, in Dutch, French or German.
CSV_COLUMNS = {"naam": "name", "nom": "name", "telefoon": "phone", "téléphone": "phone", "telephone": "phone",
               "telefon": "phone", "gsm": "phone", "tel": "phone", "kanaal": "channel", "canal": "channel",
               "kanal": "channel", "taal": "lang",
               "langue": "lang", "sprache": "lang", "language": "lang"}


def csv_column(header: str) -> str:
    """The importer's name (name, phone, channel, lang) of a CSV column headed HEADER."""
    header = header.strip().lower()
    return CSV_COLUMNS.get(header, header)


def csv_columns(headers: Iterable[str]) -> list[str]:
    """The importer's names of a CSV's columns; the first column that means a field is that field.

    A spreadsheet may hold both a mobile ("gsm") and a landline ("telefoon") column, or "taal" beside
    "language": the later one is kept under its own header and not read, never silently put in place
    of the first (that imported the landline instead of the mobile). "nummer" / "numéro" are not taken
    for the phone: in a Belgian address list they are the house number."""
    names: list[str] = []
    for index, header in enumerate(headers):
        name = csv_column(header)
        names.append(name if name not in names else f"{index}:{header.strip().lower()}")
    return names


def record_line(end_line: int, fields: Iterable[object]) -> int:
    """The file line a CSV record starts on, from the line it ends on (the reader's line_num): blank
    lines skipped before it and line breaks inside quoted fields are lines of the file, and "Line 6"
    must be where the coordinator finds the row."""
    breaks = sum(f.count("\n") for f in _flat(fields))
    return end_line - breaks


def _flat(fields: Iterable[object]) -> Iterator[str]:
    for f in fields:           # DictReader puts the cells beyond the header in a list
        if isinstance(f, list):
            yield from (x for x in f if isinstance(x, str))
        elif isinstance(f, str):
            yield f


def csv_separator(text: str) -> str:
    """The separator of a member list: the one that makes its first line name a "phone" column.

    Excel set to a Belgian locale saves "CSV" with semicolons, and cells pasted from a spreadsheet
    are separated by tabs; a comma list stays a comma list (a ";" inside a name is no separator)."""
    header = next((line for line in text.splitlines() if line.strip()), "")
    for sep in CSV_SEPARATORS:
        if "phone" in (csv_column(col) for col in next(csv.reader([header], delimiter=sep), [])):
            return sep
    return ","


def network_fields(name: str, zone: str) -> tuple[str, str]:
    """A network's (name, zone), stripped, or InputError naming the field."""
    name = (name or "").strip()
    if not name:
        raise InputError("name", "missing; give the network's name", FormProblem.NETWORK_NAME_MISSING)
    if len(name) > MAX_NAME:
        raise InputError("name", f"longer than {MAX_NAME} characters", FormProblem.TOO_LONG, {"max": MAX_NAME})
    return name, zone_of(zone)


def zone_of(zone: str) -> str:
    zone = (zone or "").strip()
    if len(zone) > MAX_NAME:
        raise InputError("zone", f"longer than {MAX_NAME} characters", FormProblem.TOO_LONG, {"max": MAX_NAME})
    return zone


def role_of(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise InputError("role", f"{value!r} is not one of {', '.join(r.value for r in Role)}",
                         FormProblem.ROLE_UNKNOWN) from None


def check_password(password: str) -> None:
    if len(password or "") < MIN_LENGTH:
        raise InputError("password", f"shorter than {MIN_LENGTH} characters", FormProblem.PASSWORD_SHORT,
                         {"min": MIN_LENGTH})


def _shared(field: str) -> InputError:
    return InputError(field, SHARED_MEMBER, RowProblem.SHARED_MEMBER)


def _no_network() -> InputError:
    return InputError("networks", "choose at least one network", RowProblem.NO_NETWORK)


def _outside(m: Member, allowed: tuple[int, ...] | None) -> bool:
    """Is M also in a network outside ALLOWED (None = everything is allowed)?"""
    return allowed is not None and any(n.id not in allowed for n in m.networks)


def _plain_name(username: str) -> bool:
    """Letters and digits, with '.', '-' or '_' between them."""
    return username.replace(".", "").replace("-", "").replace("_", "").isalnum()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
