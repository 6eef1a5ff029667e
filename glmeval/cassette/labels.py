"""Which job asked each recorded request, and the order a cassette lists them in.

The proxy sees bytes, not jobs; the plans know every job's model, messages, parameters and
mode. A recorded chat request is matched to the jobs whose model and messages it carries
(the SDK sends both unchanged), the best by how many of the job's parameters it also carries
(the SDK clamps some, e.g. temperature 0 → 0.01) and by its mode. Interactions are listed in
the plans' job order, which follows the suite file, each async result poll right after the
create that started its task; requests no job made itself (judge and embedding calls) come
last, ordered by content, so two recordings of one suite list the same things in the same
place and a diff shows only what changed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .fingerprint import is_poll

if TYPE_CHECKING:
    from glmeval.records import Job

    from .format import Interaction

__all__ = ["order_and_label", "job_label"]

_LAST = 1 << 60


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def job_label(job: Job, with_suite: bool = False) -> str:
    """``case greet, variant model=glm-4-flash`` (the words a cassette miss is reported in)."""
    where = f"suite {job.suite}: " if with_suite else ""
    return f"{where}case {job.case_id}, variant {job.variant_id}"


def _mode(item: Interaction, body: dict[str, Any]) -> str:
    if item.path.startswith("/async/"):
        return "async"
    return "stream" if body.get("stream") else "sync"


def _score(job: Job, body: dict[str, Any], mode: str) -> int:
    score = 2 if job.mode == mode else 0
    params = dict(job.params)
    params.update(params.pop("extra_body", None) or {})
    for key, value in params.items():
        if value is not None and key != "stream" and _canon(body.get(key)) == _canon(value):
            score += 1
    return score


def _matches(item: Interaction, index: dict[tuple[str, str], list[tuple[int, Job]]]) -> list[tuple[int, Job]]:
    body = item.json_body()
    if not isinstance(body, dict) or "messages" not in body:
        return []
    candidates = index.get((str(body.get("model")), _canon(body.get("messages"))), [])
    if not candidates:
        return []
    mode = _mode(item, body)
    scored = [(_score(job, body, mode), n, job) for n, job in candidates]
    best = max(s for s, _, _ in scored)
    return [(n, job) for s, n, job in scored if s == best]


def _other_label(item: Interaction) -> str:
    body = item.json_body()
    model = body.get("model") if isinstance(body, dict) else None
    about = f" (model {model})" if model else ""
    if item.path.startswith("/embeddings"):
        return f"embeddings for a similarity check{about}"
    return f"a call no job made itself: a judge or grading call{about}"


def order_and_label(items: Sequence[Interaction], jobs: Sequence[Job]) -> list[Interaction]:
    """``items`` labelled and in cassette order (see the module docstring)."""
    index: dict[tuple[str, str], list[tuple[int, Job]]] = {}
    for n, job in enumerate(jobs):
        messages = json.loads(_canon(job.messages))
        index.setdefault((job.model, _canon(messages)), []).append((n, job))
    with_suite = len({job.suite for job in jobs}) > 1
    keys: dict[int, tuple[Any, ...]] = {}
    task_of: dict[str, tuple[tuple[Any, ...], int]] = {}
    for item in items:
        if is_poll(item.method, item.path):
            continue
        found = _matches(item, index)
        if found:
            labels = list(dict.fromkeys(job_label(job, with_suite) for _, job in found))
            shown = "; ".join(labels[:3]) + (f" (and {len(labels) - 3} more)" if len(labels) > 3 else "")
            repeats = len(item.responses)
            item.label = shown + (f" ({repeats} answers, in order)" if repeats > 1 else "")
            key: tuple[Any, ...] = (min(n for n, _ in found), item.upstream, item.path, _canon(item.json_body()))
        else:
            item.label = _other_label(item)
            item.reuse = True
            key = (_LAST, item.upstream, item.path, _canon(item.json_body()) if item.json_body() is not None else "")
        keys[id(item)] = key
        for i, resp in enumerate(item.responses):
            try:
                task = json.loads(resp.body).get("id") if item.path.startswith("/async/") else None
            except (ValueError, AttributeError):
                task = None
            if isinstance(task, str):
                task_of[task] = (key, i)
    for item in items:
        if is_poll(item.method, item.path):
            task = item.path.rsplit("/", 1)[-1]
            parent = task_of.get(task)
            item.label = "the async task above: its result" if parent else f"the result of async task {task}"
            keys[id(item)] = (*parent[0], parent[1] + 1) if parent else (_LAST + 1, item.upstream, item.path, "")
    return sorted(items, key=lambda item: _sort_key(keys[id(item)]))


def _sort_key(key: tuple[Any, ...]) -> tuple[Any, ...]:
    """A create's key sorts before its polls' (which extend it with a position)."""
    return (*key[:4], key[4] if len(key) > 4 else 0)
