"""Pattern files: reading text and XRDML, malformed input, Q conversion, resampling, writing."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matforge.errors import MatforgeError, PatternFileError
from matforge.xrd.io import CU_KA1, Pattern, q_to_two_theta, read_pattern, write_xy


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------- text


def test_plain_xy_without_header(tmp_path):
    p = read_pattern(write(tmp_path, "a.xy", "10.0 5\n10.5 7.5\n11.0 3\n"))
    np.testing.assert_array_equal(p.two_theta, [10.0, 10.5, 11.0])
    np.testing.assert_array_equal(p.intensity, [5, 7.5, 3])
    assert p.wavelength == CU_KA1 and p.meta["wavelength_assumed"]
    assert p.esd is None
    assert p.source.endswith("a.xy")


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("a.csv", "2theta,intensity\n10,5\n10.5,7.5\n11,3\n"),
        (
            "a.csv",
            "# exported\n# by the diffractometer\n2Theta (deg), Counts\n10, 5\n10.5, 7.5\n11, 3,\n",
        ),
        ("a.txt", "Angle\tIntensity\n10\t5\n10.5\t7.5\n11\t3\n"),
        ("a.csv", "2theta;intensity\n10;5\n10,5;7,5\n11;3\n"),  # decimal comma
        ("a.dat", "! comment\n\n  10   5\n10.5  7.5  \n\n11 3\n"),
        ("a.txt", "\ufeff10 5\r\n10.5 7.5\r\n11 3\r\n"),  # BOM and CRLF
    ],
)
def test_text_variants(tmp_path, name, text):
    p = read_pattern(write(tmp_path, name, text))
    np.testing.assert_array_equal(p.two_theta, [10.0, 10.5, 11.0])
    np.testing.assert_array_equal(p.intensity, [5, 7.5, 3])


def test_xye_third_column_is_esd(tmp_path):
    p = read_pattern(write(tmp_path, "a.xye", "10 100 10\n10.5 81 9\n"))
    np.testing.assert_array_equal(p.esd, [10, 9])


def test_wavelength_from_header_and_caller(tmp_path):
    path = write(tmp_path, "a.xy", "# Wavelength = 0.7093 A\n10 1\n11 2\n")
    assert read_pattern(path).wavelength == 0.7093
    assert read_pattern(path, wavelength=1.79).wavelength == 1.79
    nm = write(tmp_path, "b.xy", "# wavelength: 0.15406 nm\n# lambda/2 filter\n10 1\n11 2\n")
    assert read_pattern(nm).wavelength == pytest.approx(1.5406)


def test_an_infinite_header_wavelength_is_an_error_naming_the_file(tmp_path):
    path = write(tmp_path, "scan.xy", "# wavelength = 1e999\n10 1\n11 2\n")
    with pytest.raises(PatternFileError, match=r"scan\.xy: the header's wavelength .*not a finite"):
        read_pattern(path)


def test_decreasing_scan_is_reversed(tmp_path):
    p = read_pattern(write(tmp_path, "a.xye", "12 3 1\n11 2 1\n10 1 0.5\n"))
    np.testing.assert_array_equal(p.two_theta, [10, 11, 12])
    np.testing.assert_array_equal(p.intensity, [1, 2, 3])
    np.testing.assert_array_equal(p.esd, [0.5, 1, 1])


# ---------------------------------------------------------------------------------- Q axis


def test_q_from_header_converted_with_braggs_law(tmp_path):
    q = np.array([1.0, 2.0, 3.0, 4.0])
    text = "Q(1/A) I\n" + "".join(f"{v} {i}\n" for i, v in enumerate(q))
    p = read_pattern(write(tmp_path, "a.xy", text), wavelength=1.5406)
    expected = np.degrees(2 * np.arcsin(q * 1.5406 / (4 * math.pi)))
    np.testing.assert_allclose(p.two_theta, expected, rtol=0, atol=1e-12)
    assert p.meta["axis"] == "q"
    np.testing.assert_allclose(p.q, q, rtol=1e-12)  # and back


def test_q_in_inverse_nanometres(tmp_path):
    p = read_pattern(write(tmp_path, "a.csv", "q (nm^-1),I\n20,1\n30,2\n"), wavelength=1.5406)
    np.testing.assert_allclose(p.two_theta, q_to_two_theta([2.0, 3.0], 1.5406))


def test_q_by_caller_and_two_theta_header_not_mistaken(tmp_path):
    path = write(tmp_path, "a.xy", "1 5\n2 6\n")
    assert read_pattern(path).two_theta[0] == 1.0
    np.testing.assert_allclose(
        read_pattern(path, axis="q", wavelength=1.0).two_theta, q_to_two_theta([1, 2], 1.0)
    )
    # "quartz" in a comment and a file named q.xy do not make the axis Q
    p = read_pattern(
        write(tmp_path, "q.xy", "# sample: quartz\n# file: q.xy\n2theta counts\n20 1\n21 2\n")
    )
    assert p.meta["axis"] == "2theta" and p.two_theta[0] == 20


def test_descending_q_scan_keeps_q_and_line_numbers_aligned(tmp_path):
    p = read_pattern(write(tmp_path, "a.xy", "Q I\n3 30\n2 20\n1 10\n"))
    np.testing.assert_array_equal(p.meta["q"], [1, 2, 3])
    np.testing.assert_array_equal(p.intensity, [10, 20, 30])
    np.testing.assert_allclose(p.q, [1, 2, 3])
    with pytest.raises(PatternFileError, match=r"line 2: Q = 9.0"):
        read_pattern(write(tmp_path, "b.xy", "Q I\n9 1\n2 1\n1 1\n"))
    with pytest.raises(PatternFileError, match=r"line 4: x = 2.5 after 2.0"):
        read_pattern(write(tmp_path, "c.xy", "Q I\n3 1\n2 1\n2.5 1\n"))


def test_q_beyond_limiting_sphere_is_an_error(tmp_path):
    path = write(tmp_path, "a.xy", "Q I\n1 1\n9 1\n")  # Qλ/4π = 1.1 at Cu Kα1
    with pytest.raises(PatternFileError, match=r"line 3.*cannot diffract"):
        read_pattern(path)


def test_q_to_two_theta_formula():
    q = np.linspace(0, 8, 17)
    lam = 1.5406
    tt = q_to_two_theta(q, lam)
    np.testing.assert_allclose(4 * np.pi * np.sin(np.radians(tt) / 2) / lam, q, atol=1e-12)
    assert np.isnan(q_to_two_theta(9.0, lam))


# ---------------------------------------------------------------------------------- malformed


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("10 1\n11 x\n12 3\n", r"bad\.xy, line 2: non-numeric value 'x'"),
        ("# header\n10 1\n11,abc\n", r"line 3: non-numeric value 'abc'"),
        ("10 1 2 3\n11 1 2 3\n", r"line 1: 4 columns"),
        ("10\n11\n", r"line 1: 1 columns"),
        ("10 1\n11 2 3\n", r"line 2: 3 columns where the data has 2"),
        ("10 1\n11 2\n10.5 3\n", r"line 3: x = 10.5 after 11.0"),
        ("10 1\n10 2\n", r"line 2: x = 10.0 after 10.0"),
        ("10 1\n11 nan\n", r"line 2: value 'nan' is not finite"),
        ("10 1\ninf 1\n", r"line 2: value 'inf' is not finite"),
        ("", r"no data lines"),
        ("# only a comment\n2theta intensity\n", r"no data lines"),
        ("-1 1\n2 1\n", r"line 1: 2θ = -1.0° is outside"),
        ("179 1\n181 1\n", r"line 2: 2θ = 181.0° is outside"),
    ],
)
def test_malformed_text_names_file_and_line(tmp_path, text, pattern):
    with pytest.raises(PatternFileError, match=pattern):
        read_pattern(write(tmp_path, "bad.xy", text))


def test_xye_needs_three_columns(tmp_path):
    with pytest.raises(PatternFileError, match=r"line 1: 2 columns, expected 3"):
        read_pattern(write(tmp_path, "a.xye", "10 1\n11 2\n"))


def test_negative_esd(tmp_path):
    with pytest.raises(PatternFileError, match=r"line 2: negative esd"):
        read_pattern(write(tmp_path, "a.xye", "10 1 1\n11 2 -1\n"))


def test_pattern_file_error_is_a_matforge_value_error(tmp_path):
    with pytest.raises(MatforgeError):
        read_pattern(write(tmp_path, "a.xy", "x y\n1 z\n"))
    assert issubclass(PatternFileError, ValueError)


def test_missing_unknown_and_unsupported_files(tmp_path):
    with pytest.raises(PatternFileError, match="cannot read"):
        read_pattern(tmp_path / "nope.xy")
    with pytest.raises(PatternFileError, match="unknown pattern file type '.foo'"):
        read_pattern(write(tmp_path, "a.foo", "1 2\n"))
    for name in ("scan.brml", "scan.raw"):
        (tmp_path / name).write_bytes(b"PK\x03\x04")
        with pytest.raises(
            PatternFileError, match=r"not supported yet.*export the pattern to \.xy"
        ):
            read_pattern(tmp_path / name)


def test_bad_arguments(tmp_path):
    path = write(tmp_path, "a.xy", "1 2\n2 3\n")
    with pytest.raises(ValueError, match="axis"):
        read_pattern(path, axis="d")
    with pytest.raises(ValueError, match="wavelength"):
        read_pattern(path, wavelength=-1.0)


# ---------------------------------------------------------------------------------- XRDML

XRDML = """<?xml version="1.0" encoding="UTF-8"?>
<xrdMeasurements xmlns="http://www.xrdml.com/XRDMeasurement/1.5" status="Completed">
  <sample type="To be analyzed"><id>quartz</id></sample>
  <xrdMeasurement measurementType="Scan" status="Completed">
    <usedWavelength intended="K-Alpha 1">
      <kAlpha1 unit="Angstrom">1.5405980</kAlpha1>
      <kAlpha2 unit="Angstrom">1.5444260</kAlpha2>
      <kBeta unit="Angstrom">1.3922500</kBeta>
      <ratioKAlpha2KAlpha1>0.5000</ratioKAlpha2KAlpha1>
    </usedWavelength>
    <scan appendNumber="0" mode="Continuous" scanAxis="Gonio" status="Completed">
      <dataPoints>
        <positions axis="2Theta" unit="deg">
          {positions}
        </positions>
        <positions axis="Omega" unit="deg">
          <startPosition>5.0</startPosition>
          <endPosition>7.0</endPosition>
        </positions>
        <commonCountingTime unit="seconds">0.50</commonCountingTime>
        <{tag} unit="counts">{counts}</{tag}>
      </dataPoints>
    </scan>
  </xrdMeasurement>
