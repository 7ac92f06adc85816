"""Powder XRD simulation: agreement with pymatgen's XRDCalculator, profiles, inputs."""

from __future__ import annotations

import gzip
import json
import math
from importlib.resources import files

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pymatgen.analysis.diffraction.xrd import ATOMIC_SCATTERING_PARAMS, WAVELENGTHS, XRDCalculator
from pymatgen.core import DummySpecies, Lattice, Structure

import matforge.xrd.simulate as sim
from matforge.xrd.simulate import PeakList, profile, simulate

TT_TOL = 1e-4  # degrees 2θ
INT_TOL = 0.5  # on the 0–100 scale


def nearest(xs: np.ndarray, x: np.ndarray) -> np.ndarray:
    j = np.searchsorted(xs, x)
    lo, hi = np.clip(j - 1, 0, len(xs) - 1), np.clip(j, 0, len(xs) - 1)
    return np.where(np.abs(xs[lo] - x) <= np.abs(xs[hi] - x), lo, hi)


def mismatches(ours: PeakList, ref, min_intensity: float = 1.0) -> list[str]:
    """Peaks above ``min_intensity`` on either side without a partner within the tolerances."""
    out = []
    sides = (
        ("pymatgen", np.asarray(ref.x), np.asarray(ref.y), ours.two_theta, ours.intensity),
        ("matforge", ours.two_theta, ours.intensity, np.asarray(ref.x), np.asarray(ref.y)),
    )
    for name, ax, ay, bx, by in sides:
        sel = ay > min_intensity
        if not sel.any():
            continue
        if len(bx) == 0:
            out.append(f"{name} has {sel.sum()} peaks, the other side none")
            continue
        j = nearest(bx, ax[sel])
        bad = (np.abs(bx[j] - ax[sel]) > TT_TOL) | (np.abs(by[j] - ay[sel]) > INT_TOL)
        out += [
            f"{name} peak {x:.5f}° I={y:.3f} unmatched"
            for x, y in zip(ax[sel][bad], ay[sel][bad], strict=True)
        ]
    return out


def families(hkls) -> list[set]:
    return [{(tuple(f["hkl"]), f["multiplicity"]) for f in peak} for peak in hkls]


@pytest.fixture(scope="module")
def prototypes() -> list[Structure]:
    """The 288 AFLOW prototypes: matforge's bundled copy, else pymatgen's own file."""
    try:
        from matforge.datasets import load_structures

        return load_structures("aflow_prototypes")
    except (ImportError, KeyError):
        src = files("pymatgen.analysis.prototypes").joinpath("aflow_prototypes.json.gz")
        with gzip.open(src.open("rb")) as fh:
            return [Structure.from_dict(e["snl"]) for e in json.load(fh)]


def rocksalt(a=5.64, cation="Na", anion="Cl") -> Structure:
    return Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(a), [cation, anion], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )


# ---------------------------------------------------------------------------------- agreement


def test_all_288_aflow_prototypes_agree_with_pymatgen(prototypes):
    assert len(prototypes) == 288
    ours = simulate(prototypes, wavelength="CuKa", two_theta_range=(10, 90))
    calc = XRDCalculator("CuKa")
    problems, n_peaks, n_family_checks = [], 0, 0
    for i, (structure, o) in enumerate(zip(prototypes, ours, strict=True)):
        ref = calc.get_pattern(structure, two_theta_range=(10, 90))
        problems += [f"prototype {i} ({structure.formula}): {m}" for m in mismatches(o, ref)]
        n_peaks += len(ref.x)
        # the peak lists agree one to one, with the same hkl families and d-spacings
        if len(ref.x) == len(o):
            np.testing.assert_allclose(o.d_spacings, ref.d_hkls, rtol=1e-9)
            assert families(o.hkls) == families(ref.hkls), f"prototype {i}"
            n_family_checks += 1
    assert not problems, "\n".join(problems[:20])
    assert n_peaks > 10_000
    assert n_family_checks >= 285  # peak counts may differ only by sub-threshold peaks


def test_d_spacings_obey_braggs_law(prototypes):
    for o in simulate(prototypes[:20], wavelength=1.2):
        np.testing.assert_allclose(o.d_spacings, 1.2 / (2 * np.sin(np.radians(o.two_theta) / 2)))
        assert o.intensity.max() == pytest.approx(100)
        assert np.all(np.diff(o.two_theta) > 0)
        assert ((o.two_theta >= 10) & (o.two_theta <= 90)).all()


@pytest.mark.parametrize(
    ("wavelength", "two_theta_range"), [("MoKa", (5, 60)), (1.0, None), ("CrKa1", (20, 150))]
)
def test_other_wavelengths_and_ranges(prototypes, wavelength, two_theta_range):
    sample = prototypes[::29]
    calc = XRDCalculator(wavelength)
    for structure, o in zip(sample, simulate(sample, wavelength, two_theta_range), strict=True):
        assert not mismatches(o, calc.get_pattern(structure, two_theta_range=two_theta_range))


