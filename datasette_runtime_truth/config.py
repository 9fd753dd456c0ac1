"""Plugin configuration: the settings, read and checked once at startup, and which attached
databases are turns databases.

Every setting is one row of SETTINGS (name, how its value is read, what it accepts, default),
and every module reads settings through :func:`setting`. A value given as a string, as
Datasette's ``{"$env": ...}`` always gives one, is read as the number or boolean it spells;
anything else stops Datasette from starting, with one line naming the setting.
"""

from dataclasses import dataclass
import difflib
import json
import math
import re
from typing import TYPE_CHECKING, Any, Callable, Optional
import weakref

import click
from datasette.utils import StartupError

from .upstream import backfill, schema

if TYPE_CHECKING:
    from datasette.app import Datasette
    from datasette.database import Database

PLUGIN = "datasette-runtime-truth"
INT64_MAX = 2**63 - 1
WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")
# The debug routes' big answers (README, "Big turns"). Building takes up to about 9 bytes of
# memory per character of JSON counted (benchmarks/payloadmemory.py), so the limit keeps one build
# under about 580 MB, and payload_workers of them at once.
DEFAULT_MAX_PAYLOAD_CHARS = 64_000_000
DEFAULT_PAYLOAD_WORKERS = 1
DEFAULT_PAYLOAD_PROCESS_CHARS = 500_000


class SettingsError(click.ClickException, StartupError):
    """A setting Datasette cannot start with. A StartupError for Datasette 1.0's ``serve``, and a
    ClickException for 0.65's, which does not catch StartupError: one line either way."""


@dataclass(frozen=True)
class Setting:
    name: str
    read: Callable[[Any], Any]  # the value as the plugin uses it; ValueError when not accepted
    accepts: str
    default: Any


def parse_whole_number(text: str) -> Optional[int]:
    """The integer ``[+-]digits`` spells, None for anything else; magnitudes beyond int64 come
    back as INT64_MAX + 1 (with the sign) rather than as huge Python integers."""
    if not WHOLE_NUMBER.fullmatch(text):
        return None
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("+-").lstrip("0") or "0"
    if len(digits) > 19:
        return sign * (INT64_MAX + 1)
    return sign * int(digits)


def parse_int64(text: str) -> Optional[int]:
    """The integer ``text`` spells when it is a whole number SQLite can bind, else None."""
    value = parse_whole_number(text)
    return None if value is None or abs(value) > INT64_MAX else value


def _whole(minimum: int) -> Callable[[Any], int]:
    def read(value: Any) -> int:
        if isinstance(value, str):
            value = parse_int64(value.strip())
        if type(value) is not int or not minimum <= value <= INT64_MAX:
            raise ValueError
        return value

    return read


def _number(minimum: float) -> Callable[[Any], float]:
    def read(value: Any) -> float:
        if isinstance(value, str):
            value = float(value.strip())
        if type(value) not in (int, float) or not math.isfinite(value) or value < minimum:
            raise ValueError
        return value

    return read


def _boolean(value: Any) -> bool:
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if type(value) is not bool:
        raise ValueError
    return value


def _one_of(*choices: str) -> Callable[[Any], str]:
    def read(value: Any) -> str:
        if value not in choices:
            raise ValueError
        return value

    return read


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError
    return value


def _names(value: Any) -> list[str]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names:
        raise ValueError
    return list(dict.fromkeys(_name(name) for name in names))  # each database reported once


SETTINGS = (
    Setting("database", _names, "a database name or a list of names", None),
    Setting("timeline_database", _name, "a database name", None),
    Setting("migrate_on_startup", _boolean, "true or false", False),
    Setting("rules", _one_of(*backfill.RULES), " or ".join(backfill.RULES), "canonical"),
    Setting("report_max_age", _number(minimum=0), "a number of seconds, 0 or more", 30),
    Setting("max_payload_chars", _whole(minimum=1), "a whole number of at least 1", DEFAULT_MAX_PAYLOAD_CHARS),
    Setting("payload_workers", _whole(minimum=0), "a whole number, 0 or more", DEFAULT_PAYLOAD_WORKERS),
    Setting("payload_process_chars", _whole(minimum=0), "a whole number, 0 or more",
            DEFAULT_PAYLOAD_PROCESS_CHARS),
)
BY_NAME = {entry.name: entry for entry in SETTINGS}
# A page of the plugin's lists and paged canned queries: rows by default, and at most.
DEFAULT_PAGE = 50
MAX_PAGE = 1000
DEFAULT_RULES = BY_NAME["rules"].default  # the commands' --rules and every function's default too


