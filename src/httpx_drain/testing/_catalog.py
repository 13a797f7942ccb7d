"""The presets by name, for markers, fixtures and the command line."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from ._presets import (
    anthropic_messages,
    generic_sse,
    openai_assistants,
    openai_chat,
    openai_responses,
)
from ._scenario import Scenario

__all__ = ["PRESETS", "preset"]

#: Preset scenario builders by name: ``openai-chat``, ``openai-responses``,
#: ``openai-assistants``, ``anthropic-messages``, ``generic-sse``.
PRESETS: Mapping[str, Callable[..., Scenario]] = MappingProxyType(
    {
        "openai-chat": openai_chat,
        "openai-responses": openai_responses,
        "openai-assistants": openai_assistants,
        "anthropic-messages": anthropic_messages,
        "generic-sse": generic_sse,
    }
)


def preset(name: str, **kwargs: Any) -> Scenario:
    """Build the preset called ``name`` (``"openai-chat"`` or ``"openai_chat"``) with ``kwargs``.

    Raises ``ValueError`` naming the known presets for an unknown name.
    """
    build = PRESETS.get(name.replace("_", "-"))
    if build is None:
        known = ", ".join(PRESETS)
        raise ValueError(f"unknown preset {name!r}; the presets are: {known}")
    return build(**kwargs)