def test_partial_occupancy_oxidation_states_and_debye_waller():
    disordered = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(3.9), [{"Cu": 0.5, "Au": 0.5}], [[0, 0, 0]]
    )
    vacancies = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(4.3), [{"Fe2+": 0.9}, "O2-"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )
    structures = [disordered, vacancies, rocksalt()]
    for dw in (None, {"Na": 1.5, "Cl": 0.9, "Au": 0.6, "Fe": 0.4}):
        calc = XRDCalculator(debye_waller_factors=dw)
        ours = simulate(structures, two_theta_range=(10, 120), debye_waller=dw)
        for structure, o in zip(structures, ours, strict=True):
            ref = calc.get_pattern(structure, two_theta_range=(10, 120))
            assert not mismatches(o, ref, min_intensity=0.01)
            assert families(o.hkls) == families(ref.hkls)


def test_debye_waller_damps_high_angles():
    plain, damped = (
        simulate([rocksalt()] * 2, debye_waller=None)[0],
        simulate(rocksalt(), debye_waller={"Na": 2.0, "Cl": 2.0})[0],
    )
    ratio = damped.intensity / plain.intensity
    assert np.all(np.diff(ratio) <= 1e-12)  # relative intensity falls with angle
    assert ratio[-1] < 0.8


def test_hexagonal_lattices_report_four_index_families():
    mg = Structure.from_spacegroup(
        "P6_3/mmc", Lattice.hexagonal(3.21, 5.21), ["Mg"], [[1 / 3, 2 / 3, 0.25]]
    )
    o = simulate(mg)[0]
    assert o.family_hkl.shape[1] == 4
    assert all(f["hkl"][2] == -f["hkl"][0] - f["hkl"][1] for peak in o.hkls for f in peak)
    assert families(o.hkls) == families(
        XRDCalculator().get_pattern(mg, two_theta_range=(10, 90)).hkls
    )
    # rock salt: cubic, 3 indices; (200) has multiplicity 6 and is the strongest line
    nacl = simulate(rocksalt())[0]
    strongest = nacl.hkls[int(np.argmax(nacl.intensity))]
    assert strongest == [{"hkl": (2, 0, 0), "multiplicity": 6}]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    abc=st.tuples(*[st.floats(2.5, 7.0)] * 3),
    angles=st.tuples(*[st.floats(65.0, 115.0)] * 3),
    species=st.lists(
        st.sampled_from(["H", "Li", "O", "Si", "Fe", "Ba", "W", "U"]), min_size=1, max_size=4
    ),
    data=st.data(),
    wavelength=st.sampled_from(["CuKa", "MoKa", "FeKa1", 1.1]),
)
def test_random_structures_agree_with_pymatgen(abc, angles, species, data, wavelength):
    try:
        lattice = Lattice.from_parameters(*abc, *angles)
    except ValueError:
        assume(False)
    assume(lattice.volume > 0.3 * abc[0] * abc[1] * abc[2])
    coords = [data.draw(st.tuples(*[st.floats(0, 1, exclude_max=True)] * 3)) for _ in species]
    structure = Structure(lattice, species, coords)
    ours = simulate(structure, wavelength=wavelength)[0]
    ref = XRDCalculator(wavelength).get_pattern(structure, two_theta_range=(10, 90))
    assert not mismatches(ours, ref, min_intensity=0.01)


def test_batching_and_slabs_do_not_change_results(prototypes, monkeypatch):
    sample = prototypes[:40]
    reference = simulate(sample)
    monkeypatch.setattr(sim, "_MAX_BOX", 500)
    monkeypatch.setattr(sim, "_MAX_BOX_ENTRIES", 2000)
    for a, b in zip(reference, simulate(sample), strict=True):
        np.testing.assert_allclose(a.two_theta, b.two_theta, rtol=0, atol=1e-9)
        np.testing.assert_allclose(a.intensity, b.intensity, rtol=0, atol=1e-9)
        assert a.hkls == b.hkls


def test_tables_are_pymatgens():
    assert sim.WAVELENGTHS == WAVELENGTHS
    table = sim._scattering_table()
    assert set(table) == set(ATOMIC_SCATTERING_PARAMS)
    for sym, coeff in ATOMIC_SCATTERING_PARAMS.items():
        np.testing.assert_array_equal(table[sym][1], coeff)


# ---------------------------------------------------------------------------------- inputs


def test_cif_and_poscar_paths(tmp_path):
    s = rocksalt()
    s.to(filename=str(tmp_path / "nacl.cif"))
    s.to(filename=str(tmp_path / "POSCAR"))
    (tmp_path / "nacl_poscar.txt").write_text((tmp_path / "POSCAR").read_text())
    expected = simulate(s)[0]
    for path in ("nacl.cif", "POSCAR", "nacl_poscar.txt"):
        got = simulate(tmp_path / path)[0]
        np.testing.assert_allclose(got.two_theta, expected.two_theta, atol=1e-6)
        np.testing.assert_allclose(got.intensity, expected.intensity, atol=1e-4)
    assert len(simulate([str(tmp_path / "nacl.cif"), s])) == 2


