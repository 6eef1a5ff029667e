"""The dialect table (one source for the harness and the local server), mounts, and `serve --provider`.

The table is checked against what zhipu-api-2026.md §8 says of each host, written out here, so a
change to the table that disagrees with the reference fails here and not only in a wire test.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from glmeval.catalogue.dialects import (
    DIALECTS,
    SPECS,
    Dialect,
    ThinkingSwitchError,
    catalogue_model,
    host_model,
    read_thinking,
    thinking_fields,
)
from glmeval.cli.group import main
from glmeval.simulator import LocalServer
from glmeval.simulator.openai_compat import split_mount, to_zhipu_body

SWITCH_OFF: dict[Dialect, dict[str, object]] = {
    "zhipu": {"thinking": {"type": "disabled"}},
    "vllm": {"chat_template_kwargs": {"enable_thinking": False}},
    "sglang": {"chat_template_kwargs": {"enable_thinking": False}},
    "dashscope": {"enable_thinking": False},
    "openrouter": {"reasoning": {"enabled": False}},
}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_thinking_fields_are_the_hosts_switch_and_read_back(dialect: Dialect) -> None:
    assert thinking_fields(dialect, False) == SWITCH_OFF[dialect]
    assert read_thinking(dialect, thinking_fields(dialect, True)) is True
    assert read_thinking(dialect, thinking_fields(dialect, False)) is False
    assert read_thinking(dialect, {"model": "glm-4.7"}) is None
    assert SPECS[dialect].source


def test_a_switch_of_the_wrong_shape_says_what_it_takes() -> None:
    with pytest.raises(ThinkingSwitchError, match=r"chat_template_kwargs\.enable_thinking must be True or False, not 'no'"):
        read_thinking("vllm", {"chat_template_kwargs": {"enable_thinking": "no"}})
    with pytest.raises(ThinkingSwitchError, match="must be True or False, not 1"):
        read_thinking("dashscope", {"enable_thinking": 1})  # 1 is not a bool, even if 1 == True


def test_openrouter_effort_counts_as_a_switch() -> None:
    assert read_thinking("openrouter", {"reasoning": {"effort": "high"}}) is True
    assert read_thinking("openrouter", {"reasoning": {"effort": "none"}}) is False
    assert read_thinking("openrouter", {"reasoning": {"max_tokens": 200}}) is True


@pytest.mark.parametrize(("sent", "model"), [
    ("glm-4.7", "glm-4.7"), ("z-ai/glm-4.7", "glm-4.7"), ("zai-org/GLM-4.7", "glm-4.7"), ("GLM-5", "glm-5"),
    ("zai-org/GLM-4.5-Air", "glm-4.5-air"), ("z-ai/glm-5-turbo-20260315", "glm-5-turbo"), ("zai-org/GLM-4.7-FP8", "glm-4.7"),
    ("gpt-4o", None), ("", None), ("z-ai/", None),
])
def test_catalogue_model_reads_each_hosts_spelling(sent: str, model: str | None) -> None:
    assert catalogue_model(sent) == model


def test_host_model_spells_as_the_host_and_resolves_back() -> None:
    assert host_model("openrouter", "glm-4.7") == "z-ai/glm-4.7"
    assert host_model("vllm", "glm-4.5-air") == "zai-org/GLM-4.5-Air"
    assert host_model("dashscope", "glm-4.7") == "glm-4.7"
    for dialect in DIALECTS:
        assert catalogue_model(host_model(dialect, "glm-4.7-flash")) == "glm-4.7-flash"


def test_split_mount() -> None:
    providers: dict[str, Dialect] = {"selfhosted": "vllm"}
    mount = split_mount("/p/selfhosted/v1/chat/completions", providers)
    assert (mount.provider, mount.dialect, mount.rest, mount.openai, mount.unknown) == (
        "selfhosted", "vllm", "/v1/chat/completions", True, None)
    native = split_mount("/p/openrouter/api/paas/v4/chat/completions", providers)
    assert (native.provider, native.dialect, native.openai) == ("openrouter", "openrouter", False)
    plain = split_mount("/api/paas/v4/chat/completions", providers)
    assert (plain.provider, plain.dialect, plain.rest) == (None, "zhipu", "/api/paas/v4/chat/completions")
    unknown = split_mount("/p/box/v1/models", providers)
    assert unknown.unknown is not None and "'box'" in unknown.unknown and "selfhosted" in unknown.unknown


def test_to_zhipu_body_translates_the_switch_and_openai_only_fields() -> None:
    body = to_zhipu_body({"model": "zai-org/GLM-4.7", "messages": [], "chat_template_kwargs": {"enable_thinking": False},
                          "max_completion_tokens": 50, "response_format": {"type": "json_schema", "json_schema": {}},
                          "tool_choice": "required", "stream_options": {"include_usage": True}}, "vllm")
    assert body["model"] == "glm-4.7" and body["thinking"] == {"type": "disabled"} and "chat_template_kwargs" not in body
    assert body["max_tokens"] == 50 and body["response_format"] == {"type": "json_object"}
    assert body["tool_choice"] == "auto" and "stream_options" not in body


def test_local_server_refuses_a_bad_provider_map() -> None:
    with pytest.raises(ValueError, match="unknown dialect 'vlm'"):
        LocalServer(providers={"box": "vlm"})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="one path segment"):
        LocalServer(providers={"a/b": "vllm"})
    assert LocalServer(providers={"box": "vllm"}).providers == {"box": "vllm"}


def test_serve_provider_option_names_every_bad_value_in_one_line() -> None:
    result = CliRunner().invoke(main, ["serve", "--provider", "box=vlm", "--provider", "nodialect", "--port", "0"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "did you mean 'vllm'" in lines[0] and "'nodialect'" in lines[0]
    assert "Traceback" not in result.output
