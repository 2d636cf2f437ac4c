"""Items as JSON: what crosses a process boundary and how it comes back.

A flow item (a ``Message``, a bare pydantic model, a dict, a ``FlowError``...)
is turned into a JSON tree that records the *types* JSON cannot: pydantic
models, dataclasses and enums are tagged with their import path and rebuilt
with ``model_validate`` (pydantic) on the other side, so a ``Message`` whose
payload is a user model arrives as that model, not as a dict. Tags are
one-key-plus objects whose keys start with ``$``; a user dict that itself uses
``$`` keys is wrapped so it cannot be mistaken for a tag.

A bare payload on its way between nodes carries the trace that produced it
(``penguiflow._carried.Carried``); it crosses as ``{"$carried": trace, "$item": ...}``
and comes back carried, so the worker's node and whatever it produces still know
the trace (``fetch_traced`` at the origin).

Anything else (sockets, functions, classes defined inside functions, ...)
raises ``SerializationError`` naming where in the item it sits.

Used by the distributed transport (``penguiflow.distributed``) and the journal
(``penguiflow.journal``): one encoding for every item that leaves the process.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import importlib
import json
import sys
from typing import Any

from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from penguiflow._carried import Carried
from penguiflow.errors import FlowError, SerializationError

__all__ = ["decode", "dumps", "encode", "loads"]

_SCALARS = (str, int, float, bool, type(None))


def _type_path(cls: type, path: str) -> str:
    qualname = cls.__qualname__
    if "<locals>" in qualname:
        raise SerializationError(
            f"{cls.__module__}.{qualname} at {path or 'item'} is defined inside a function; "
            "only importable classes can cross a process boundary",
            path=path,
            type_name=qualname,
        )
    return f"{cls.__module__}:{qualname}"


def _resolve(spec: str) -> Any:
    module_name, _, qualname = spec.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise SerializationError(
            f"cannot import {spec!r} to rebuild a received item: {exc}", type_name=spec
        ) from exc
    return obj


def _encode(value: Any, path: str = "") -> Any:
    # ``encode`` without the depth guard (recursive).
    if isinstance(value, _SCALARS) and not isinstance(value, enum.Enum):
        return value
    if type(value) is Carried:
        return {"$carried": value.trace, "$item": _encode(value.item, path)}
    if isinstance(value, list):
        return [_encode(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        return _encode_dict(value, path)
    if isinstance(value, BaseModel):
        cls = type(value)
        fields = {
            name: _encode(getattr(value, name), f"{path}.{name}" if path else name)
            for name in cls.model_fields
        }
        if value.model_extra:
            for name, extra in value.model_extra.items():
                fields[name] = _encode(extra, f"{path}.{name}" if path else name)
        return {"$model": _type_path(cls, path), "$fields": fields}
    if isinstance(value, FlowError):
        return {"$flow_error": _flow_error_fields(value)}
    if isinstance(value, enum.Enum):
        return {"$enum": _type_path(type(value), path), "$value": _encode(value.value, path)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {
            f.name: _encode(getattr(value, f.name), f"{path}.{f.name}" if path else f.name)
            for f in dataclasses.fields(value)
        }
        return {"$dataclass": _type_path(type(value), path), "$fields": fields}
    if isinstance(value, tuple):
        return {"$tuple": [_encode(v, f"{path}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, bytes | bytearray):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    try:
        # datetimes, UUIDs, Decimals, paths...: the JSON form pydantic would use.
        return {"$json": to_jsonable_python(value)}
    except Exception as exc:
        raise SerializationError(
            f"{type(value).__module__}.{type(value).__qualname__} at {path or 'item'} "
            "cannot be serialised to cross a process boundary "
            "(use JSON data, pydantic models or dataclasses)",
            path=path,
            type_name=type(value).__qualname__,
        ) from exc


def _encode_dict(value: dict[Any, Any], path: str) -> Any:
    out: dict[str, Any] = {}
    tagged = False
    for key, item in value.items():
        if not isinstance(key, str):
            raise SerializationError(
                f"dict key {key!r} at {path or 'item'} is not a string; "
                "only string keys cross a process boundary",
                path=path,
                type_name=type(key).__qualname__,
            )
        tagged = tagged or key.startswith("$")
        out[key] = _encode(item, f"{path}.{key}" if path else key)
    return {"$dict": out} if tagged else out


def _flow_error_fields(error: FlowError) -> dict[str, Any]:
    metadata = dict(error.metadata)
    if error.original_exc is not None:
        # The exception object stays behind; its repr travels for diagnosis.
        metadata.setdefault("remote_exception", repr(error.original_exc))
    return {
        "trace_id": error.trace_id,
        "node_name": error.node_name,
        "node_id": error.node_id,
        "code": error.code,
        "message": error.message,
        "metadata": _encode(metadata, "metadata"),
        "exception_type": error.exception_type,
    }


def _decode(tree: Any) -> Any:
    # ``decode`` without the depth guard (recursive).
    if isinstance(tree, list):
        return [_decode(v) for v in tree]
    if not isinstance(tree, dict):
        return tree
    if "$model" in tree:
        cls = _resolve(tree["$model"])
        fields = {k: _decode(v) for k, v in tree["$fields"].items()}
        try:
            return cls.model_validate(fields)
        except Exception as exc:
            raise SerializationError(
                f"received {tree['$model']} does not validate: {exc}", type_name=tree["$model"]
            ) from exc
    if "$dict" in tree:
        return {k: _decode(v) for k, v in tree["$dict"].items()}
    if "$carried" in tree:
        return Carried(_decode(tree["$item"]), tree["$carried"])
    if "$tuple" in tree:
        return tuple(_decode(v) for v in tree["$tuple"])
    if "$bytes" in tree:
        return base64.b64decode(tree["$bytes"])
    if "$json" in tree:
        return tree["$json"]
    if "$enum" in tree:
        return _resolve(tree["$enum"])(_decode(tree["$value"]))
    if "$dataclass" in tree:
        cls = _resolve(tree["$dataclass"])
        return cls(**{k: _decode(v) for k, v in tree["$fields"].items()})
    if "$flow_error" in tree:
        return _decode_flow_error(tree["$flow_error"])
    return {k: _decode(v) for k, v in tree.items()}


def _decode_flow_error(fields: dict[str, Any]) -> FlowError:
    error = FlowError(
        trace_id=fields["trace_id"],
        node_name=fields["node_name"],
        node_id=fields["node_id"],
        code=fields["code"],
        message=fields["message"],
        metadata=_decode(fields["metadata"]),
    )
    error.exception_type = fields["exception_type"]
    return error


_EXACT_SCALARS = frozenset((str, int, float, bool, type(None)))

#: Per pydantic class: its tag and field names (``_fast``); importable classes only.
_MODELS: dict[type, tuple[str, tuple[str, ...]]] = {}


def _model_info(cls: type[BaseModel]) -> tuple[str, tuple[str, ...]]:
    info = _MODELS.get(cls)
    if info is None:
        info = _MODELS[cls] = (_type_path(cls, ""), tuple(cls.model_fields))
    return info


def _fast(value: Any) -> Any:
    """``encode(value)`` for the common shapes (JSON data, models), without paths.

    The same tree as ``encode``; anything else is handed to ``encode``. Its
    errors name no path: ``dumps`` then runs ``encode`` again for the message.
    """
    kind = type(value)
    if kind in _EXACT_SCALARS:
        return value
    if kind is list:
        return [_fast(v) for v in value]
    if kind is dict:
        out: dict[str, Any] = {}
        tagged = False
        for key, item in value.items():
            if type(key) is not str:
                return _encode(value)  # a bad key: encode names it
            tagged = tagged or key.startswith("$")
            out[key] = _fast(item)
        return {"$dict": out} if tagged else out
    if isinstance(value, BaseModel):
        tag, names = _model_info(kind)
        fields = {name: _fast(getattr(value, name)) for name in names}
        extra = value.model_extra
        if extra:
            for name, item in extra.items():
                fields[name] = _fast(item)
        return {"$model": tag, "$fields": fields}
    return _encode(value)


def _too_deep() -> SerializationError:
    return SerializationError(
        f"item is nested too deeply to serialise (Python's recursion limit is "
        f"{sys.getrecursionlimit()} levels); flatten it to cross a process boundary",
        type_name="RecursionError",
    )


def encode(value: Any, path: str = "") -> Any:
    """Turn ``value`` into a JSON-compatible tree that ``decode`` reverses.

    Raises:
        SerializationError: some part of ``value`` cannot be represented, or it
            is nested too deeply to walk.
    """
    try:
        return _encode(value, path)
    except RecursionError:
        raise _too_deep() from None


def decode(tree: Any) -> Any:
    """Rebuild the value ``encode`` produced.

    Raises:
        SerializationError: a tagged type cannot be imported or validated here,
            or the tree is nested too deeply to walk.
    """
    try:
        return _decode(tree)
    except RecursionError:
        raise _too_deep() from None


def dumps(value: Any) -> str:
    """``encode`` then compact JSON text."""
    try:
        try:
            tree = _fast(value)
        except SerializationError:
            tree = _encode(value)  # raises again, naming where in ``value`` the fault is
        return json.dumps(tree, separators=(",", ":"), allow_nan=True)
    except RecursionError:
        raise _too_deep() from None


def loads(text: str | bytes) -> Any:
    """Parse JSON text made by ``dumps`` and ``decode`` it."""
    try:
        return _decode(json.loads(text))
    except RecursionError:
        raise _too_deep() from None