def test_bad_inputs(tmp_path):
    assert simulate([]) == []
    with pytest.raises(FileNotFoundError):
        simulate(tmp_path / "missing.cif")
    (tmp_path / "junk.cif").write_text("this is not a structure\n")
    with pytest.raises(ValueError, match="junk.cif"):
        simulate(tmp_path / "junk.cif")
    with pytest.raises(TypeError, match="Structure or a CIF/POSCAR path"):
        simulate([42])
    with pytest.raises(ValueError, match="unknown radiation 'CuKz'"):
        simulate(rocksalt(), wavelength="CuKz")
    with pytest.raises(ValueError, match="two_theta_range"):
        simulate(rocksalt(), two_theta_range=(90, 10))
    dummy = Structure(Lattice.cubic(3), [DummySpecies("X")], [[0, 0, 0]])
    with pytest.raises(ValueError, match="no X-ray scattering factors for 'X'"):
        simulate(dummy)


def test_no_reflection_in_range_gives_empty_peaklist():
    o = simulate(Structure(Lattice.cubic(2.0), ["Fe"], [[0, 0, 0]]), two_theta_range=(10, 20))[0]
    assert len(o) == 0 and o.hkls == [] and o.family_offsets.tolist() == [0]
    assert profile(o, np.linspace(10, 20, 11)).tolist() == [0.0] * 11


# ---------------------------------------------------------------------------------- profile


def one_peak(two_theta=40.0, intensity=100.0, wavelength=1.5406) -> PeakList:
    d = wavelength / (2 * math.sin(math.radians(two_theta) / 2))
    return PeakList(
        two_theta=np.array([two_theta]), intensity=np.array([intensity]), d_spacings=np.array([d]),
        wavelength=wavelength, family_hkl=np.zeros((1, 3), dtype=int),
        family_multiplicity=np.array([1]), family_offsets=np.array([0, 1]),
    )  # fmt: skip


def measured_fwhm(grid, y) -> float:
    half = y.max() / 2
    above = np.flatnonzero(y >= half)
    i, j = above[0], above[-1]
    left = np.interp(half, [y[i - 1], y[i]], [grid[i - 1], grid[i]])
    right = np.interp(half, [y[j + 1], y[j]], [grid[j + 1], grid[j]])
    return right - left


@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
def test_profile_width_and_area(eta):
    grid = np.arange(30, 50, 0.0005)
    y = profile(one_peak(), grid, fwhm=0.2, eta=eta)
    assert measured_fwhm(grid, y) == pytest.approx(0.2, rel=1e-3)
    assert grid[np.argmax(y)] == pytest.approx(40.0, abs=1e-3)
    area = y.sum() * 0.0005
    # the Lorentzian's tails beyond ±10° hold 2/π · atan(0.1/10) ≈ 0.64 % of its area
    assert area == pytest.approx(100 * (1 - eta * 2 / math.pi * math.atan(0.1 / 10)), rel=1e-4)


def test_scherrer_broadening():
    grid = np.arange(30, 50, 0.0005)
    size_nm, lam = 20.0, 1.5406
    beta = math.degrees(0.9 * lam / (size_nm * 10 * math.cos(math.radians(20))))
    y = profile(one_peak(wavelength=lam), grid, eta=0.0, crystallite_size_nm=size_nm)
    assert measured_fwhm(grid, y) == pytest.approx(beta, rel=1e-3)
    y2 = profile(one_peak(wavelength=lam), grid, fwhm=0.1, eta=0.0, crystallite_size_nm=size_nm)
    assert measured_fwhm(grid, y2) == pytest.approx(math.hypot(0.1, beta), rel=1e-3)
    # smaller crystallites: broader, lower peaks, same area
    y3 = profile(one_peak(wavelength=lam), grid, eta=0.0, crystallite_size_nm=5.0)
    assert y3.max() < y.max() and y3.sum() == pytest.approx(y.sum(), rel=1e-3)


def test_profile_of_a_simulated_pattern():
    nacl = simulate(rocksalt(), wavelength="CuKa1")[0]
    grid = np.linspace(10, 90, 4001)
    y = profile(nacl, grid)
    top = grid[np.argmax(y)]
    assert top == pytest.approx(
        nacl.two_theta[np.argmax(nacl.intensity)], abs=0.02
    )  # (200) at ~31.7°
    with pytest.raises(ValueError, match="eta"):
        profile(nacl, grid, eta=1.5)
    with pytest.raises(ValueError, match="crystallite_size_nm"):
        profile(nacl, grid, crystallite_size_nm=0)
    with pytest.raises(ValueError, match="widths must be > 0"):
        profile(nacl, grid, fwhm=0.0)
