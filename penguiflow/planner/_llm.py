"""The model seam: the ``JSONLLMClient`` protocol and the LiteLLM adapter.

LiteLLM is an optional dependency (extra ``planner``). It is imported inside
``LiteLLMJSONClient.complete``, never at module import, so ``import penguiflow`` and
constructing a planner stay cheap. A missing SDK or an empty reply raises
``penguiflow.errors.LLMCallError`` (a ``RuntimeError``); errors the SDK raises
propagate unchanged, as in 2.2.5, so programs can catch LiteLLM's own types.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from penguiflow.errors import LLMCallError
from penguiflow.planner._telemetry import record_token_usage

__all__ = ["JSONLLMClient", "LiteLLMJSONClient", "json_schema_format"]

_NOT_INSTALLED = (
    "LiteLLM is not installed. Install penguiflow[planner] or provide a custom llm_client."
)


@runtime_checkable
class JSONLLMClient(Protocol):
    """Anything that turns chat messages into the model's raw text reply.

    The planner always calls ``complete`` with keyword arguments and a fresh list of
    ``{"role": ..., "content": ...}`` dicts. Exceptions propagate out of
    ``ReactPlanner.run``/``resume``/``step`` unchanged.
    """

    async def complete(
        self,
        *,
        messages: Sequence[Mapping[str, str]],
        response_format: Mapping[str, Any] | None = None,
    ) -> str:
        """Return the model's raw reply text for ``messages``."""
        ...


def json_schema_format(name: str, schema: Mapping[str, Any]) -> dict[str, Any]:
    """Build an OpenAI-style ``response_format`` asking for JSON matching ``schema``."""
    return {"type": "json_schema", "json_schema": {"name": name, "schema": dict(schema)}}


class LiteLLMJSONClient:
    """A ``JSONLLMClient`` over ``litellm.acompletion``.

    Args:
        llm: a model name, or a mapping of LiteLLM keyword arguments
            (``{"model": ..., "api_key": ...}``), passed through as given.
        temperature: used unless ``llm`` sets ``temperature`` itself.
        json_schema_mode: pass ``response_format`` on to LiteLLM; when false it is
            dropped.
    """

    __slots__ = ("_json_schema_mode", "_llm", "_temperature")

    def __init__(
        self,
        llm: str | Mapping[str, Any],
        *,
        temperature: float,
        json_schema_mode: bool,
    ) -> None:
        self._llm = llm
        self._temperature = temperature
        self._json_schema_mode = json_schema_mode

    @property
    def model(self) -> str | None:
        """The model name requests go to, when known."""
        if isinstance(self._llm, str):
            return self._llm
        model = self._llm.get("model")
        return None if model is None else str(model)

    async def complete(
        self,
        *,
        messages: Sequence[Mapping[str, str]],
        response_format: Mapping[str, Any] | None = None,
    ) -> str:
        """Call the model and return the reply text.

        Raises:
            LLMCallError: LiteLLM is missing (message starts ``LiteLLM is not
                installed``) or the reply had no content (``LiteLLM returned empty
                content``).
            Exception: whatever ``litellm.acompletion`` raised, unchanged.
        """
        try:
            import litellm
        except ImportError as exc:
            raise LLMCallError(_NOT_INSTALLED, model=self.model) from exc

        params: dict[str, Any] = (
            {"model": self._llm} if isinstance(self._llm, str) else dict(self._llm)
        )
        params.setdefault("temperature", self._temperature)
        params["messages"] = [dict(message) for message in messages]
        if self._json_schema_mode and response_format is not None:
            params["response_format"] = dict(response_format)
        # SDK errors are NOT translated: 2.2.5 lets them propagate out of
        # ``ReactPlanner.run`` unchanged (spec/planner.md section 3), and programs
        # catch LiteLLM's own types (``litellm.RateLimitError``) to retry.
        response = await litellm.acompletion(**params)
        usage = _field(response, "usage")
        if usage is not None:
            record_token_usage(_field(usage, "prompt_tokens"), _field(usage, "completion_tokens"))
        content = response["choices"][0]["message"]["content"]
        if content is None:
            raise LLMCallError("LiteLLM returned empty content", model=self.model)
        return str(content)


def _field(obj: Any, name: str) -> Any:
    """``obj[name]`` or ``obj.name`` (LiteLLM answers with dict-like model objects)."""
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)
