"""Limits and knobs of a server instance."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ServerSettings:
    """Configuration of :func:`matforge.server.create_app`.

    Sizes in bytes. ``model_root`` is where trained models are kept (a
    :mod:`matforge.models.registry` root); None puts them in ``server-models/`` next to a
    SQLite store, else under ``$MATFORGE_HOME/models``.
    """

    #: largest CSV upload, and most data rows one upload (CSV or JSON) may have
    max_upload_bytes: int = 50 * 1024 * 1024
    max_upload_rows: int = 200_000
    #: most columns of a CSV upload (checked from its header line), and most distinct
    #: condition names plus fields of one JSON batch; more is answered 413
    max_upload_columns: int = 1000
    #: largest JSON request body
    max_body_bytes: int = 20 * 1024 * 1024
    #: page sizes of list endpoints
    default_page_size: int = 100
    max_page_size: int = 1000
    #: formulas per prediction request
    max_predict_formulas: int = 10_000
    #: background jobs: worker threads, queue polling interval, how often the worker renews
    #: the lease of a job it runs (and looks for jobs of dead workers to recover), and how long
    #: a lease lasts: a running job not renewed for ``job_stale_s`` is taken for dead (seconds)
    job_workers: int = 2
    job_poll_s: float = 0.5
    job_heartbeat_s: float = 5.0
    job_stale_s: float = 60.0
    #: a job kind that may be re-run is re-queued after a crash at most this many times
    job_max_attempts: int = 3
    #: most candidate compositions one screen may enumerate
    max_screen_candidates: int = 200_000
    #: largest XRD pattern file
    max_pattern_bytes: int = 10 * 1024 * 1024
    #: most pattern files one batch identification (``POST /xrd/identify/batch``) may carry
    max_xrd_batch_files: int = 50
    #: trained models kept in memory for prediction
    model_cache_size: int = 8
    model_root: Path | None = None
    #: folder of the temporary copies of CSV uploads, emptied of those a killed server left
    #: when the server starts; None: ``uploads/`` next to ``model_root``
    upload_dir: Path | None = None
    #: weights of the XRD classifier (``.pt``, its ``.json`` next to it); None: the shipped ones
    xrd_model: Path | None = None
    #: absolute URL the server is reached at (``https://lab.example.org``), which OPTIMADE's
    #: links start with; None: the address it listens on (never the request's Host header)
    base_url: str | None = None

    @classmethod
    def from_env(cls, **overrides) -> ServerSettings:
        """Settings from ``MATFORGE_SERVER_*`` environment variables (then ``overrides``).

        ``MATFORGE_SERVER_MAX_UPLOAD_BYTES=1000000`` sets ``max_upload_bytes``, and so on.
        """
        values = {}
        for name, field in cls.__dataclass_fields__.items():
            raw = os.environ.get(f"MATFORGE_SERVER_{name.upper()}")
            if raw is None:
                continue
            kind = field.type if isinstance(field.type, type) else str(field.type)
            if name in ("model_root", "xrd_model", "upload_dir"):
                values[name] = Path(raw)
            elif name == "base_url":
                values[name] = raw
            elif "float" in str(kind):
                values[name] = float(raw)
            else:
                values[name] = int(raw)
        values.update(overrides)
        return cls(**values)
