"""Decoding untrusted JSON request bodies: the one parser every route uses.

A body that decodes must also be answerable: every value it holds can be
encoded back as strict JSON in UTF-8. So besides syntax, ``decode_json``
refuses what the standard library would accept and a reply could not carry
(``NaN``/``Infinity`` literals, numbers beyond the float range such as
``1e999``, lone UTF-16 surrogates from ``\\ud800`` escapes, bytes that are not
UTF-8) and nesting deeper than a limit (deep data exhausts the Python stack
wherever it is walked later). It runs before any work starts, so a refused
request leaves nothing behind.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_MAX_DEPTH", "MAX_DEPTH_LIMIT", "BodyError", "decode_json"]

#: Containers (objects and arrays) a body may nest by default. The A2A envelope
#: uses about six levels (params.message.parts[0].data), leaving the rest to the
#: payload.
DEFAULT_MAX_DEPTH = 64
#: The largest configurable depth: deeper data would reach the recursion limit
#: in the stdlib parser and in the code that later walks the payload.
MAX_DEPTH_LIMIT = 256

# Every byte but quotes and brackets, deleted before the depth scan.
_NOT_STRUCTURE = bytes(sorted(set(range(256)) - set(b'"[]{}')))
# A string once escapes are gone (its brackets are not structure).
_STRING = re.compile(rb'"[^"]*"')
_ONE_KIND = bytes.maketrans(b"[{]}", b"(())")
_OPEN = ord("(")
_RUN = re.compile(rb"\(+|\)+")
_LEAF_PASSES = 8
# An escape that may decode to a lone surrogate (U+D800-U+DFFF). A valid pair
# matches too; the slow check below tells them apart.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(slots=True)
class BodyError(Exception):
    """The request body was refused before any handler ran.

    ``kind`` is ``"too_large"``, ``"content_type"``, ``"timeout"`` (not
    received in time), ``"malformed"`` (not
    JSON, not UTF-8, cut short, or nested deeper than the limit) or
    ``"refused"`` (valid JSON holding a value no reply could carry: a
    non-finite number or a lone surrogate). ``message`` is safe to send to
    the client. For ``"refused"``, ``document`` is the decoded body with the
    offending numbers replaced by ``None`` (``None`` when decoding stopped),
    so a binding can still echo the request id.
    """

    kind: str
    message: str
    document: Any = None


def decode_json(raw: bytes, *, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """Decode a request body as strict JSON whose every value can be sent back.

    Args:
        raw: the body as received.
        max_depth: how many containers may nest (``{}`` and ``[]`` count one
            each).

    Raises:
        BodyError: ``malformed`` or ``refused`` (see ``BodyError``).
    """
    try:
        # Strict UTF-8 (RFC 8259): also refuses encoded surrogates (ED A0 80),
        # which json.loads(bytes) would let through ("surrogatepass").
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BodyError("malformed", "request body is not valid UTF-8") from None
    if _too_deep(raw, max_depth):
        raise BodyError("malformed", f"JSON nested deeper than {max_depth} levels")
    non_finite: list[str] = []

    def parse_float(literal: str) -> float | None:
        value = float(literal)
        if math.isfinite(value):
            return value
        non_finite.append(literal)
        return None

    try:
        document = json.loads(text, parse_constant=_reject_constant, parse_float=parse_float)
    except json.JSONDecodeError as exc:
        raise BodyError("malformed", f"invalid JSON: {exc}") from None
    except _NotJson as exc:
        raise BodyError("malformed", f"invalid JSON: {exc}") from None
    except RecursionError:  # pragma: no cover - defensive: _too_deep sees every deep prefix
        # The scan and the parser agree on string boundaries, so the scan
        # flags any prefix deep enough to exhaust the parser's stack first.
        raise BodyError("malformed", f"JSON nested deeper than {max_depth} levels") from None
    except ValueError:
        # An integer literal beyond sys.get_int_max_str_digits().
        raise BodyError("refused", "number out of range") from None
    if non_finite:
        raise BodyError("refused", "number out of range", document)
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(document):
        raise BodyError("refused", "string holds a lone UTF-16 surrogate", document)
    return document


class _NotJson(ValueError):
    """A literal Python's parser accepts and JSON does not."""


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are not JSON (RFC 8259); accepted, they would make a
    # reply unencodable later.
    raise _NotJson(f"{name} is not a valid JSON value")


def _too_deep(raw: bytes, max_depth: int) -> bool:
    # Fast path: fewer opening brackets than the limit cannot nest deeper.
    if raw.count(b"[") + raw.count(b"{") <= max_depth:
        return False
    # Work on bytes (UTF-8 multibyte sequences hold no ASCII bytes): drop
    # escaped backslashes, then escaped quotes, so every quote left delimits a
    # string; keep only quotes and brackets; drop the strings. All in C.
    structure = raw.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _NOT_STRUCTURE)
    # Most strings hold no bracket and are empty by now: drop those first.
    structure = _STRING.sub(b"", structure.replace(b'""', b""))
    # One bracket kind is enough to measure depth (json.loads checks pairing).
    structure = structure.translate(_ONE_KIND)
    # Removing every "()" removes the leaves of the nesting: depth drops by
    # exactly one per pass. A few passes in C dispose of ordinary data...
    passes = min(_LEAF_PASSES, max_depth)
    for _ in range(passes):
        structure = structure.replace(b"()", b"")
        if not structure:
            return False
    # ...and what is left (only nests deeper than the passes) is measured run
    # by run: few runs survive, since each needs a deep subtree of its own.
    depth = passes
    for run in _RUN.finditer(structure):
        length = run.end() - run.start()
        if structure[run.start()] == _OPEN:
            depth += length
            if depth > max_depth:
                return True
        else:
            depth -= length
    return False


def _has_lone_surrogate(value: Any) -> bool:
    # Depth is bounded by _too_deep, so the recursion is too.
    if isinstance(value, str):
        return _SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(item) for item in value)
    return False