</xrdMeasurements>
"""
START_END = "<startPosition>10.00</startPosition>\n          <endPosition>14.00</endPosition>"


def xrdml(tmp_path, positions=START_END, counts="1 2 3 4 5", tag="intensities"):
    return write(tmp_path, "scan.xrdml", XRDML.format(positions=positions, counts=counts, tag=tag))


def test_xrdml_start_end_positions(tmp_path):
    p = read_pattern(xrdml(tmp_path))
    np.testing.assert_allclose(p.two_theta, [10, 11, 12, 13, 14])
    np.testing.assert_array_equal(p.intensity, [1, 2, 3, 4, 5])
    assert p.wavelength == 1.540598
    assert p.meta["kAlpha2"] == 1.544426 and p.meta["counting_time_s"] == 0.5


def test_xrdml_list_positions_and_counts(tmp_path):
    pos = "<listPositions>10.0 10.5 11.5</listPositions>"
    p = read_pattern(xrdml(tmp_path, positions=pos, counts="7 8\n 9", tag="counts"))
    np.testing.assert_array_equal(p.two_theta, [10, 10.5, 11.5])
    np.testing.assert_array_equal(p.intensity, [7, 8, 9])
    assert (
        read_pattern(xrdml(tmp_path, positions=pos, counts="7 8 9"), wavelength=0.7).wavelength
        == 0.7
    )


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"counts": "1 2 x 4 5"}, r"line 22: non-numeric value 'x' in <intensities>"),
        ({"counts": "1 2\n3 nan 5"}, r"line 23: non-finite value 'nan'"),
        ({"counts": ""}, r"holds no intensities"),
        ({"tag": "something"}, r"no <intensities> or <counts>"),
        (
            {"positions": "<listPositions>1 2 3</listPositions>"},
            r"3 listed 2θ positions but 5 intensities",
        ),
        ({"positions": "<listPositions>1 3 2 4 5</listPositions>"}, r"strictly increasing"),
        ({"positions": "<startPosition>10</startPosition>"}, r"lack <endPosition>"),
    ],
)
def test_xrdml_malformed(tmp_path, kwargs, pattern):
    with pytest.raises(PatternFileError, match=pattern):
        read_pattern(xrdml(tmp_path, **kwargs))


def test_xrdml_not_xml_or_wrong_root(tmp_path):
    with pytest.raises(PatternFileError, match=r"line 3: not well-formed XML"):
        read_pattern(write(tmp_path, "a.xrdml", "<xrdMeasurements>\n<a>\n</b>\n"))
    with pytest.raises(PatternFileError, match=r"root element is <html>"):
        read_pattern(write(tmp_path, "a.xrdml", "<html></html>"))
    with pytest.raises(PatternFileError, match=r"no <dataPoints>"):
        read_pattern(write(tmp_path, "a.xrdml", "<xrdMeasurements/>"))


# ---------------------------------------------------------------------------------- Pattern


def test_round_trip_exact(tmp_path):
    rng = np.random.default_rng(0)
    tt = np.sort(rng.uniform(5, 120, 500))
    p = Pattern(tt, rng.normal(100, 30, 500), wavelength=0.7093, source="sim\nnewline")
    q = read_pattern(write_xy(p, tmp_path / "out.xy"))
    np.testing.assert_array_equal(q.two_theta, p.two_theta)
    np.testing.assert_array_equal(q.intensity, p.intensity)
    assert q.wavelength == 0.7093 and q.esd is None

    p.esd = np.sqrt(np.abs(p.intensity))
    r = read_pattern(write_xy(p, tmp_path / "out.xye"))
    np.testing.assert_array_equal(r.esd, p.esd)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(0.01, 179.9), min_size=1, max_size=50, unique=True),
    st.floats(0.3, 3.0),
    st.data(),
)
def test_round_trip_property(tmp_path_factory, angles, wavelength, data):
    tt = np.sort(np.array(angles))
    tt = tt[np.concatenate([[True], np.diff(tt) > 0])]
    y = np.array(data.draw(st.lists(st.floats(-1e9, 1e9), min_size=len(tt), max_size=len(tt))))
    p = Pattern(tt, y, wavelength=wavelength)
    path = tmp_path_factory.mktemp("rt") / "p.xy"
    q = read_pattern(write_xy(p, path))
    np.testing.assert_array_equal(q.two_theta, tt)
    np.testing.assert_array_equal(q.intensity, y)
    assert q.wavelength == wavelength


def test_resample_linear_and_zero_outside():
    p = Pattern([10.0, 11.0, 13.0], [0.0, 10.0, 30.0])
    out = p.resample([9.0, 10.0, 10.5, 12.0, 13.0, 14.0])
    np.testing.assert_allclose(out, [0, 0, 5, 20, 30, 0])


def test_to_wavelength_keeps_d_spacings_and_drops_the_unreachable():
    tt = np.linspace(10, 170, 81)
    p = Pattern(tt, np.arange(81.0), wavelength=1.5406)
    d = p.wavelength / (2 * np.sin(np.radians(tt) / 2))
    mo = p.to_wavelength(0.7093)
    np.testing.assert_allclose(mo.wavelength / (2 * np.sin(np.radians(mo.two_theta) / 2)), d)
    assert len(mo) == 81
    cr = p.to_wavelength(2.2897)  # longer wavelength: short d-spacings cannot diffract
    assert len(cr) == int((d >= 2.2897 / 2).sum()) < 81
    np.testing.assert_array_equal(cr.intensity, p.intensity[d >= 2.2897 / 2])
    back = mo.to_wavelength(1.5406)
    np.testing.assert_allclose(back.two_theta, tt, atol=1e-9)


def test_pattern_validates_shapes():
    with pytest.raises(ValueError, match="equal length"):
        Pattern([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="wavelength"):
        Pattern([1.0], [1.0], wavelength=0)


def test_importing_the_xrd_modules_does_not_load_pymatgen():
    import subprocess
    import sys

    code = (
        "import sys, matforge.xrd, matforge.xrd.io, matforge.xrd.simulate\n"
        "print(sorted(m for m in ('pymatgen', 'torch', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from([".xy", ".xye", ".csv", ".txt", ".xrdml"]),
    st.one_of(
        st.binary(max_size=300),
        st.lists(
            st.lists(
                st.sampled_from(["1", "2.5", "-3", "nan", "x", "", "1e400", "Q", "2theta"]),
                max_size=4,
            ).map(lambda cells: st_sep_join(cells)),
            max_size=8,
        ).map(lambda lines: "\n".join(lines).encode()),
    ),
)
def test_any_input_gives_a_pattern_or_a_pattern_file_error(tmp_path_factory, suffix, raw):
    path = tmp_path_factory.mktemp("fuzz") / f"f{suffix}"
    path.write_bytes(raw)
    try:
        p = read_pattern(path)
    except PatternFileError:
        return
    assert len(p) >= 1 and np.all(np.diff(p.two_theta) > 0) and np.isfinite(p.intensity).all()


def st_sep_join(cells: list[str]) -> str:
    return (",", " ", "\t", ";")[len(cells) % 4].join(cells)
