"""Deterministic text embeddings for the local server's ``/embeddings`` endpoint.

Embedding-based checks (semantic similarity) must behave sensibly offline: similar texts
close, unrelated texts far apart, and the same text always the same vector. A hashed bag of
features gives exactly that without any model weights:

- text is NFKC-normalised and lower-cased;
- every Latin/digit word is a feature (weight 1);
- every run of CJK characters contributes its characters (weight 0.5) and its character
  bigrams (weight 1);
- each feature is hashed (BLAKE2) to one of ``dimensions`` slots with a hash-chosen sign,
  the weights are summed, and the vector is L2-normalised.

Cosine similarity is then roughly the weighted overlap of words and character pairs.
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from functools import lru_cache

__all__ = ["cosine", "embed"]

_WORD = re.compile(r"[a-z0-9]+|[\u3400-\u9fff\uf900-\ufaff]+")
_CJK_START = "\u3400"


@lru_cache(maxsize=1 << 16)
def _feature_hash(feature: str) -> int:
    return int.from_bytes(hashlib.blake2b(feature.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


def _features(text: str) -> dict[str, float]:
    weights: dict[str, float] = {}
    for run in _WORD.findall(unicodedata.normalize("NFKC", text).lower()):
        if run[0] >= _CJK_START:
            for ch in run:
                weights[ch] = weights.get(ch, 0.0) + 0.5
            for i in range(len(run) - 1):
                pair = run[i:i + 2]
                weights[pair] = weights.get(pair, 0.0) + 1.0
        else:
            key = "w:" + run
            weights[key] = weights.get(key, 0.0) + 1.0
    return weights


def embed(text: str, dimensions: int) -> list[float]:
    """A unit vector of ``dimensions`` floats for ``text`` (rounded to 6 decimals)."""
    vector = [0.0] * dimensions
    features = _features(text) or {"raw:" + text: 1.0}
    for feature, weight in features.items():
        h = _feature_hash(feature)
        vector[h % dimensions] += weight if h >> 63 else -weight
    norm = math.sqrt(sum(v * v for v in vector))
    if norm == 0.0:
        vector[_feature_hash("raw:" + text) % dimensions] = 1.0
        norm = 1.0
    return [round(v / norm, 6) for v in vector]


def cosine(a: list[float], b: list[float]) -> float:
    """Cosine similarity of two vectors (0.0 when either is all zeros)."""
    dot = sum(x * y for x, y in zip(a, b))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0
