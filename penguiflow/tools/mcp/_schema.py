"""A tool's JSON schemas: argument validation and the pydantic models a ``NodeSpec`` needs.

Arguments are validated with ``jsonschema`` (a dependency of the ``mcp`` SDK, which
uses it for output schemas; no extra package). ``NodeSpec`` wants pydantic models,
so each tool gets a permissive model whose ``model_json_schema()`` is the tool's own
schema (the planner's prompt shows it verbatim) and whose validator runs the JSON
schema check, raising ``ToolArgumentsInvalid`` (a ``ValueError``, so pydantic turns
it into the ``ValidationError`` the planner's repair path already handles).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, model_validator

from penguiflow.errors import ToolArgumentsInvalid

__all__ = ["ArgumentsValidator", "args_model", "result_model"]

_TEXT_RESULT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"text": {"type": "string"}},
    "required": ["text"],
}


class ArgumentsValidator:
    """Checks arguments against one tool's input schema (compiled once)."""

    __slots__ = ("_validator", "schema", "server", "tool")

    def __init__(self, schema: Mapping[str, Any], *, tool: str, server: str) -> None:
        from jsonschema.validators import validator_for

        self.schema = dict(schema)
        self.tool = tool
        self.server = server
        cls = validator_for(self.schema)
        # A malformed schema from the server is the server's bug: fail at discovery.
        cls.check_schema(self.schema)
        self._validator = cls(self.schema)

    def validate(self, arguments: Any) -> dict[str, Any]:
        """Return ``arguments`` as a dict, or raise ``ToolArgumentsInvalid`` listing every error."""
        if not isinstance(arguments, Mapping):
            raise ToolArgumentsInvalid(
                f"arguments of tool {self.tool!r} must be an object, "
                f"not {type(arguments).__name__}",
                tool=self.tool,
                server=self.server,
                errors=[{"path": "", "message": "not an object"}],
            )
        checked: dict[str, Any] = dict(arguments)
        found = sorted(self._validator.iter_errors(checked), key=lambda e: list(e.path))
        if found:
            errors = [
                {"path": ".".join(str(part) for part in e.path), "message": e.message}
                for e in found
            ]
            detail = "; ".join(
                f"{err['path']}: {err['message']}" if err["path"] else err["message"]
                for err in errors
            )
            raise ToolArgumentsInvalid(
                f"invalid arguments for tool {self.tool!r}: {detail}",
                tool=self.tool,
                server=self.server,
                errors=errors,
            )
        return checked


class _SchemaModel(BaseModel):
    """Base of the per-tool models: any field allowed, schema given by the tool."""

    model_config = ConfigDict(extra="allow")
    _schema: ClassVar[dict[str, Any]] = {}

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The tool's own JSON schema (not one derived from pydantic fields)."""
        return dict(cls._schema)


class _ArgsModel(_SchemaModel):
    _validator: ClassVar[ArgumentsValidator | None] = None

    @model_validator(mode="before")
    @classmethod
    def _check(cls, data: Any) -> Any:
        assert cls._validator is not None  # set by args_model()
        return cls._validator.validate(data)


def args_model(validator: ArgumentsValidator, name: str) -> type[BaseModel]:
    """A pydantic model validating a tool's arguments with its JSON schema."""
    model = type(
        f"{_model_name(name)}Args",
        (_ArgsModel,),
        {"__module__": __name__, "_schema": validator.schema, "_validator": validator},
    )
    return model


def result_model(output_schema: Mapping[str, Any] | None, name: str) -> type[BaseModel]:
    """A permissive model for a tool's result; its schema is the tool's output schema.

    Tools without an output schema answer ``{"text": ...}`` to the planner.
    """
    schema = dict(output_schema) if output_schema else dict(_TEXT_RESULT_SCHEMA)
    model = type(
        f"{_model_name(name)}Result",
        (_SchemaModel,),
        {"__module__": __name__, "_schema": schema},
    )
    return model


def _model_name(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("-", "_").split("_") if part)
