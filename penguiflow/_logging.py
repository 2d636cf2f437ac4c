"""The one place loggers come from.

The library never configures logging. ``get_logger`` wraps a stdlib logger in a
structlog bound logger with our own processors, passed explicitly to
``structlog.wrap_logger`` so the application's global structlog configuration
is neither read nor changed. The last processor hands stdlib the event name as
the record message and every key-value pair as ``extra`` (as
``structlog.stdlib.render_to_log_kwargs`` does), so applications render our
records with ``structlog.stdlib.ProcessorFormatter`` + ``ExtraAdder`` or any
plain ``logging`` formatter.
"""

from __future__ import annotations

import logging
from typing import Any

import structlog
from structlog.typing import EventDict, WrappedLogger

__all__ = ["get_logger", "is_debug_enabled", "render_to_stdlib"]

logging.getLogger("penguiflow").addHandler(logging.NullHandler())

# Keys LogRecord reserves; extras with these names would make stdlib raise.
_RESERVED = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys() | {"message", "asctime"}
)


def render_to_stdlib(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> Any:
    """Turn an event dict into ``logger.<method>(event, extra={...}, exc_info=...)`` kwargs."""
    event = event_dict.pop("event", "")
    exc_info = event_dict.pop("exc_info", None)
    extra = {(f"{key}_" if key in _RESERVED else key): value for key, value in event_dict.items()}
    kwargs: dict[str, Any] = {"extra": extra}
    if exc_info:
        kwargs["exc_info"] = exc_info
    return (str(event),), kwargs


def get_logger(name: str, **initial_values: Any) -> Any:
    """Return a structlog logger over ``logging.getLogger(name)``.

    Level filtering happens first (``structlog.stdlib.filter_by_level``), so a
    filtered call costs one ``isEnabledFor``. Hot paths should still guard
    per-message DEBUG events with ``is_debug_enabled``.
    """
    return structlog.wrap_logger(
        logging.getLogger(name),
        processors=[structlog.stdlib.filter_by_level, render_to_stdlib],
        wrapper_class=structlog.stdlib.BoundLogger,
        context_class=dict,
        cache_logger_on_first_use=False,
        **initial_values,
    )


def is_debug_enabled(name: str) -> bool:
    """Cheap check used to cache a per-actor DEBUG guard."""
    return logging.getLogger(name).isEnabledFor(logging.DEBUG)
