"""Initial schema: projects, properties, datasets, materials, measurements.

Revision ID: 0001
Revises:
Create Date: 2026-11-27

Types are written out here rather than imported from ``matforge.store.schema``: a migration
must keep creating what it created on the day it was written.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JSONType = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Timestamp = sa.DateTime(timezone=True)

PROPERTIES = [
    ("band_gap", "eV", "electronic band gap"),
    ("bulk_modulus", "GPa", "bulk modulus"),
    ("shear_modulus", "GPa", "shear modulus"),
    ("youngs_modulus", "GPa", "Young's modulus"),
    ("vickers_hardness", "GPa", "Vickers hardness"),
    ("yield_strength", "MPa", "yield strength"),
    ("tensile_strength", "MPa", "ultimate tensile strength"),
    ("formation_energy_per_atom", "eV/atom", "formation energy per atom"),
    ("formation_enthalpy", "eV/atom", "formation enthalpy per atom"),
    ("energy_above_hull", "eV/atom", "energy above the convex hull"),
    ("density", "g/cm^3", "mass density"),
    ("melting_point", "K", "melting temperature"),
    ("glass_transition_temperature", "K", "glass transition temperature"),
    ("critical_temperature", "K", "superconducting critical temperature"),
    ("debye_temperature", "K", "Debye temperature"),
    ("thermal_conductivity", "W/(m*K)", "thermal conductivity"),
    ("electrical_conductivity", "S/cm", "electrical conductivity"),
    ("ionic_conductivity", "S/cm", "ionic conductivity"),
    ("seebeck_coefficient", "uV/K", "Seebeck coefficient"),
    ("dielectric_constant", "dimensionless", "relative permittivity"),
    ("refractive_index", "dimensionless", "refractive index"),
    ("specific_capacity", "mA*h/g", "gravimetric specific capacity"),
    ("adsorption_energy", "eV", "adsorption energy"),
]


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_projects"),
        sa.UniqueConstraint("name", name="uq_projects_name"),
    )
    properties = op.create_table(
        "properties",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("canonical_unit", sa.String(100), nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("id", name="pk_properties"),
        sa.UniqueConstraint("name", name="uq_properties_name"),
    )
    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("source", sa.Text, nullable=True),
        sa.Column("checksum", sa.String(64), nullable=True),
        sa.Column("n_rows", sa.Integer, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_datasets"),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name="fk_datasets_project_id_projects"
        ),
    )
    op.create_index("ix_datasets_project_id", "datasets", ["project_id"])
    op.create_table(
        "materials",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("key", sa.String(600), nullable=False),
        sa.Column("formula", sa.String(500), nullable=False),
        sa.Column("reduced_formula", sa.String(500), nullable=False),
        sa.Column("elements", sa.String(500), nullable=False),
        sa.Column("nelements", sa.Integer, nullable=False),
        sa.Column("structure", JSONType, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_materials"),
        sa.UniqueConstraint("key", name="uq_materials_key"),
    )
    op.create_index("ix_materials_reduced_formula", "materials", ["reduced_formula"])
    op.create_index("ix_materials_elements", "materials", ["elements"])
    op.create_table(
        "measurements",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("material_id", BigId, nullable=False),
        sa.Column("property_id", sa.Integer, nullable=False),
        sa.Column("dataset_id", sa.Integer, nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("unit", sa.String(100), nullable=False),
        sa.Column("uncertainty", sa.Float, nullable=True),
        sa.Column("raw_value", sa.Float, nullable=False),
        sa.Column("raw_unit", sa.String(100), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("conditions", JSONType, nullable=True),
        sa.Column("source", sa.Text, nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_measurements"),
        sa.ForeignKeyConstraint(
            ["material_id"], ["materials.id"], name="fk_measurements_material_id_materials"
        ),
        sa.ForeignKeyConstraint(
            ["property_id"], ["properties.id"], name="fk_measurements_property_id_properties"
        ),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name="fk_measurements_dataset_id_datasets"
        ),
        sa.CheckConstraint(
            "method IN ('experiment', 'computation', 'prediction')",
            name="ck_measurements_method",
        ),
    )
    op.create_index("ix_measurements_material_id", "measurements", ["material_id"])
    op.create_index("ix_measurements_property_id", "measurements", ["property_id"])
    op.create_index("ix_measurements_dataset_id", "measurements", ["dataset_id"])
    op.bulk_insert(
        properties,
        [{"name": n, "canonical_unit": u, "description": d} for n, u, d in PROPERTIES],
    )


def downgrade() -> None:
    for table in ("measurements", "materials", "datasets", "properties", "projects"):
        op.drop_table(table)
