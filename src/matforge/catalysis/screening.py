"""Catalyst screening: enumerate alloy surfaces, predict, place on the volcano, rank.

:func:`screen_surfaces` is the one library function behind ``matforge catalysis screen`` and
``matforge demo catalysis``: enumerate overlayer / subsurface / intermetallic / single-atom
surfaces over the user's metals (:func:`~matforge.catalysis.surfaces.enumerate_surfaces`),
predict their CO binding energies with an :class:`~matforge.catalysis.model.AdsorptionModel`
(mean, std, applicability domain), and rank by the probability that the energy falls in the
volcano's optimal window (CO2 reduction: −0.7 to −0.5 eV). Surfaces whose energy is in the
training data carry that DFT value too (``dft_energy``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from matforge.catalysis.volcano import get_volcano

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from matforge.catalysis.model import AdsorptionModel

__all__ = ["default_model", "screen_surfaces"]


def default_model(descriptors: str = "dft_free", random_state: int = 0) -> AdsorptionModel:
    """An :class:`~matforge.catalysis.model.AdsorptionModel` fitted on the bundled Ma et al.
    (2015) CO binding energies (one row per physical surface)."""
    from matforge.catalysis.data import load_ma2015
    from matforge.catalysis.model import AdsorptionModel

    return AdsorptionModel(descriptors, random_state=random_state).fit(load_ma2015(clean=True))


def screen_surfaces(
    metals: Sequence[str],
    *,
    types: Sequence[str] = ("overlayer", "subsurface", "intermetallic", "single_atom"),
    top_metals: Sequence[str] | None = None,
    model: AdsorptionModel | None = None,
    volcano: str = "co2r",
    window: tuple[float, float] | None = None,
    in_domain_only: bool = False,
) -> pd.DataFrame:
    """Ranked candidate surfaces (best first).

    Columns: ``rank``, ``surface``, ``surface_type``, ``site_metal``, ``mean`` and ``std``
    (predicted CO binding energy, eV), ``probability`` (of the energy lying in ``window``,
    default the volcano's), ``activity`` (the volcano's activity axis at the mean),
    ``distance``, ``known_site_metal``, ``in_domain`` and ``dft_energy`` (eV, where the
    surface is in the training data). Out-of-domain surfaces stay in the list (flagged)
    unless ``in_domain_only``.
    """
    import pandas as pd

    from matforge.catalysis.data import load_ma2015
    from matforge.catalysis.surfaces import enumerate_surfaces

    vol = get_volcano(volcano)
    low, high = window or vol.window
    surfaces = enumerate_surfaces(metals, types, top_metals=top_metals)
    model = model or default_model()
    out = model.predict_frame(surfaces)
    out["probability"] = vol.probability(out["mean"], out["std"]) if window is None else \
        _window(out, low, high)
    out["activity"] = vol.activity(out["mean"])
    known = load_ma2015(clean=True).set_index("surface")["binding_energy_of_adsorbed"]
    out["dft_energy"] = out["surface"].map(known).astype(float)
    if in_domain_only:
        out = out[out["in_domain"]]
    out = out.sort_values(["probability", "std"], ascending=[False, True], kind="stable")
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    out.attrs.update({"window": (low, high), "volcano": vol.name, "model": repr(model)})
    return pd.DataFrame(out).reset_index(drop=True)


def _window(df, low, high):
    from matforge.catalysis.volcano import window_probability

    return window_probability(df["mean"], df["std"], low, high)
