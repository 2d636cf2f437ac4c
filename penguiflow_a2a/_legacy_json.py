"""JSON bodies of the 2.2.5 routes, encoded as FastAPI encoded them.

2.2.5 served ``handle_send``'s dict (and every other route's body) through
FastAPI, which runs ``jsonable_encoder`` before ``json.dumps``: a result holding a
``datetime``, ``UUID``, ``Decimal``, ``Enum``, ``set`` or ``bytes`` reached the
client as ISO text, strings, numbers and lists. These helpers reproduce that
encoding and FastAPI's compact, non-ASCII-preserving ``JSONResponse`` text, so
2.2.5 clients get the same bytes.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections import deque
from collections.abc import Callable
from decimal import Decimal
from enum import Enum
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
)
from pathlib import PurePath
from re import Pattern
from types import GeneratorType
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from ._strict_json import strict_dumps

__all__ = ["fastapi_dumps", "jsonable_encoder"]


def _decimal(value: Decimal) -> int | float:
    # FastAPI: integral decimals become ints, the others floats.
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent >= 0:
        return int(value)
    return float(value)


_BY_CLASS: tuple[tuple[type[Any] | tuple[type[Any], ...], Callable[[Any], Any]], ...] = (
    (bytes, lambda value: value.decode()),
    ((datetime.datetime, datetime.date, datetime.time), lambda value: value.isoformat()),
    (datetime.timedelta, lambda value: value.total_seconds()),
    (Decimal, _decimal),
    (
        (IPv4Address, IPv4Interface, IPv4Network, IPv6Address, IPv6Interface, IPv6Network, UUID),
        str,
    ),
    (Pattern, lambda value: value.pattern),
)


def jsonable_encoder(value: Any) -> Any:
    """Convert ``value`` to JSON-ready data the way FastAPI's ``jsonable_encoder`` does.

    Raises:
        ValueError: an object with no known encoding (FastAPI raised it too).
    """
    if isinstance(value, BaseModel):
        return jsonable_encoder(value.model_dump(mode="json"))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable_encoder(dataclasses.asdict(value))
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, str | int | float) or value is None:
        return value
    if isinstance(value, dict):
        return {jsonable_encoder(key): jsonable_encoder(item) for key, item in value.items()}
    if isinstance(value, list | set | frozenset | tuple | deque | GeneratorType):
        return [jsonable_encoder(item) for item in value]
    for classes, encode in _BY_CLASS:
        if isinstance(value, classes):
            return encode(value)
    try:
        data = dict(value)
    except Exception as first:
        try:
            data = vars(value)
        except Exception as second:
            raise ValueError([first, second]) from second
    return jsonable_encoder(data)


def fastapi_dumps(value: Any) -> str:
    """``JSONResponse`` text of FastAPI: encoded, compact, UTF-8 kept, no NaN.

    Raises:
        NotJsonError: ``value`` has no strict JSON form (FastAPI answered a
            bare 500 for these; the routes answer their flow-failure error).
    """
    return strict_dumps(value, convert=jsonable_encoder, compact=True)
