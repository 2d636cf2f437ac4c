"""``ModelRegistry``: per-node input/output models with cached ``TypeAdapter``s."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, TypeAdapter

__all__ = ["ModelRegistry", "RegistryEntry"]


@dataclass(frozen=True, slots=True)
class RegistryEntry:
    """The registered models of one node and their adapters (built once)."""

    in_model: type[BaseModel]
    out_model: type[BaseModel]
    in_adapter: TypeAdapter[Any]
    out_adapter: TypeAdapter[Any]


class ModelRegistry:
    """Maps node names to their input and output models."""

    def __init__(self) -> None:
        self._entries: dict[str, RegistryEntry] = {}

    def register(
        self, node_name: str, in_model: type[BaseModel], out_model: type[BaseModel]
    ) -> None:
        """Register the models of ``node_name``.

        Raises:
            ValueError: the name is already registered.
            TypeError: a model is not a ``pydantic.BaseModel`` subclass.
        """
        if node_name in self._entries:
            raise ValueError(f"Node '{node_name}' already registered")
        if not issubclass(in_model, BaseModel) or not issubclass(out_model, BaseModel):
            raise TypeError("Models must inherit from pydantic.BaseModel")
        self._entries[node_name] = RegistryEntry(
            in_model, out_model, TypeAdapter(in_model), TypeAdapter(out_model)
        )

    def _entry(self, node_name: str) -> RegistryEntry:
        try:
            return self._entries[node_name]
        except KeyError:
            raise KeyError(f"Node '{node_name}' not registered") from None

    def adapters(self, node_name: str) -> tuple[TypeAdapter[Any], TypeAdapter[Any]]:
        """Return ``(in_adapter, out_adapter)``; unknown names raise ``KeyError``."""
        entry = self._entry(node_name)
        return entry.in_adapter, entry.out_adapter

    def models(self, node_name: str) -> tuple[type[BaseModel], type[BaseModel]]:
        """Return ``(in_model, out_model)``; unknown names raise ``KeyError``."""
        entry = self._entry(node_name)
        return entry.in_model, entry.out_model
