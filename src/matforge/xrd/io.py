"""Powder-diffraction pattern files: read, convert, write.

Supported on reading: two-column text (``.xy``, ``.xye`` with a third esd column, ``.csv``,
``.txt``, ``.dat``, ``.asc``; comma, whitespace, tab or semicolon separated, header and comment
lines allowed; x in degrees 2θ or in Q (Å⁻¹ or nm⁻¹)) and PANalytical ``.xrdml``. Bruker
``.brml``/``.raw`` are recognised and refused with a message: no maintained reader is
installable from PyPI (``xylib-py`` is a 2020 source-only C++ build).

Every malformed input raises :class:`~matforge.errors.PatternFileError` naming the file and,
where there is one, the line.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from matforge.errors import PatternFileError
from matforge.xrd.radiation import CU_KA1

TEXT_SUFFIXES = (".xy", ".xye", ".csv", ".txt", ".dat", ".asc")
UNSUPPORTED_SUFFIXES = {
    ".brml": "Bruker BRML",
    ".raw": "Bruker/Rigaku RAW",
    ".rd": "Philips RD",
    ".sd": "Philips SD",
    ".uxd": "Bruker UXD",
}
_COMMENT_PREFIXES = ("#", "!", "%", "//", "'")
_Q_HEADER = re.compile(r"q(?![a-z0-9])", re.IGNORECASE)
_NM_HEADER = re.compile(r"nm\s*(\^?\s*-\s*1|⁻¹)|1\s*/\s*nm", re.IGNORECASE)
_TTH_HEADER = re.compile(r"2\s*-?\s*th|2θ|two[\s_-]*theta|tth|angle|x\b", re.IGNORECASE)
_WAVELENGTH_HEADER = re.compile(
    r"(?:wavelength|lambda|λ)\s*(?:\([^)]*\))?\s*[=:]?\s*([0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?)(\s*nm\b)?",
    re.IGNORECASE,
)

Axis = Literal["2theta", "q"]


@dataclass(eq=False)
class Pattern:
    """A measured (or simulated) powder pattern on a 2θ axis.

    Attributes:
        two_theta: scattering angles in degrees 2θ, strictly increasing, shape (n,).
        intensity: intensities (counts or arbitrary units), shape (n,).
        wavelength: radiation wavelength in Å (default Cu Kα1, 1.5406 Å).
        source: where the pattern came from (file path or a description).
        meta: free-form metadata read from the file (header lines, instrument fields).
        esd: estimated standard deviations of the intensities, shape (n,), or None.
    """

    two_theta: np.ndarray
    intensity: np.ndarray
    wavelength: float = CU_KA1
    source: str = ""
    meta: dict = field(default_factory=dict)
    esd: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.two_theta = np.asarray(self.two_theta, dtype=float)
        self.intensity = np.asarray(self.intensity, dtype=float)
        if self.esd is not None:
            self.esd = np.asarray(self.esd, dtype=float)
        if self.two_theta.ndim != 1 or self.two_theta.shape != self.intensity.shape:
            raise ValueError(
                f"two_theta and intensity must be 1-D arrays of equal length, got shapes "
                f"{self.two_theta.shape} and {self.intensity.shape}"
            )
        if self.esd is not None and self.esd.shape != self.two_theta.shape:
            raise ValueError(f"esd has shape {self.esd.shape}, expected {self.two_theta.shape}")
        if not (math.isfinite(self.wavelength) and self.wavelength > 0):
            raise ValueError(f"wavelength must be a positive number of Å, got {self.wavelength!r}")

    def __len__(self) -> int:
        return len(self.two_theta)

    def __repr__(self) -> str:
        rng = f"{self.two_theta[0]:.3f}–{self.two_theta[-1]:.3f}°" if len(self) else "empty"
        return (
            f"Pattern({len(self)} points, 2θ {rng}, λ={self.wavelength} Å, source={self.source!r})"
        )

    def _repr_html_(self) -> str:
        from matforge.notebook import pattern_html

        return pattern_html(self)

    @property
    def q(self) -> np.ndarray:
        """Scattering vector magnitude Q = 4π sin θ / λ in Å⁻¹."""
        return 4 * np.pi * np.sin(np.radians(self.two_theta) / 2) / self.wavelength

    def resample(self, grid) -> np.ndarray:
        """Intensities linearly interpolated onto ``grid`` (degrees 2θ); zero outside the data."""
        grid = np.asarray(grid, dtype=float)
        if len(self) == 0:
            return np.zeros_like(grid)
        return np.interp(grid, self.two_theta, self.intensity, left=0.0, right=0.0)

    def to_wavelength(self, wavelength: float) -> Pattern:
        """The same pattern as it would be recorded at ``wavelength`` (Å).

        Each point keeps its d-spacing (Bragg's law, sin θ' = sin θ · λ'/λ); points whose
        d-spacing cannot diffract at the new wavelength (sin θ' > 1) are dropped.
        """
        if not (math.isfinite(wavelength) and wavelength > 0):
            raise ValueError(f"wavelength must be a positive number of Å, got {wavelength!r}")
        sin_new = np.sin(np.radians(self.two_theta) / 2) * (wavelength / self.wavelength)
        keep = sin_new <= 1.0
        two_theta = 2 * np.degrees(np.arcsin(sin_new[keep]))
        return Pattern(
            two_theta,
            self.intensity[keep],
            wavelength=float(wavelength),
            source=self.source,
            meta=dict(self.meta),
            esd=None if self.esd is None else self.esd[keep],
        )


def q_to_two_theta(q, wavelength: float) -> np.ndarray:
    """Convert Q (Å⁻¹) to degrees 2θ at ``wavelength`` (Å): 2θ = 2 asin(Qλ / 4π).

    Values with Qλ/4π > 1 (not reachable at that wavelength) become NaN.
    """
    s = np.asarray(q, dtype=float) * wavelength / (4 * np.pi)
    with np.errstate(invalid="ignore"):
        return np.where(np.abs(s) <= 1, 2 * np.degrees(np.arcsin(np.clip(s, -1, 1))), np.nan)


# ---------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------


def read_pattern(path, *, wavelength: float | None = None, axis: Axis | None = None) -> Pattern:
    """Read a powder pattern file.

    Args:
        path: ``.xy``, ``.xye``, ``.csv``, ``.txt``, ``.dat``, ``.asc`` or ``.xrdml`` file.
        wavelength: wavelength in Å. Overrides a wavelength stated in the file; when neither
            is given, Cu Kα1 (1.5406 Å) is assumed and ``meta["wavelength_assumed"]`` is True.
        axis: what the first text column holds: ``"2theta"`` (degrees) or ``"q"`` (Å⁻¹, or
            nm⁻¹ when the header says so). ``None`` detects Q from a header line, else 2θ.
            Q is converted to 2θ with the wavelength.

    Returns:
        A :class:`Pattern` with strictly increasing 2θ (a strictly decreasing scan is reversed).

    Raises:
        PatternFileError: unreadable, malformed or unsupported file, naming file and line.
    """
    path = Path(path)
    if axis is not None and axis not in ("2theta", "q"):
        raise ValueError(f"axis must be '2theta', 'q' or None, got {axis!r}")
    if wavelength is not None and not (math.isfinite(wavelength) and wavelength > 0):
        raise ValueError(f"wavelength must be a positive number of Å, got {wavelength!r}")
    suffix = path.suffix.lower()
    if suffix in UNSUPPORTED_SUFFIXES:
        raise PatternFileError(
            f"{path}: {UNSUPPORTED_SUFFIXES[suffix]} files are not supported yet; export the "
            f"pattern to .xy (two columns: 2θ, intensity) from the instrument software"
        )
    if suffix != ".xrdml" and suffix not in TEXT_SUFFIXES:
        raise PatternFileError(
            f"{path}: unknown pattern file type {suffix!r}; supported: "
            f"{', '.join(TEXT_SUFFIXES + ('.xrdml',))}"
        )
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PatternFileError(f"{path}: cannot read file ({exc.strerror or exc})") from exc
    if suffix == ".xrdml":
        if axis == "q":
            raise PatternFileError(
                f"{path}: .xrdml files are read on their 2Theta axis; axis='q' does not apply"
            )
        return _read_xrdml(raw, path, wavelength)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return _read_text(text, path, wavelength, axis, n_columns=3 if suffix == ".xye" else None)


def _split(line: str) -> list[str]:
    if ";" in line:
        # European CSV: ';' separates fields and ',' is the decimal mark
        return [c.strip().replace(",", ".") for c in line.split(";")]
    if "," in line:
        return [c.strip() for c in line.split(",")]
    return line.split()


def _is_numeric(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _read_text(
    text: str, path: Path, wavelength: float | None, axis: Axis | None, n_columns: int | None
) -> Pattern:
    header: list[str] = []
    rows: list[tuple[float, ...]] = []
    line_numbers: list[int] = []
    width: int | None = None
    for lineno, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith(_COMMENT_PREFIXES):
            if not rows:
                header.append(stripped)
            continue
        cells = _split(stripped)
        if cells and cells[-1] == "" and len(cells) > 1:
            cells = cells[:-1]  # a trailing separator, as spreadsheets write
        if width is None:
            if not all(_is_numeric(c) for c in cells):
                if _is_numeric(cells[0]):  # "12.5, abc" is broken data, "2theta, I" a header
                    bad = next(c for c in cells if not _is_numeric(c))
                    raise PatternFileError(f"{path}, line {lineno}: non-numeric value {bad!r}")
                header.append(stripped)  # a column-name line before the data
                continue
            width = len(cells)
            expected = (n_columns,) if n_columns else (2, 3)
            if width not in expected:
                raise PatternFileError(
                    f"{path}, line {lineno}: {width} columns, expected "
                    f"{' or '.join(map(str, expected))} (x, intensity{', esd' if 3 in expected else ''})"
                )
        if len(cells) != width:
            raise PatternFileError(
                f"{path}, line {lineno}: {len(cells)} columns where the data has {width}"
            )
        values = []
        for cell in cells:
            try:
                v = float(cell)
            except ValueError:
                raise PatternFileError(
                    f"{path}, line {lineno}: non-numeric value {cell!r}"
                ) from None
            if not math.isfinite(v):
                raise PatternFileError(f"{path}, line {lineno}: value {cell!r} is not finite")
            values.append(v)
        rows.append(tuple(values))
        line_numbers.append(lineno)
    if not rows:
        raise PatternFileError(f"{path}: no data lines found (empty file or header only)")

    data = np.array(rows, dtype=float)
    x, intensity = data[:, 0], data[:, 1]
    esd = data[:, 2] if data.shape[1] == 3 else None
    header_text = "\n".join(header)
    meta: dict = {"header": header} if header else {}

    if wavelength is None:
        m = _WAVELENGTH_HEADER.search(header_text)
        if m and float(m.group(1)) > 0:
            wavelength = float(m.group(1)) * (10.0 if m.group(2) else 1.0)  # nm -> Å
            if not math.isfinite(wavelength):
                raise PatternFileError(
                    f"{path}: the header's wavelength {m.group(0).strip()!r} is not a finite number"
                )
            meta["wavelength_from"] = "header"
        else:
            wavelength = CU_KA1
            meta["wavelength_assumed"] = True
    else:
        meta["wavelength_from"] = "argument"
    if axis is None:
        axis, named = _detect_axis(header)
        meta["axis_from"] = "header" if named else "assumed"
    else:
        meta["axis_from"] = "argument"
    meta["axis"] = axis

    if esd is not None and (esd < 0).any():
        i = int(np.argmax(esd < 0))
        raise PatternFileError(f"{path}, line {line_numbers[i]}: negative esd {float(esd[i])!r}")

    # the file's own axis must be monotonic (a decreasing scan is reversed) before conversion
    descending = len(x) > 1 and x[1] < x[0]
    x, intensity, esd = _monotonic(x, intensity, esd, path, line_numbers)
    if descending:
        line_numbers = line_numbers[::-1]
    if axis == "q":
        q = x / 10.0 if _NM_HEADER.search(header_text) else x
        if (q < 0).any():
            i = int(np.argmax(q < 0))
            raise PatternFileError(f"{path}, line {line_numbers[i]}: negative Q {float(x[i])!r}")
        x = q_to_two_theta(q, wavelength)
        if np.isnan(x).any():
            i = int(np.argmax(np.isnan(x)))
            raise PatternFileError(
                f"{path}, line {line_numbers[i]}: Q = {float(q[i])!r} Å⁻¹ cannot diffract at "
                f"λ = {wavelength} Å (Qλ/4π > 1); is the wavelength right?"
            )
        meta["q"] = q
    else:
        bad = (x < 0) | (x > 180)
        if bad.any():
            i = int(np.argmax(bad))
            raise PatternFileError(
                f"{path}, line {line_numbers[i]}: 2θ = {float(x[i])!r}° is outside 0–180°"
            )

    return Pattern(x, intensity, wavelength=float(wavelength), source=str(path), meta=meta, esd=esd)


def _detect_axis(header: list[str]) -> tuple[Axis, bool]:
    """(axis, named): Q when the first column name of the last column-name line is Q, 2θ when
    it names 2θ; 2θ, not named, when no header line names the first column."""
    for line in reversed(header):  # the column-name line is usually the last header line
        cells = _split(line.lstrip("#!%/' \t"))
        if len(cells) < 2:
            continue
        if _Q_HEADER.match(cells[0]):
            return "q", True
        if _TTH_HEADER.match(cells[0]):
            return "2theta", True
    return "2theta", False


def _monotonic(x, intensity, esd, path, line_numbers):
    if len(x) == 1:
        return x, intensity, esd
    step = np.diff(x)
    if (step > 0).all():
        return x, intensity, esd
    if (step < 0).all():
        if esd is not None:
            esd = esd[::-1].copy()
        return x[::-1].copy(), intensity[::-1].copy(), esd
    nonzero = step[step != 0]
    increasing = not len(nonzero) or nonzero[0] > 0
    i = int(np.argmax(step <= 0)) if increasing else int(np.argmax(step >= 0))
    raise PatternFileError(
        f"{path}, line {line_numbers[i + 1]}: x = {float(x[i + 1])!r} after {float(x[i])!r}; the x axis "
        f"must be strictly {'increasing' if increasing else 'decreasing'}"
    )


# ---------------------------------------------------------------------------------------
# PANalytical XRDML
# ---------------------------------------------------------------------------------------


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _parse_with_lines(raw: bytes, path: Path) -> tuple[ET.Element, dict[int, int]]:
    """Parse XML, recording the line on which each element starts (ElementTree keeps none)."""
    parser = ET.XMLPullParser(events=("start",))
    start_line: dict[int, int] = {}
    root = None
    try:
        for lineno, line in enumerate(raw.splitlines(keepends=True), start=1):
            parser.feed(line)
            for _, elem in parser.read_events():
                start_line[id(elem)] = lineno
                if root is None:
                    root = elem
        parser.close()
    except ET.ParseError as exc:
        line = exc.position[0] if exc.position else "?"
        raise PatternFileError(f"{path}, line {line}: not well-formed XML ({exc})") from None
    if root is None:
        raise PatternFileError(f"{path}: no XML elements (empty file)")
    return root, start_line


def _find(elem: ET.Element, name: str) -> ET.Element | None:
    for child in elem.iter():
        if _local(child.tag) == name:
            return child
    return None


def _numbers(elem: ET.Element, path: Path, lines: dict[int, int], what: str) -> np.ndarray:
    text = elem.text or ""
    first_line = lines.get(id(elem), 0)
    out = []
    for m in re.finditer(r"\S+", text):
        tok = m.group()
        try:
            v = float(tok)
        except ValueError:
            v = None
        if v is None or not math.isfinite(v):
            line = first_line + text.count("\n", 0, m.start())
            kind = "non-numeric" if v is None else "non-finite"
            raise PatternFileError(f"{path}, line {line}: {kind} value {tok!r} in <{what}>")
        out.append(v)
    return np.array(out, dtype=float)


def _read_xrdml(raw: bytes, path: Path, wavelength: float | None) -> Pattern:
    root, lines = _parse_with_lines(raw, path)
    if _local(root.tag) != "xrdMeasurements":
        raise PatternFileError(
            f"{path}: root element is <{_local(root.tag)}>, not <xrdMeasurements>"
        )

    meta: dict = {"format": "xrdml"}
    if wavelength is None:
        ka1 = _find(root, "kAlpha1")
        if ka1 is not None and ka1.text and ka1.text.strip():
            try:
                wavelength = float(ka1.text)
            except ValueError:
                raise PatternFileError(
                    f"{path}, line {lines.get(id(ka1), '?')}: kAlpha1 wavelength {ka1.text.strip()!r} is not a number"
                ) from None
            if not (math.isfinite(wavelength) and wavelength > 0):
                raise PatternFileError(
                    f"{path}, line {lines.get(id(ka1), '?')}: kAlpha1 wavelength {wavelength!r} is not positive"
                )
            meta["wavelength_from"] = "usedWavelength/kAlpha1"
        else:
            wavelength = CU_KA1
            meta["wavelength_assumed"] = True
    for name in ("kAlpha2", "ratioKAlpha2KAlpha1"):
        el = _find(root, name)
        if el is not None and el.text and _is_numeric(el.text.strip()):
            meta[name] = float(el.text)

    scans = [el for el in root.iter() if _local(el.tag) == "dataPoints"]
    if not scans:
        raise PatternFileError(f"{path}: no <dataPoints> element")
    if len(scans) > 1:
        meta["n_scans"] = len(scans)  # repeated scans: the first is read
    dp = scans[0]
    dp_line = lines.get(id(dp), "?")

    counts = None
    for name in ("intensities", "counts"):
        el = next((c for c in dp if _local(c.tag) == name), None)
        if el is not None:
            counts = _numbers(el, path, lines, name)
            meta["intensity_unit"] = el.get("unit", name)
            break
    if counts is None:
        raise PatternFileError(
            f"{path}, line {dp_line}: <dataPoints> has no <intensities> or <counts>"
        )
    if counts.size == 0:
        raise PatternFileError(f"{path}, line {dp_line}: <dataPoints> holds no intensities")

    pos = next(
        (c for c in dp if _local(c.tag) == "positions" and c.get("axis", "").lower() == "2theta"),
        None,
    )
    if pos is None:
        raise PatternFileError(
            f'{path}, line {dp_line}: no <positions axis="2Theta"> in <dataPoints>'
        )
    pos_line = lines.get(id(pos), "?")
    listed = next((c for c in pos if _local(c.tag) == "listPositions"), None)
    if listed is not None:
        two_theta = _numbers(listed, path, lines, "listPositions")
        if two_theta.size != counts.size:
            raise PatternFileError(
                f"{path}, line {lines.get(id(listed), pos_line)}: {two_theta.size} listed 2θ "
                f"positions but {counts.size} intensities"
            )
    else:
        ends = {}
        for name in ("startPosition", "endPosition"):
            el = next((c for c in pos if _local(c.tag) == name), None)
            if el is None:
                raise PatternFileError(f"{path}, line {pos_line}: 2Theta positions lack <{name}>")
            vals = _numbers(el, path, lines, name)
            if vals.size != 1:
                raise PatternFileError(
                    f"{path}, line {lines.get(id(el), pos_line)}: <{name}> must hold one number"
                )
            ends[name] = vals[0]
        if counts.size == 1:
            two_theta = np.array([ends["startPosition"]])
        else:
            two_theta = np.linspace(ends["startPosition"], ends["endPosition"], counts.size)
    bad = (two_theta < 0) | (two_theta > 180)
    if bad.any():
        raise PatternFileError(
            f"{path}, line {pos_line}: 2θ = {float(two_theta[np.argmax(bad)])!r}° is outside 0–180°"
        )
    t = _find(root, "commonCountingTime")
    if t is not None and t.text and _is_numeric(t.text.strip()):
        meta["counting_time_s"] = float(t.text)
    line_numbers = [pos_line] * len(two_theta)
    two_theta, counts, _ = _monotonic(two_theta, counts, None, path, line_numbers)
    return Pattern(two_theta, counts, wavelength=float(wavelength), source=str(path), meta=meta)


# ---------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------


def write_xy(pattern: Pattern, path) -> Path:
    """Write ``pattern`` as whitespace-separated text (``2θ intensity [esd]``).

    The header comment records the wavelength (Å) and source so that :func:`read_pattern`
    reads the file back to an identical pattern; numbers are written with full precision.
    """
    path = Path(path)
    cols = [pattern.two_theta.tolist(), pattern.intensity.tolist()]
    if pattern.esd is not None:
        cols.append(pattern.esd.tolist())
    lines = [
        "# written by matforge.xrd.io.write_xy",
        f"# wavelength = {float(pattern.wavelength)!r} A",
    ]
    if pattern.source:
        lines.append(f"# source: {pattern.source}".replace("\n", " "))
    lines.append("# 2theta_deg intensity" + (" esd" if pattern.esd is not None else ""))
    lines.extend(" ".join(repr(v) for v in row) for row in zip(*cols, strict=True))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
