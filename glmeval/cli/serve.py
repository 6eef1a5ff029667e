"""``glmeval serve``: the local GLM server in the foreground."""

from __future__ import annotations

from pathlib import Path

import click

from glmeval.cli import main


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8765, show_default=True, type=int, help="Port (0 picks a free one).")
@click.option("--rules", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="YAML rules file adding or overriding replies.")
@click.option("--speed", default=1.0, show_default=True, type=float, help="Latency factor: 1 feels real, 0 answers at once.")
@click.option("--api-key", default="glmeval-local.simulator", show_default=True, help="The key clients must send.")
def serve(host: str, port: int, rules: Path | None, speed: float, api_key: str) -> None:
    """Run the local GLM server (Zhipu v4 protocol) until Ctrl-C."""
    from glmeval.simulator import serve_forever

    serve_forever(host=host, port=port, rules_path=rules, speed=speed, faults=None, api_key=api_key)
