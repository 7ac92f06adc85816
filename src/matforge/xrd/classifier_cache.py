"""The XRD classifier a long-running process serves, loaded once per weights file version.

A server keeps one :class:`ClassifierCache` in its explicit state; a notebook may keep one too.
Importing this module is light: torch loads with the first classifier.
"""

from __future__ import annotations

import threading
from pathlib import Path

__all__ = ["ClassifierCache"]


class ClassifierCache:
    """The :class:`~matforge.xrd.cnn.XRDClassifier` of a ``.pt`` file (its ``.json`` metadata
    beside it), loaded on first use and kept while the file is unchanged: weights retrained in
    place are picked up (the key holds the file's modification time). One classifier is kept;
    concurrent callers share one load."""

    def __init__(self, device: str = "cpu"):
        self.device = device
        self._lock = threading.Lock()
        self._loaded: dict[tuple[str, int], object] = {}

    def get(self, pt: str | Path):
        """The classifier of ``pt``; raises :class:`FileNotFoundError` (an :class:`OSError`)
        when the weights or their metadata are missing."""
        pt = Path(pt)
        key = (str(pt), pt.stat().st_mtime_ns)
        if not pt.with_suffix(".json").is_file():
            raise FileNotFoundError(pt.with_suffix(".json"))
        with self._lock:
            clf = self._loaded.get(key)
            if clf is None:
                from matforge.xrd.cnn import XRDClassifier

                clf = XRDClassifier.load(pt, device=self.device)
                self._loaded.clear()
                self._loaded[key] = clf
        return clf
