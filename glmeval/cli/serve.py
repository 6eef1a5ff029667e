"""``glmeval serve``: the local GLM server in the foreground."""

from __future__ import annotations

from pathlib import Path

import click

from glmeval.cli.group import main


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
) -> None:
    """Run the local GLM server (Zhipu v4 protocol) until Ctrl-C."""
    from glmeval.cli.run import parse_faults
    from glmeval.errors import GlmevalError
    from glmeval.simulator import RulesError, serve_forever

    fault_config = parse_faults(faults, fault_seed, local=True)
    try:
        serve_forever(
            host=host, port=port, rules_path=rules, speed=speed, faults=fault_config, api_key=api_key or None,
            max_stream_chunks=max_stream_chunks, seed=seed,
        )
    except RulesError as exc:
        raise GlmevalError(str(exc)) from None
    except OSError as exc:
        raise GlmevalError(f"cannot listen on {host}:{port}: {exc.strerror}; pick another --port") from None
