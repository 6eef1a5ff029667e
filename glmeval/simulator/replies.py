"""What the model says to one request, before the API's shaping (stop, max_tokens, json_object).

Usually a rule's reply. Two 2026 features change it: a vision model shown pictures in the
last user message answers from the pictures (their size and dominant colour, see
:mod:`.vision`), and a request whose web search returned results gets an answer citing
them (a ``[ref_1]`` marker and the titles, see :mod:`.search`). Both stay deterministic.
"""

from __future__ import annotations

from dataclasses import replace

from .conversation import Reply
from .protocol import ChatRequest
from .rules import RuleSet
from .search import cite
from .vision import describe

__all__ = ["answer"]


def _request_key(request: ChatRequest) -> str:
    """What, besides the text and sampling, makes two requests different calls for the sampler."""
    return "|".join(str(part) for part in (
        request.stream, request.thinking, request.effort, request.json_mode, request.max_tokens, request.stop,
        sorted(request.conversation.tool_names), getattr(request, "provider", None),
    ))


def answer(request: ChatRequest, rules: RuleSet) -> Reply:
    """The reply to ``request``: a description of its pictures, else the rules' reply; cited when searched.

    A picture is answered from its bytes even when a rule would match the text beside it: a
    vision case is about the picture, and an answer from the rules would ignore it.
    """
    if request.pictures:
        reply = Reply(describe(request.pictures, request.english), rule="vision")
    else:
        # ChatRequest.provider comes with the provider mounts (/p/<name>/...); None before them.
        provider = getattr(request, "provider", None)
        reply = rules.respond(request.conversation, request.model, request.sampling, provider, _request_key(request))
    if request.search_results and reply.content and not reply.tool_calls and not request.json_mode:
        reply = replace(reply, content=cite(reply.content, request.search_results, request.english))
    return reply
