"""``glmeval serve``: the local GLM server in the foreground."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from glmeval.cli.group import main

if TYPE_CHECKING:
    from glmeval.catalogue.dialects import Dialect


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8765, show_default=True, type=int, help="Port (0 picks a free one).")
@click.option("--rules", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="YAML rules file adding or overriding replies.")
@click.option("--speed", default=1.0, show_default=True, type=float, help="Latency factor: 1 feels real, 0 answers at once.")
@click.option(
    "--api-key",
    default=None,
    help="Require this key (for auth tests). Without it any well-formed key is accepted, so an app keeps its usual key.",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the sampled replies (same seed, same answers).")
@click.option(
    "--max-stream-chunks",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    help="Group each stream's content into at most N chunks (load tests); 0 sends one token per chunk, as the real API.",
)
@click.option("--fault", "faults", multiple=True, metavar="KIND=RATE", help="Inject faults, as `glmeval run --local --fault` (repeatable).")
@click.option("--fault-seed", type=int, help="Seed of the injected faults.")
@click.option("--provider", "providers", multiple=True, metavar="NAME=DIALECT",
              help="Mount a provider at /p/NAME/ speaking DIALECT (zhipu, vllm, sglang, dashscope, openrouter); repeatable.")
@click.option("--cassette", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE", help="Answer from cassette FILE (from `glmeval run --record`), its answers cycling.")
@click.option("--cassette-miss", type=click.Choice(["error", "rules"]), default="error", show_default=True, help="A request the cassette lacks: 404 glmeval-cassette-miss, or the rules.")
def serve(
    host: str,
    port: int,
    rules: Path | None,
    speed: float,
    api_key: str | None,
    seed: int = 0,
    max_stream_chunks: int = 0,
    faults: tuple[str, ...] = (),
    fault_seed: int | None = None,
    providers: tuple[str, ...] = (),
    cassette: Path | None = None,
    cassette_miss: str = "error",
) -> None:
    """Run the local GLM server (Zhipu v4 and OpenAI-compatible /v1) until Ctrl-C."""
    from glmeval.cli.run import parse_faults
    from glmeval.errors import GlmevalError
    from glmeval.simulator import RulesError, serve_forever

    fault_config = parse_faults(faults, fault_seed, local=True)
    mounts = parse_providers(providers)
    from glmeval.cassette import load_cassette

    recorded = load_cassette(cassette) if cassette is not None else None
    try:
        serve_forever(
            host=host, port=port, rules_path=rules, speed=speed, faults=fault_config, api_key=api_key or None,
            max_stream_chunks=max_stream_chunks, seed=seed,
            providers=mounts, cassette=recorded, cassette_miss="rules" if cassette_miss == "rules" else "error",
        )
    except RulesError as exc:
        raise GlmevalError(str(exc)) from None
    except OSError as exc:
        raise GlmevalError(f"cannot listen on {host}:{port}: {exc.strerror}; pick another --port") from None


def parse_providers(values: tuple[str, ...]) -> dict[str, Dialect]:
    """``--provider NAME=DIALECT`` values as a mapping; every bad one named in one line (exit 2)."""
    from glmeval.catalogue.dialects import DIALECTS
    from glmeval.errors import GlmevalError
    from glmeval.hints import did_you_mean

    mounts: dict[str, Dialect] = {}
    problems: list[str] = []
    for value in values:
        name, eq, dialect = value.partition("=")
        name, dialect = name.strip(), dialect.strip()
        if not eq or not name or "/" in name:
            problems.append(f"--provider {value!r}: give NAME=DIALECT, such as selfhosted=vllm")
        elif dialect not in DIALECTS:
            problems.append(f"--provider {value!r}: unknown dialect {dialect!r}{did_you_mean(dialect, list(DIALECTS))}; "
                            f"known: {', '.join(DIALECTS)}")
        elif name in mounts and mounts[name] != dialect:
            problems.append(f"--provider {value!r}: {name} is already mounted as {mounts[name]}")
        else:
            mounts[name] = dialect
    if problems:
        raise GlmevalError("; ".join(problems))
    return mounts
