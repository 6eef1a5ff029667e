"""Cassettes: real answers recorded once (``glmeval run --record FILE``) and replayed with no
network and no key (``glmeval run --cassette FILE``, ``glmeval serve --cassette FILE``).

:mod:`.format` is the file, :mod:`.fingerprint` what makes two requests the same,
:mod:`.recorder` the recording proxy, :mod:`.labels` which job asked what, :mod:`.replay` what
the local server answers from, :mod:`.misses` how a miss is reported. This package imports
only ``records``, ``catalogue`` and ``errors`` (the simulator imports :mod:`.replay`); the
recorder loads httpx only when it starts.
"""

from __future__ import annotations

from .fingerprint import VOLATILE_FIELDS, fingerprint, request_key
from .format import FORMAT, Cassette, Interaction, Response, load_cassette, write_cassette
from .replay import CASSETTE_MISS_CODE, ReplayIndex

__all__ = [
    "CASSETTE_MISS_CODE", "FORMAT", "VOLATILE_FIELDS", "Cassette", "Interaction", "ReplayIndex", "Response",
    "fingerprint", "load_cassette", "request_key", "write_cassette",
]
