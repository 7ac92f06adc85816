"""The OPTIMADE repository of the store, without the server: entries of the given projects
only, filters and sorts in SQL, and a page's measured means from one grouped query."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa

pytest.importorskip("optimade")

from optimade.exceptions import BadRequest, NotImplementedResponse  # noqa: E402

from matforge.server.ids import IdCodec  # noqa: E402
from matforge.server.optimade.filter import parse_filter  # noqa: E402
from matforge.store import schema  # noqa: E402
from matforge.store.repositories import optimade  # noqa: E402

GAPS_A = {"Fe2O3": 2.1, "ZnO": 3.3, "GaAs": 1.42, "Fe0.7Ni0.3O": 0.5}
GAPS_B = {"Fe2O3": 9.0, "PuO2": 2.0}  # another project: invisible to a reader of "a" only


@pytest.fixture
def filled(store):
    for project, gaps in (("a", GAPS_A), ("b", GAPS_B)):
        store.add_project(project)
        df = pd.DataFrame({"formula": list(gaps), "value": list(gaps.values())})
        store.add_measurements(df, project=project, property="band_gap", unit="eV",
                               source=f"https://example.org/{project}")  # fmt: skip
    with store.engine.connect() as conn:
        ids = dict(conn.execute(sa.select(schema.projects.c.name, schema.projects.c.id)).all())
    optimade.sync(store.engine, IdCodec(b"k" * 32))
    return store, ids


def _find(store, project_ids, text="", **kwargs):
    with store.engine.connect() as conn:
        return optimade.find(
            conn, "structures", project_ids, parse_filter(text), filter_text=text, **kwargs
        )


def _formulas(page) -> list[str]:
    return [r.row.formula for r in page.records]


def test_only_the_given_projects_are_listed_counted_and_averaged(filled):
    store, ids = filled
    page = _find(store, [ids["a"]], limit=100)
    assert sorted(_formulas(page)) == sorted(GAPS_A)
    assert page.returned == page.available == len(GAPS_A) and not page.more
    means = {r.row.formula: r.measured["_matforge_band_gap"] for r in page.records}
    assert means["Fe2O3"] == pytest.approx(2.1)  # project b's 9.0 is not averaged in
    both = _find(store, [ids["a"], ids["b"]], limit=100)
    assert "PuO2" in _formulas(both)
    assert {r.row.formula: r.measured["_matforge_band_gap"] for r in both.records}[
        "Fe2O3"
    ] == pytest.approx((2.1 + 9.0) / 2)
    assert _find(store, [], limit=100).records == []
    with store.engine.connect() as conn:
        sources = optimade.find(conn, "references", [ids["b"]], None)
        assert [r.source for r in sources.records] == ["https://example.org/b"]
        measured = optimade.measured_properties(conn, [ids["a"]])
    assert [(p.name, p.field, p.canonical_unit) for p in measured] == [
        ("band_gap", "_matforge_band_gap", "eV")
    ]


def test_filters_sorts_and_pages_run_in_the_database(filled):
    store, ids = filled
    page = _find(store, [ids["a"]], "_matforge_band_gap > 2", sort=[("_matforge_band_gap", True)])
    assert _formulas(page) == ["ZnO", "Fe2O3"]
    page = _find(store, [ids["a"]], 'elements HAS "O"', sort=[("nelements", False)], limit=2)
    assert page.returned == 3 and len(page.records) == 2 and page.more
    page = _find(store, [ids["a"]], 'elements HAS ONLY "Ga","As"')
    assert _formulas(page) == ["GaAs"]
    with pytest.raises(BadRequest, match="not a known or searchable"):
        _find(store, [ids["a"]], "colour = 3")
    with pytest.raises(BadRequest, match="cannot sort on 'lattice_vectors'"):
        _find(store, [ids["a"]], sort=[("lattice_vectors", False)])
    with pytest.raises(NotImplementedResponse):
        _find(store, [ids["a"]], 'elements:elements_ratios HAS "Fe":>0.5')
    with store.engine.connect() as conn:
        one = _find(store, [ids["a"]], 'chemical_formula_descriptive = "ZnO"').records[0]
        record, available = optimade.get(conn, "structures", [ids["a"]], one.row.public_id)
        assert record.row.formula == "ZnO" and available == len(GAPS_A)
        assert optimade.get(conn, "structures", [ids["b"]], one.row.public_id)[0] is None


def test_a_page_costs_the_same_statements_whatever_its_size(filled):
    """The measured means of a page come from one grouped query, not one per row."""
    store, ids = filled
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", count)
    try:
        sizes = {}
        for limit in (1, 4):
            statements.clear()
            assert len(_find(store, [ids["a"]], limit=limit).records) == limit
            sizes[limit] = len(statements)
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", count)
    assert sizes[1] == sizes[4]
