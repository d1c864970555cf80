"""Sentence embeddings, offline: the WordLlama model whose weights ship inside its wheel.

Loaded once per process, on first use, behind a lock (workers run threads); numpy too
is imported at the first use, so a process that never embeds holds neither. It is
loaded with downloads disabled from the package's own directory, so it never reaches
for the internet. Vectors are float32 and of unit length: a dot product is the cosine.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

_model: Any = None
_loading = threading.Lock()


def model() -> Any:
    global _model
    if _model is None:
        with _loading:
            if _model is None:
                import wordllama  # deferred: importing it costs time a web request need not pay

                _model = wordllama.WordLlama.load(cache_dir=Path(wordllama.__file__).parent,
                                                  disable_download=True)
    return _model


def embed(texts: Sequence[str]) -> np.ndarray:
    """One unit-length float32 row per text (an empty text gives a zero row)."""
    import numpy as np

    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    # A text without known tokens normalises 0/0: silence that and make it a zero row.
    with np.errstate(invalid="ignore", divide="ignore"):
        vectors = np.asarray(model().embed(list(texts), norm=True), dtype=np.float32)
    return np.nan_to_num(vectors)


def to_bytes(vector: np.ndarray) -> bytes:
    import numpy as np

    return np.asarray(vector, dtype=np.float32).tobytes()


def from_bytes(data: bytes) -> np.ndarray:
    import numpy as np

    return np.frombuffer(data, dtype=np.float32)


def similarity(query: str, texts: Sequence[str]) -> np.ndarray:
    """Cosine similarity of `query` to each text, in order."""
    import numpy as np

    if not texts:
        return np.zeros(0, dtype=np.float32)
    vectors = embed([query, *texts])
    return vectors[1:] @ vectors[0]


def rank(query: str, texts: Sequence[str], k: int | None = None) -> list[tuple[int, float]]:
    """(index, score) of the texts most similar to `query`, best first."""
    return top(similarity(query, texts), k)


def top(scores: np.ndarray, k: int | None = None) -> list[tuple[int, float]]:
    import numpy as np

    order = np.argsort(-scores, kind="stable")
    return [(int(i), float(scores[i])) for i in order[:k]]
