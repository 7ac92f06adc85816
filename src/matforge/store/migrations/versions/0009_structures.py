"""Crystal structures: zero or more per material, each owned by a project.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06

``structures``: one row per stored structure (:mod:`matforge.store.structures`): its material
and project, the cell's formula, elements ("-Cl-Na-") and their number, sites, space group
(number and symbol, from spglib), whether every site is fully occupied, volume (Å^3), density
(g/cm^3), energy (eV/atom), other ``properties`` (JSON), how it was obtained (``method``), its
``source``, a sha256 ``checksum`` of its JSON and the structure itself (``data``: zlib-compressed
JSON of ``Structure.as_dict()``), who and when. Indexed: material, elements, nelements, space
group number, (project, checksum).

``structure_optimade``: what the OPTIMADE endpoint filters structures by and the store does not
hold (public id, OPTIMADE's reduced and anonymous formulas, species names, structure features),
filled in by the server.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

Timestamp = sa.DateTime(timezone=True)
JSONType = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
METHODS = ("experiment", "refinement", "dft", "ml_relaxation", "xrd_match")


def upgrade() -> None:
    op.create_table(
        "structures",
        sa.Column("id", BigId, nullable=False),
        sa.Column("material_id", BigId, nullable=False),
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.Column("formula", sa.String(500), nullable=False),
        sa.Column("elements", sa.String(500), nullable=False),
        sa.Column("nelements", sa.Integer, nullable=False),
        sa.Column("nsites", sa.Integer, nullable=False),
        sa.Column("spacegroup_number", sa.Integer, nullable=True),
        sa.Column("spacegroup_symbol", sa.String(32), nullable=True),
        sa.Column("is_ordered", sa.Boolean, nullable=False),
        sa.Column("volume", sa.Float, nullable=False),
        sa.Column("density", sa.Float, nullable=False),
        sa.Column("energy_per_atom", sa.Float, nullable=True),
        sa.Column("properties", JSONType, nullable=True),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("source", sa.Text, nullable=True),
        sa.Column("checksum", sa.String(64), nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_structures"),
        sa.ForeignKeyConstraint(
            ["material_id"], ["materials.id"], name="fk_structures_material_id_materials"
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name="fk_structures_project_id_projects"
        ),
        sa.CheckConstraint(
            "method IN (" + ", ".join(f"'{m}'" for m in METHODS) + ")", name="ck_structures_method"
        ),
    )
    op.create_index("ix_structures_material_id", "structures", ["material_id"])
    op.create_index("ix_structures_elements", "structures", ["elements"])
    op.create_index("ix_structures_nelements", "structures", ["nelements"])
    op.create_index("ix_structures_spacegroup_number", "structures", ["spacegroup_number"])
    op.create_index("ix_structures_project_id_checksum", "structures", ["project_id", "checksum"])
    op.create_table(
        "structure_optimade",
        sa.Column("structure_id", BigId, nullable=False),
        sa.Column("public_id", sa.String(64), nullable=False),
        sa.Column("chemical_formula_reduced", sa.String(500), nullable=False),
        sa.Column("chemical_formula_anonymous", sa.String(500), nullable=False),
        sa.Column("nperiodic_dimensions", sa.Integer, nullable=True),
        sa.Column("structure_features", sa.String(100), nullable=False, server_default="-"),
        sa.Column("species_names", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("structure_id", name="pk_structure_optimade"),
        sa.ForeignKeyConstraint(
            ["structure_id"],
            ["structures.id"],
            name="fk_structure_optimade_structure_id_structures",
        ),
        sa.UniqueConstraint("public_id", name="uq_structure_optimade_public_id"),
    )
    op.create_index(
        "ix_structure_optimade_chemical_formula_reduced",
        "structure_optimade",
        ["chemical_formula_reduced"],
    )


def downgrade() -> None:
    op.drop_index("ix_structure_optimade_chemical_formula_reduced", table_name="structure_optimade")
    op.drop_table("structure_optimade")
    for name in (
        "ix_structures_project_id_checksum",
        "ix_structures_spacegroup_number",
        "ix_structures_nelements",
        "ix_structures_elements",
        "ix_structures_material_id",
    ):
        op.drop_index(name, table_name="structures")
    op.drop_table("structures")
