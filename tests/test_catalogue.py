"""The model catalogue against zhipu-api-2026.md §1, its prices, and the local server built from it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from glmeval.catalogue.listing import HEADERS, display_rows
from glmeval.catalogue.models import MODELS, SOURCES, in_display_order, lookup
from glmeval.catalogue.prices import cache_price_for, cost, price_for, usd_price_for
from glmeval.cli import main
from glmeval.run.client import CallError, GLMClient
from glmeval.simulator.models import MODELS as SIMULATED
from glmeval.store import Store

K = 1024  # the 2024 table reads "128K" as 131,072 and "4K" as the documented 4095 maximum

# (context window, max output) as zhipu-api-2026.md §1 gives them; None where it says "?" or [unconfirmed].
LINEUP: dict[str, tuple[int | None, int | None]] = {
    "glm-5.3": (1_000_000, 131_072),
    "glm-5.3-flash": (1_000_000, None),
    "glm-5.2": (1_000_000, 131_072),
    "glm-5.1": (200_000, 131_072),
    "glm-5-turbo": (200_000, 131_072),
    "glm-5": (204_800, 131_072),
    "glm-5v-turbo": (200_000, 131_072),
    "glm-4.7": (204_800, 131_072),
    "glm-4.7-flash": (200_000, 131_072),
    "glm-4.7-flashx": (200_000, 131_072),
    "glm-4.6": (204_800, 131_072),
    "glm-4.5": (131_072, 98_304),
    "glm-4.5-air": (131_072, 98_304),
    "glm-4.5-x": (131_072, 98_304),
    "glm-4.5-airx": (131_072, 98_304),
    "glm-4.5-flash": (131_072, 98_304),
    "glm-4.5v": (65_536, 16_384),
    "glm-4.6v": (128_000, 32_768),
    "glm-4.6v-flash": (128_000, 32_768),
    "glm-4-plus": (128 * K, 4095),
    "glm-4-air-250414": (128 * K, 16 * K),
    "glm-4-flash-250414": (128 * K, 16 * K),
    "glm-4-flashx-250414": (128 * K, None),
    "glm-4-long": (1_048_576, 4095),  # "1M"; zhipu-api.md §5: 1,024,000-1,048,576
    "glm-4-32b-0414-128k": (128 * K, None),
    "glm-z1-air": (None, None),
    "glm-z1-airx": (None, None),
    "glm-z1-flash": (None, None),
    "glm-z1-flashx": (None, None),
    "glm-4v-plus": (None, None),
    "glm-4v-flash": (None, None),
    "charglm-4": (None, None),
    "glm-4": (128 * K, 4095),
    "glm-4-0520": (128 * K, 4095),
    "glm-3-turbo": (128 * K, 4095),
}
# §1 groups glm-4-airx with glm-4-air-250414 (128K / 16K); the 2024 table's 8K / 4095 is kept
# (tests/test_simulator.py relies on its 8K context) and the entry's note says so.
KEPT_FROM_2024 = {"glm-4-airx": (8192, 4095)}
FREE_CNY = {"glm-4-flash", "glm-4-flash-250414", "glm-4.5-flash"}
FREE_USD = {"glm-4.7-flash", "glm-4.5-flash"}
_KEY = re.compile(r"\b[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+\b|\b[A-Z]{4,}\b")


@pytest.mark.parametrize("name", sorted({*LINEUP, *KEPT_FROM_2024}))
def test_every_lineup_model_has_its_documented_limits(name: str) -> None:
    info = lookup(name)
    assert info is not None and info.kind == "chat"
    assert (info.context_window, info.max_output) == {**LINEUP, **KEPT_FROM_2024}[name]
    if info.max_output is not None and info.default_max_tokens is not None:
        assert 1 <= info.default_max_tokens <= info.max_output


def test_embeddings_and_aliases_are_catalogued() -> None:
    assert {m for m, info in MODELS.items() if info.kind == "embedding"} == {"embedding-2", "embedding-3"}
    assert lookup("glm-4v-plus-0111") is lookup("glm-4v-plus")
    assert lookup("glm-4.8-preview") is None and lookup(None) is None  # type: ignore[arg-type]


def test_thinking_as_the_doc_says() -> None:
    for name in ("glm-4.7", "glm-5", "glm-5.1", "glm-5.2", "glm-4.7-flash"):
        info = MODELS[name]
        assert (info.thinking, info.thinking_mode, info.thinking_default) == (True, "hybrid", "enabled"), name
    assert (MODELS["glm-4.6"].thinking_mode, MODELS["glm-4.6"].thinking_default) == ("hybrid", "auto")
    assert MODELS["glm-z1-air"].thinking_mode == "always" and MODELS["glm-z1-air"].family == "reasoning"
    for name in ("glm-4", "glm-3-turbo", "glm-4-plus", "glm-4v-plus"):
        assert (MODELS[name].thinking, MODELS[name].thinking_default) == (False, "disabled"), name
    assert MODELS["glm-5.2"].reasoning_effort and MODELS["glm-5.2"].effort_levels == ("high", "max")
    assert MODELS["glm-5.2"].default_effort == "max"
    assert not MODELS["glm-5.1"].reasoning_effort and not MODELS["glm-4.7"].reasoning_effort
    assert {MODELS[m].modality for m in ("glm-4.6v", "glm-5v-turbo", "glm-4.5v", "glm-5.3-flash")} == {"vision"}
    assert MODELS["glm-4.7"].modality == "text"


def test_unknowns_are_none_and_marked() -> None:
    flash = MODELS["glm-5.3-flash"]
    assert flash.max_output is None and flash.thinking is None and flash.usd is None
    assert {"max_output", "thinking"} <= set(flash.unconfirmed)
    assert MODELS["glm-5.3"].thinking_default is None and MODELS["glm-5.3"].usd is None
    for name in ("glm-4.7", "glm-5", "glm-5.2", "glm-5-turbo", "glm-4.6v", "glm-4.7-flash", "glm-4-airx"):
        assert MODELS[name].price is None, name
    for name in ("glm-4.7", "glm-5", "glm-5.2", "glm-5-turbo", "glm-4.6v", "glm-4-airx"):
        assert price_for(name) is None, name
        assert cost(name, 10_000, 10_000) == 0.0
    # Free on api.z.ai with no CNY price known: free, not unknown.
    assert MODELS["glm-4.7-flash"].free and price_for("glm-4.7-flash") == (0.0, 0.0)
    assert MODELS["glm-z1-air"].context_window is None and MODELS["glm-5v-turbo"].status is None
    names = {f.name for f in fields(MODELS["glm-4"])}
    for info in MODELS.values():
        for marked in info.unconfirmed:
            assert marked in names, (info.name, marked)
            assert getattr(info, marked) in (None, ()), (info.name, marked)


def test_no_price_is_zero_unless_the_doc_says_free() -> None:
    for name, info in MODELS.items():
        if info.price is not None and info.kind == "chat":
            assert (info.price == (0.0, 0.0)) == (name in FREE_CNY), name
            assert info.price == (0.0, 0.0) or min(info.price) > 0, name
        if info.usd is not None:
            assert ((info.usd.input, info.usd.output) == (0.0, 0.0)) == (name in FREE_USD), name
        assert all(min(t.price) > 0 and (t.cache is None or t.cache > 0) for t in info.tiers), name
        assert info.cache_price is None or info.cache_price > 0, name
        assert info.free == (name in FREE_CNY | FREE_USD), name
    assert price_for("glm-5.3") == (8.0, 28.0) and price_for("glm-5.1") == (6.0, 24.0)
    assert usd_price_for("glm-4.7") is not None and usd_price_for("glm-4.7").output == 2.20  # type: ignore[union-attr]


def test_every_entry_is_dated_and_cites_known_sources() -> None:
    for info in MODELS.values():
        keys = set(_KEY.findall(info.source))
        assert keys and keys <= set(SOURCES), (info.name, info.source)
        assert re.fullmatch(r"20\d\d-\d\d", info.as_of), info.name
        assert info.status in ("current", "legacy", None)


def test_cache_hits_are_billed_at_the_cache_price() -> None:
    assert cost("glm-5.3", 1_000_000, 0) == pytest.approx(8.0)
    assert cost("glm-5.3", 1_000_000, 0, cached_tokens=500_000) == pytest.approx(4.0 + 1.0)
    assert cache_price_for("glm-4.5-air", None, 40_000, 10) == 0.24
    assert cost("glm-4.5-air", 1000, 100, cached_tokens=1000) == pytest.approx((1000 * 0.16 + 100 * 2.0) / 1e6)
    assert cost("glm-4", 1000, 1000, cached_tokens=900) == cost("glm-4", 1000, 1000) == pytest.approx(0.2)
    assert cost("glm-5.3", 100, 0, cached_tokens=10**6) == pytest.approx(100 * 2.0 / 1e6)  # never more than the prompt
    override = {"glm-5.3": {"input": 10, "output": 10, "cached": 1}}
    assert cost("glm-5.3", 1_000_000, 0, override, cached_tokens=1_000_000) == pytest.approx(1.0)
    assert cost("glm-5.3", 1_000_000, 0, {"glm-5.3": [10, 10]}, cached_tokens=1_000_000) == pytest.approx(10.0)


def test_display_order_puts_current_models_first() -> None:
    order = in_display_order()
    assert {i.name for i in order} == set(MODELS) and order[0].name == "glm-5.3"
    chat = [i for i in order if i.kind == "chat"]
    ranks = [{"current": 0, None: 1, "legacy": 2}[i.status] for i in chat]
    assert ranks == sorted(ranks) and order[-1].kind == "embedding"
    rows = display_rows()
    assert [r.model.split()[0] for r in rows] == [i.name for i in order]
    assert all(len(r.cells()) == len(HEADERS) for r in rows)
    by_name = {r.model.split()[0]: r for r in rows}
    assert by_name["glm-4.7"].cny == "?" and by_name["glm-4-flash"].cny == "free" and by_name["glm-5.3-flash"].max_output == "?"


def test_the_simulator_serves_every_catalogue_model() -> None:
    assert set(MODELS) | {"glm-4v-plus-0111"} == set(SIMULATED)
    assert SIMULATED["glm-4.7"].max_output == 131_072 and SIMULATED["glm-5"].context_window == 204_800
    assert SIMULATED["glm-4.7-flash"].latency_ms(100, 100)[1] < SIMULATED["glm-4.7"].latency_ms(100, 100)[1]
    assert SIMULATED["glm-4.7"].latency_ms(100, 100)[1] < SIMULATED["glm-5.3"].latency_ms(100, 100)[1]
    for name in ("glm-4.7", "glm-5", "glm-5.1", "glm-5.2", "glm-5.3", "glm-4.7-flash", "glm-z1-air"):
        assert SIMULATED[name].thinking and SIMULATED[name].thinking_default, name
    for name in ("glm-4.5", "glm-4.5-air"):  # thinking on by default, as the catalogue says
        assert SIMULATED[name].thinking and SIMULATED[name].thinking_default, name
    assert SIMULATED["glm-4.6"].thinking and not SIMULATED["glm-4.6"].thinking_default  # "auto": decides not to
    assert not SIMULATED["glm-4"].thinking and SIMULATED["glm-4.6v"].vision and not SIMULATED["glm-4.7"].vision
    assert SIMULATED["glm-z1-air"].thinking_always and SIMULATED["glm-5.2"].reasoning_effort


@pytest.fixture(scope="module")
def client(local_server: Any) -> Iterator[GLMClient]:
    c = GLMClient(local_server.api_key, local_server.base_url, timeout=10, poll_timeout=10)
    yield c
    c.close()


@pytest.mark.parametrize("model", ["glm-4.7", "glm-5", "glm-5.3", "glm-4.5-flash", "glm-4.6v", "glm-4-flash-250414"])
def test_new_models_answer_and_enforce_their_max_output(client: GLMClient, model: str) -> None:
    limit = MODELS[model].max_output
    assert limit is not None
    answer = client.attempt(model, "sync", [{"role": "user", "content": "中国的首都是哪里？"}], {"max_tokens": limit})
    assert "北京" in answer.text
    with pytest.raises(CallError) as info:
        client.attempt(model, "sync", [{"role": "user", "content": "你好"}], {"max_tokens": limit + 1})
    assert (info.value.info.status, info.value.info.code) == (400, "1210")
    assert str(limit) in info.value.info.message


def test_unknown_ids_still_get_1211(client: GLMClient) -> None:
    for model in ("glm-no-such-model", "glm-4.8-preview"):
        with pytest.raises(CallError) as info:
            client.attempt(model, "sync", [{"role": "user", "content": "你好"}], {})
        assert (info.value.info.status, info.value.info.code) == (400, "1211")


@pytest.mark.parametrize("model", ["glm-4.7", "glm-5"])
def test_a_suite_on_a_2026_model_runs_green_locally(model: str, tmp_path: Path) -> None:
    suite = tmp_path / "capital.yaml"
    suite.write_text(
        f"name: capital\nmodel: {model}\ngrid: {{mode: [sync, stream]}}\n"
        "messages: [{role: user, content: 中国的首都是哪里？}]\n"
        "cases:\n  - id: capital\n    checks: [{contains: 北京}]\n",
        encoding="utf-8",
    )
    args = ["run", str(suite), "--local", "--local-speed", "0", "-q", "--db", str(tmp_path / "r.db"),
            "--out", str(tmp_path / "reports")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "2 passed, 0 failed, 0 errors" in result.output
    run = Store(tmp_path / "r.db").list_runs()[0]
    assert run.status == "complete" and run.local
