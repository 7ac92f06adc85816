"""Identification results as tables and figures."""

from __future__ import annotations

from matforge.xrd.identify import Candidate, Identification, identifications_frame


def _identification(source="a.xy") -> Identification:
    return Identification(
        candidates={
            "crystal_system": [Candidate("cubic", 0.9), Candidate("tetragonal", 0.06)],
            "spacegroup": [Candidate("Fm-3m (225)", 0.4), Candidate("Pm-3m (221)", 0.3)],
            "prototype": [Candidate("AB_cF8_225_a_b", 0.7), Candidate("A_cP1_221_a", 0.2)],
        },
        threshold=0.5,
        source=source,
        prototype_info={"AB_cF8_225_a_b": {"formula": "NaCl", "mineral": "Halite"},
                        "A_cP1_221_a": {"formula": "Po", "mineral": None}},
        warnings=["coarse step"],
    )  # fmt: skip


def test_to_frame_is_one_row_per_head_and_rank():
    df = _identification().to_frame()
    assert list(df.columns) == ["head", "rank", "name", "probability", "uncertain", "formula",
                                "mineral"]  # fmt: skip
    assert df["head"].tolist() == ["crystal_system"] * 2 + ["spacegroup"] * 2 + ["prototype"] * 2
    assert df["rank"].tolist() == [1, 2] * 3
    assert df["name"].iloc[0] == "cubic" and df["probability"].iloc[0] == 0.9
    # below the threshold (0.5): the space group head abstains at rank 1
    assert df["uncertain"].tolist() == [False, True, True, True, False, True]
    assert df["formula"].tolist()[4:] == ["NaCl", "Po"] and df["mineral"].iloc[4] == "Halite"
    assert df["formula"].iloc[:4].isna().all()


def test_plot_is_one_bar_trace_per_head_with_the_threshold():
    import plotly.graph_objects as go

    fig = _identification().plot()
    assert isinstance(fig, go.Figure)
    assert [t.type for t in fig.data] == ["bar"] * 3
    assert list(fig.data[2].y) == ["AB_cF8_225_a_b (NaCl Halite)", "A_cP1_221_a (Po)"]
    lines = [s for s in fig.layout.shapes if s.type == "line"]
    assert len(lines) == 3 and {s.x0 for s in lines} == {0.5}  # the threshold, each head
    titles = [a.text for a in fig.layout.annotations]
    assert "space group: uncertain" in titles and "crystal system: cubic" in titles


def test_identifications_frame_is_one_row_per_pattern():
    df = identifications_frame([_identification("a.xy"), _identification("b.xy")])
    assert df["source"].tolist() == ["a.xy", "b.xy"]
    assert df["spacegroup"].tolist() == ["uncertain"] * 2  # below the threshold
    assert df["prototype"].iloc[0] == "AB_cF8_225_a_b"
    assert df["crystal_system_probability"].iloc[0] == 0.9
    assert df["warnings"].iloc[0] == "coarse step"