def read_settings(raw: Any) -> dict[str, Any]:
    """Every setting's value from the plugin's configuration ``raw``; SettingsError, naming the
    setting and what it accepts, for a value or a name the plugin cannot take."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise SettingsError(f"{PLUGIN}: its configuration is {_shown(raw)}: expected a mapping "
                            f"of settings ({', '.join(BY_NAME)})")
    for name in raw:
        if name not in BY_NAME:
            raise SettingsError(f"{PLUGIN}: unknown setting {_shown(name)}{_did_you_mean(name)}; "
                                f"the settings are {', '.join(BY_NAME)}")
    return {entry.name: _read(entry, raw[entry.name]) if entry.name in raw else entry.default
            for entry in SETTINGS}


def _read(entry: Setting, value: Any) -> Any:
    try:
        return entry.read(value)
    except (ValueError, TypeError, OverflowError):
        unset = " (an unset $env variable gives null)" if value is None else ""
        raise SettingsError(f"{PLUGIN}: {entry.name} is {_shown(value)}{unset}: "
                            f"expected {entry.accepts}") from None


def _shown(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=repr)


def _did_you_mean(name: Any) -> str:
    close = difflib.get_close_matches(str(name).lower(), BY_NAME, n=1)
    return f" (did you mean {_shown(close[0])}?)" if close else ""


_SETTINGS: "weakref.WeakKeyDictionary[Datasette, dict[str, Any]]" = weakref.WeakKeyDictionary()


def check(datasette: "Datasette") -> None:
    """Read and check every setting of this Datasette instance (at startup), once."""
    _SETTINGS[datasette] = read_settings(datasette.plugin_config(PLUGIN))


def setting(datasette: "Datasette", name: str) -> Any:
    """The value of setting ``name`` on this Datasette instance, as checked at startup."""
    if datasette not in _SETTINGS:
        check(datasette)
    return _SETTINGS[datasette][name]


def configured_names(datasette: "Datasette") -> Optional[list[str]]:
    """The ``database`` setting as a list of names, or None when it is not set."""
    return setting(datasette, "database")


async def holds_turns(db: "Database") -> bool:
    """Whether ``db`` has a turns table the upstream wrote (see schema.turns_problem)."""
    return await turns_problem(db) is None


async def turns_problem(db: "Database") -> Optional[str]:
    """schema.read_turns_problem for an attached database."""
    return await db.execute_fn(schema.read_turns_problem)


def check_attached(datasette: "Datasette") -> None:
    """Raise SettingsError, at startup, when a configured ``database`` is not attached."""
    unknown = [name for name in configured_names(datasette) or [] if name not in datasette.databases]
    if unknown:
        attached = sorted(name for name in datasette.databases if not name.startswith("_"))
        raise SettingsError(f"{PLUGIN}: database {', '.join(map(repr, unknown))} is not attached; "
                            f"attached: {', '.join(attached) or 'none'}")


async def turns_databases(datasette: "Datasette") -> list["Database"]:
    """The attached databases that hold turns: the configured ones attached now (whatever they
    hold yet; one removed at runtime is left out), else every one with a turns table (Datasette's
    internal database excluded)."""
    names = configured_names(datasette)
    if names is not None:
        return [datasette.databases[name] for name in names if name in datasette.databases]
    return [db for name, db in datasette.databases.items()
            if not name.startswith("_") and await holds_turns(db)]


async def is_turns_database(datasette: "Datasette", name: str) -> bool:
    """True when ``name`` is one of the plugin's turns databases and holds a turns table."""
    names = configured_names(datasette)
    if name.startswith("_") or name not in datasette.databases:
        return False
    if names is not None and name not in names:
        return False
    return await holds_turns(datasette.databases[name])
