"""Build the element-embedding tables of ``matforge.features.embedding`` (run once, needs PyPI).

Downloads the CrabNet 2.0.8 wheel (MIT licence), which ships the CBFV element-property tables,
and writes ``src/matforge/features/data/embeddings.npz`` (one float32 (103, d) array per table,
rows in Z order, NaN for elements a table lacks, plus the column names) and
``embeddings.json`` (provenance: source, sha256 of the wheel, citation, licence).

    .venv/bin/python scripts/build_embeddings.py
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from matforge.chem import SYMBOLS  # noqa: E402

PACKAGE, VERSION = "crabnet", "2.0.8"
CACHE = ROOT / ".cache" / "sources"
OUT = ROOT / "src" / "matforge" / "features" / "data"
TABLES = {
    "mat2vec": (
        "200-d word2vec embeddings of element names learned from materials-science abstracts.",
        "@article{tshitoyan2019unsupervised, title={Unsupervised word embeddings capture latent "
        "knowledge from materials science literature}, author={Tshitoyan, Vahe and Dagdelen, John "
        "and Weston, Leigh and Dunn, Alexander and Rong, Ziqin and Kononova, Olga and Persson, "
        "Kristin A and Ceder, Gerbrand and Jain, Anubhav}, journal={Nature}, volume={571}, "
        "pages={95--98}, year={2019}, doi={10.1038/s41586-019-1335-8}}",
    ),
    "oliynyk": (
        "44 tabulated element properties (radii, electronegativities, valence counts, ...).",
        "@article{oliynyk2016high, title={High-throughput machine-learning-driven synthesis of "
        "full-Heusler compounds}, author={Oliynyk, Anton O and Antono, Erin and Sparks, Taylor D "
        "and Ghadbeigi, Leila and Gaultois, Michael W and Meredig, Bryce and Mar, Arthur}, "
        "journal={Chemistry of Materials}, volume={28}, number={20}, pages={7324--7331}, "
        "year={2016}, doi={10.1021/acs.chemmater.6b02724}}",
    ),
    "jarvis": (
        "438 JARVIS-ML CFID element descriptors (chemical part).",
        "@article{choudhary2018machine, title={Machine learning with force-field-inspired "
        "descriptors for materials: Fast screening and mapping energy landscape}, "
        "author={Choudhary, Kamal and DeCost, Brian and Tavazza, Francesca}, journal={Physical "
        "Review Materials}, volume={2}, number={8}, pages={083801}, year={2018}, "
        "doi={10.1103/PhysRevMaterials.2.083801}}",
    ),
    "magpie": (
        "22 Magpie element properties as CBFV tabulates them.",
        "@article{ward_agrawal_choudary_wolverton_2016, title={A general-purpose machine learning "
        "framework for predicting properties of inorganic materials}, volume={2}, "
        "DOI={10.1038/npjcompumats.2017.28}, number={1}, journal={npj Computational Materials}, "
        "author={Ward, Logan and Agrawal, Ankit and Choudhary, Alok and Wolverton, Christopher}, "
        "year={2016}}",
    ),
}
CBFV_CITATION = (
    "@article{murdock2020domain, title={Is domain knowledge necessary for machine learning "
    "materials properties?}, author={Murdock, Ryan J and Kauwe, Steven K and Wang, Anthony "
    "Yu-Tung and Sparks, Taylor D}, journal={Integrating Materials and Manufacturing "
    "Innovation}, volume={9}, pages={221--227}, year={2020}, doi={10.1007/s40192-020-00179-z}}"
)


def fetch_wheel() -> Path:
    wheel = CACHE / f"{PACKAGE}-{VERSION}-py3-none-any.whl"
    if not wheel.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--ignore-requires-python",
             f"{PACKAGE}=={VERSION}", "-d", str(CACHE)],
            check=True,
        )  # fmt: skip
    return wheel


def main() -> None:
    wheel = fetch_wheel()
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    arrays: dict[str, np.ndarray] = {}
    provenance: dict[str, object] = {
        "source": f"PyPI {PACKAGE}=={VERSION} ({wheel.name}), crabnet/data/element_properties/",
        "wheel_sha256": digest,
        "licence": "MIT",
        "cbfv_citation": CBFV_CITATION,
        "built_by": "scripts/build_embeddings.py",
        "dtype": "float32; rows are Z = 1..103 in order, NaN where the table has no element",
        "tables": {},
    }
    with zipfile.ZipFile(wheel) as zf:
        provenance["licence_text"] = zf.read(f"{PACKAGE}-{VERSION}.dist-info/LICENSE").decode()
        for name, (description, citation) in TABLES.items():
            raw = zf.read(f"crabnet/data/element_properties/{name}.csv")
            df = pd.read_csv(io.BytesIO(raw), index_col=0)
            known = [s for s in df.index if s in SYMBOLS]
            values = np.full((len(SYMBOLS), df.shape[1]), np.nan, dtype=np.float32)
            rows = [SYMBOLS.index(s) for s in known]
            values[rows] = df.loc[known].to_numpy(dtype=np.float64).astype(np.float32)
            arrays[name] = values
            arrays[f"{name}__columns"] = np.array([str(c) for c in df.columns])
            provenance["tables"][name] = {
                "file": f"crabnet/data/element_properties/{name}.csv",
                "description": description,
                "citation": citation,
                "n_columns": int(df.shape[1]),
                "elements": len(known),
                "dropped_rows": [s for s in df.index if s not in SYMBOLS],
            }
    OUT.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT / "embeddings.npz", **arrays)
    (OUT / "embeddings.json").write_text(json.dumps(provenance, indent=2) + "\n")
    print(f"wrote {OUT / 'embeddings.npz'} ({(OUT / 'embeddings.npz').stat().st_size} bytes)")


if __name__ == "__main__":
    main()
