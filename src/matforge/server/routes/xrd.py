"""XRD: identify the structure of an uploaded powder pattern with the trained classifier
(:func:`matforge.xrd.identify.identify`), and simulate the best matches for an overlay
(:func:`matforge.xrd.identify.match_prototype`); or summarise many patterns at once, one row
each (:func:`matforge.xrd.identify.identify_files`).

The pattern files are read like ``matforge xrd identify`` reads them
(:func:`matforge.xrd.io.read_pattern`: ``.xy``, ``.xye``, ``.csv``, ``.txt``, ``.dat``,
``.asc``, ``.xrdml``), each within ``max_pattern_bytes``. Without trained weights the server
answers 503 and says so.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from importlib.resources import files
from pathlib import Path
from typing import Annotated

import numpy as np
from fastapi import APIRouter, File, Form, UploadFile

from matforge.errors import MatforgeError
from matforge.jsonable import to_jsonable
from matforge.server.api import ERROR_RESPONSES, ApiError, CurrentUser, ServerState, State
from matforge.server.routes.uploads import _COPY_CHUNK
from matforge.server.schemas import (
    XrdBatchOut,
    XrdBatchRowOut,
    XrdCandidateOut,
    XrdIdentifyOut,
    XrdMatchOut,
)

router = APIRouter(
    tags=["xrd"],
    responses={
        **ERROR_RESPONSES,
        503: {
            "model": ERROR_RESPONSES[400]["model"],
            "description": "This server has no trained XRD classifier (weights file missing).",
        },
    },
)

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")
_FORMATS = ".xy, .xye, .csv, .txt, .dat, .asc or .xrdml"
Wavelength = Annotated[
    float | None,
    Form(gt=0.1, le=5.0, description="Wavelength in Å when a file does not state it."),
]
#: most points of the measured pattern sent back for the plot
MAX_PLOT_POINTS = 4000
#: the shipped classifier (``matforge.xrd.cnn.MODEL_NAME`` in ``matforge.xrd.cnn.bundled_dir()``;
#: not imported from there, which would load torch just to find a path)
SHIPPED_WEIGHTS = ("data", "cnn_v1.pt")


def weights_path(state: ServerState) -> Path:
    """The ``.pt`` file of the classifier this server uses (``ServerSettings.xrd_model``, else
    the shipped one); its ``.json`` metadata sits next to it."""
    configured = state.settings.xrd_model
    if configured is not None:
        return Path(configured).with_suffix(".pt")
    return Path(str(files("matforge.xrd").joinpath(*SHIPPED_WEIGHTS)))


def _classifier(state: ServerState):
    """The app's classifier (:func:`weights_path`, loaded through the state's
    :class:`~matforge.xrd.classifier_cache.ClassifierCache`), or 503 when its weights are
    missing."""
    try:
        return state.xrd_classifiers.get(weights_path(state))
    except OSError:
        raise ApiError(
            503,
            "this server has no trained XRD classifier (its weights file is missing); "
            "train one with `matforge xrd train` or install the shipped weights",
        ) from None


def _safe_name(upload: UploadFile) -> str:
    """The upload's file name without folders, leading dots or characters outside
    ``[A-Za-z0-9._-]``: safe to write into a temporary folder and to send back."""
    name = _SAFE_NAME.sub("_", Path(upload.filename or "pattern.xy").name)[:200].lstrip(".")
    return name or "pattern.xy"


def _save(upload: UploadFile, dest: Path, max_bytes: int) -> None:
    size = 0
    with open(dest, "wb") as out:
        while chunk := upload.file.read(_COPY_CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise ApiError(
                    413, f"the upload is larger than the server's limit of {max_bytes:,} bytes"
                )
            out.write(chunk)


def _for_plot(x: np.ndarray, y: np.ndarray) -> tuple[list[float], list[float]]:
    """At most MAX_PLOT_POINTS points: the maximum of each bin, so no peak is lost."""
    if len(x) > MAX_PLOT_POINTS:
        edges = np.linspace(0, len(x), MAX_PLOT_POINTS + 1).astype(int)
        x = np.array([x[a:b].mean() for a, b in zip(edges[:-1], edges[1:], strict=True)])
        y = np.maximum.reduceat(y, edges[:-1])
    return [float(v) for v in x], [float(v) if np.isfinite(v) else 0.0 for v in y]


def _candidates(items) -> list[XrdCandidateOut]:
    return [XrdCandidateOut(name=c.name, probability=float(c.probability)) for c in items]


@router.post("/xrd/identify", response_model=XrdIdentifyOut)
def identify_pattern(
    state: State,
    user: CurrentUser,
    file: Annotated[UploadFile, File(description=f"Powder pattern: {_FORMATS}.")],
    k: Annotated[int, Form(ge=1, le=20, description="How many structures to return.")] = 5,
    overlay: Annotated[
        int, Form(ge=0, le=5, description="How many of them to simulate for the overlay.")
    ] = 1,
    wavelength: Wavelength = None,
) -> XrdIdentifyOut:
    """The ``k`` most probable AFLOW prototypes of a measured powder pattern, with calibrated
    probabilities (0–1), their space groups, and for the first ``overlay`` of them the
    simulated profile (lattice scale fitted to the pattern) to draw under the measurement.
    Also the most probable crystal systems and space groups. 2θ in degrees (Cu Kα1)."""
    from matforge.xrd.identify import identify, overlay_fits
    from matforge.xrd.io import read_pattern
    from matforge.xrd.radiation import CU_KA1

    clf = _classifier(state)  # 503 before reading a file we cannot use
    name = _safe_name(file)
    tmpdir = Path(tempfile.mkdtemp(prefix="matforge-xrd-"))
    try:
        path = tmpdir / name
        _save(file, path, state.settings.max_pattern_bytes)
        try:
            pattern = read_pattern(path, wavelength=wavelength)
            result = identify(pattern, model=clf, top=k)
        except (MatforgeError, ValueError) as exc:
            raise ApiError(400, str(exc).replace(str(path), name)) from None
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    space_groups = clf.classes.get("spacegroup", [])
    fits = overlay_fits(pattern, result, overlay)
    matches = []
    for i, c in enumerate(result.candidates.get("prototype", [])):
        info = result.prototype_info.get(c.name) or {}
        sg = info.get("spacegroup")
        described = ", ".join(str(v) for v in (info.get("formula"), info.get("mineral")) if v)
        match = XrdMatchOut(
            name=f"{c.name} ({described})" if described else c.name,
            prototype=c.name,
            space_group=space_groups[sg - 1]
            if isinstance(sg, int) and 0 < sg <= len(space_groups)
            else None,
            probability=float(c.probability),
        )
        fit = fits[i] if i < len(fits) else None  # None: no example structure to simulate
        if fit is not None:
            match.two_theta, match.intensity = _for_plot(fit.two_theta, fit.intensity)
            match.score = float(fit.score)
            match.lattice_scale = float(fit.scale)
        matches.append(match)
    if abs(pattern.wavelength - CU_KA1) > 1e-6:  # on the axis of the simulated profiles
        pattern = pattern.to_wavelength(CU_KA1)
    two_theta, intensity = _for_plot(pattern.two_theta, pattern.intensity)
    return XrdIdentifyOut(
        source=name,
        wavelength=float(pattern.wavelength),
        two_theta=two_theta,
        intensity=intensity,
        threshold=result.threshold,
        crystal_systems=_candidates(result.candidates.get("crystal_system", [])),
        space_groups=_candidates(result.candidates.get("spacegroup", [])),
        matches=matches,
        warnings=list(result.warnings),
    )


@router.post("/xrd/identify/batch", response_model=XrdBatchOut)
def identify_patterns(
    state: State,
    user: CurrentUser,
    files: Annotated[
        list[UploadFile],
        File(description=f"Powder patterns ({_FORMATS}); at most `max_xrd_batch_files` (50)."),
    ],
    wavelength: Wavelength = None,
) -> XrdBatchOut:
    """One summary row per pattern file, in upload order: the best crystal system, space group
    and AFLOW prototype with their calibrated probabilities (0–1; "uncertain" below the
    classifier's threshold), the cell the peaks index to, and the warnings. A file that cannot
    be read or identified has its ``error`` and the others go on; when no file at all can be,
    the answer is 400 with each file's error. The candidates and the overlay of one pattern:
    ``POST /xrd/identify``."""
    from matforge.xrd.identify import identify_files

    clf = _classifier(state)  # 503 before reading files we cannot use
    limit = state.settings.max_xrd_batch_files
    if len(files) > limit:
        raise ApiError(
            413,
            f"{len(files)} pattern files in one request; this server identifies at most "
            f"{limit:,} at a time: send them in several requests",
        )
    names = [_safe_name(f) for f in files]
    tmpdir = Path(tempfile.mkdtemp(prefix="matforge-xrd-"))
    try:
        # a folder per file: two uploads of the same name stay two files
        paths = [tmpdir / str(i) / name for i, name in enumerate(names)]
        for upload, path in zip(files, paths, strict=True):
            path.parent.mkdir()
            _save(upload, path, state.settings.max_pattern_bytes)
        table = identify_files(paths, clf, wavelength=wavelength)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    rows = []
    for name, path, row in zip(names, paths, to_jsonable(table.to_dict("records")), strict=True):
        warnings = row.get("warnings") or ""
        rows.append(
            XrdBatchRowOut(
                source=name,
                crystal_system=row.get("crystal_system"),
                crystal_system_probability=row.get("crystal_system_probability"),
                space_group=row.get("spacegroup"),
                space_group_probability=row.get("spacegroup_probability"),
                prototype=row.get("prototype"),
                prototype_probability=row.get("prototype_probability"),
                indexed_system=row.get("indexed_system") or None,
                indexed_cell=row.get("indexed_cell") or None,
                m20=row.get("m20"),
                warnings=[w.replace(str(path), name) for w in warnings.split(" | ") if w],
                error=(row.get("error") or "").replace(str(path), name) or None,
            )
        )
    if all(row.error for row in rows):  # nothing identified: the request as a whole failed
        raise ApiError(
            400,
            f"none of the {len(rows)} pattern files could be identified: "
            + "; ".join(row.error for row in rows),
        )
    return XrdBatchOut(files=rows)
