"""``python -m glmeval.simulator``: run the local GLM server in the foreground.

Handy without the rest of glmeval installed (``glmeval serve`` offers the same through the CLI).
"""

from __future__ import annotations

import argparse
import sys

from .faults import FaultConfig
from .rules import RulesError
from .server import DEFAULT_API_KEY, serve_forever


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and serve until Ctrl-C; returns the process exit code."""
    parser = argparse.ArgumentParser(prog="python -m glmeval.simulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--rules", action="append", default=None, help="YAML rules file (repeatable)")
    parser.add_argument("--speed", type=float, default=1.0, help="latency factor: 1 realistic, 0 instant")
    parser.add_argument("--fixed-latency-ms", type=float, default=None)
    parser.add_argument("--max-stream-chunks", type=int, default=0,
                        help="cap on content chunks per stream for load tests; 0 (default) sends one token per chunk, as the real API")
    parser.add_argument("--faults", default="", help='e.g. "rate_limit=0.1,cut_stream=0.05,seed=3"')
    parser.add_argument("--api-key", default=None, help=f"require this key (e.g. {DEFAULT_API_KEY}); default: any well-formed key")
    parser.add_argument("--any-key", action="store_true", help="accept any well-formed key (the default)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampled replies")
    args = parser.parse_args(argv)
    try:
        faults = FaultConfig.parse(args.faults) if args.faults else None
        serve_forever(
            host=args.host,
            port=args.port,
            rules_path=args.rules,
            speed=args.speed,
            faults=faults,
            api_key=None if args.any_key else args.api_key,
            fixed_latency_ms=args.fixed_latency_ms,
            max_stream_chunks=args.max_stream_chunks,
            seed=args.seed,
        )
    except (RulesError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
