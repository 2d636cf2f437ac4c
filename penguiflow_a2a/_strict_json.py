"""Encoding what the flow produced as strict JSON: the one encoder replies trust.

A request body is checked on the way in (``_body``); what the flow returns is
checked here, once, where it enters the task store or an SSE frame. ``json.dumps``
would write ``NaN``/``Infinity`` (not JSON), raise on a lone surrogate only when
the text is later encoded as UTF-8, and reach the recursion limit on deep data
wherever the value is walked next. ``strict_dumps`` refuses all of these with a
``NotJsonError`` whose message is safe to send; the detail is for the log.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ._body import MAX_DEPTH_LIMIT, _too_deep

__all__ = ["MAX_OUTPUT_DEPTH", "NotJsonError", "check_text", "strict_dumps", "strict_value"]

#: How deep a value of the flow may nest: as deep as the deepest accepted
#: body, far from the recursion limit of the code rendering the reply around it.
MAX_OUTPUT_DEPTH = MAX_DEPTH_LIMIT


class NotJsonError(ValueError):
    """A value of the flow that no reply can carry as strict JSON in UTF-8.

    ``str(error)`` (``"flow produced <what> that is not valid JSON"``) is safe
    to send; ``detail`` says why, for the server log only.
    """

    def __init__(self, what: str, detail: str) -> None:
        super().__init__(f"flow produced {what} that is not valid JSON")
        self.what = what
        self.detail = detail


def strict_dumps(
    value: Any,
    *,
    what: str = "a result",
    compact: bool = False,
    convert: Callable[[Any], Any] | None = None,
) -> str:
    """``json.dumps(convert(value), ensure_ascii=False)`` for values that are strict JSON.

    Args:
        value: the data to encode.
        what: names the value in the error (``"a result"``, ``"a stream chunk"``).
        compact: ``(",", ":")`` separators instead of the default ones.
        convert: makes ``value`` JSON-ready first (e.g. ``jsonable``); it runs
            inside the check, so data too deep to convert is refused the same way.

    Raises:
        NotJsonError: a non-finite number, a lone surrogate, a type with no
            JSON form, or nesting deeper than ``MAX_OUTPUT_DEPTH``.
    """
    return _dumps(value, what=what, compact=compact, convert=convert)[1]


def strict_value(value: Any, *, what: str, convert: Callable[[Any], Any] | None = None) -> Any:
    """``convert(value)`` (default: ``value``) once ``strict_dumps`` accepted it.

    Raises:
        NotJsonError: see ``strict_dumps``.
    """
    return _dumps(value, what=what, compact=True, convert=convert)[0]


def check_text(text: str, *, what: str) -> bytes:
    """``text`` as strict UTF-8 (a lone surrogate has no UTF-8 form).

    Raises:
        NotJsonError: ``text`` holds a lone surrogate.
    """
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise NotJsonError(what, f"lone surrogate at position {exc.start}") from None


def _dumps(
    value: Any, *, what: str, compact: bool, convert: Callable[[Any], Any] | None
) -> tuple[Any, str]:
    try:
        converted = value if convert is None else convert(value)
        text = json.dumps(
            converted,
            ensure_ascii=False,
            allow_nan=False,
            separators=(",", ":") if compact else None,
        )
    except (ValueError, TypeError, RecursionError) as exc:
        # ValueError: NaN/Infinity, or an object the converter cannot encode;
        # TypeError: no JSON form; RecursionError: deeper than the stack.
        raise NotJsonError(what, repr(exc)[:200]) from None
    raw = check_text(text, what=what)
    if _too_deep(raw, MAX_OUTPUT_DEPTH):
        raise NotJsonError(what, f"nested deeper than {MAX_OUTPUT_DEPTH} levels")
    return converted, text
