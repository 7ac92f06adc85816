"""Bodies and responses of the REST API (pydantic): the API's contract and its validation.

Ids are public ids (:mod:`matforge.server.ids`), timestamps UTC (ISO 8601), values in the
property's canonical unit (``unit``) unless a field says otherwise.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

Visibility = Literal["private", "shared", "public"]
Role = Literal["viewer", "editor", "owner"]
Method = Literal["experiment", "computation", "prediction"]
JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]

ProjectName = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        min_length=1,
        max_length=100,
        pattern=r"^[^/\x00-\x1f\x7f]*[^/\s\x00-\x1f\x7f][^/\x00-\x1f\x7f]*$",
    ),
]
UserName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
PropertyName = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.\-]+$"
    ),
]
# Stripped names and texts are also patterned to hold a non-space character: then the schema
# refuses the whitespace-only strings that stripping would make empty (a schema-valid " " was
# a 422, a finding of schemathesis's positive-data check).
UnitText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=r"\S")
]
Formula = Annotated[str, StringConstraints(min_length=1, max_length=500)]
SourceText = Annotated[str, StringConstraints(max_length=1000)]
Description = Annotated[str, StringConstraints(max_length=10_000)]
PublicId = Annotated[str, StringConstraints(max_length=40)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- errors --------------------------------------------------------------------------------


class RowErrorOut(BaseModel):
    """One bad cell of an upload: line of the file (header = line 1) or row of a JSON body
    (first row = 0), the column, and why."""

    line: int
    column: str
    reason: str


class FieldErrorOut(BaseModel):
    """A request value that does not match the schema: where (``["body", "rows", 3,
    "value"]``), what is wrong, and pydantic's error type."""

    loc: list[str | int]
    msg: str
    type: str


class ErrorOut(BaseModel):
    """Every error response: a message; the bad cells of an upload (``errors``) or the bad
    request values (``fields``) when there are any."""

    detail: str
    errors: list[RowErrorOut] | None = None
    fields: list[FieldErrorOut] | None = None


# --- users and projects --------------------------------------------------------------------


class UserOut(BaseModel):
    name: str


class ProjectCreate(_Body):
    name: ProjectName = Field(description="Unique among the caller's projects; no '/'.")
    description: Description = ""
    visibility: Visibility = "private"


class ProjectUpdate(_Body):
    description: Description | None = None
    visibility: Visibility | None = None


class ProjectOut(BaseModel):
    id: str
    name: str
    owner: str
    description: str
    visibility: Visibility
    role: Role = Field(description="The caller's role in the project.")
    created_at: datetime
    n_measurements: int


class MemberSet(_Body):
    role: Role


class MemberOut(BaseModel):
    user: str
    role: Role


class DatasetOut(BaseModel):
    """One write to a project (an upload or a JSON batch), with its provenance."""

    id: str
    project_id: str
    name: str
    source: str | None
    n_rows: int
    created_at: datetime
    created_by: str


# --- properties, materials, measurements ---------------------------------------------------


class PropertyOut(BaseModel):
    name: str
    canonical_unit: str
    description: str


class MaterialOut(BaseModel):
    id: str
    formula: str
    reduced_formula: str
    elements: list[str]
    nelements: int
    has_structure: bool


class MaterialDetail(MaterialOut):
    structure: dict[str, Any] | None = Field(
        None, description="pymatgen Structure.as_dict(), when the material has one."
    )


class MaterialPage(BaseModel):
    items: list[MaterialOut]
    next: str | None = Field(None, description="Pass as `after` to get the next page.")


class MeasurementOut(BaseModel):
    id: str
    project_id: str
    dataset_id: str
    material_id: str
    formula: str
    formula_as_ingested: str | None = Field(
        None, description="The formula as the upload wrote it (null for rows stored before 0005)."
    )
    reduced_formula: str
    elements: list[str]
    property: str
    value: float
    unit: str
    uncertainty: float | None
    method: Method
    conditions: dict[str, Any] | None
    source: str | None
    raw_value: float
    raw_unit: str
    flag: str | None = Field(
        None, description="Codes of the physical ranges the value breaks (allow_unphysical)."
    )
    created_at: datetime
    created_by: str


class MeasurementPage(BaseModel):
    items: list[MeasurementOut]
    next: str | None = Field(None, description="Pass as `after` to get the next page.")


class AuditOut(BaseModel):
    """One deletion recorded in a project's audit log."""

    id: str
    project_id: str
    at: datetime
    actor: str = Field(description="The user who deleted.")
    action: Literal["delete_measurement", "delete_dataset"]
    target_id: str = Field(description="Id of the measurement or dataset that was deleted.")
    detail: dict[str, Any] = Field(
        description="What was deleted: a measurement whole (formula, property, value, unit, "
        "...), or a dataset's provenance (name, source, checksum, n_rows, created_at, "
        "created_by) and the number of measurements it held per property."
    )


class AuditPage(BaseModel):
    items: list[AuditOut]
    next: str | None = Field(None, description="Pass as `after` to get the next page.")


ConditionValue = Annotated[str, StringConstraints(max_length=1000)] | float | int | bool | None


def _not_a_boolean(value: Any) -> Any:
    # pydantic reads true as 1.0 where a float is expected; a measured value never is a boolean
    if isinstance(value, bool):
        raise ValueError(f"{str(value).lower()} is a boolean, not a number")
    return value


#: a finite number; JSON true/false are refused, not read as 1.0/0.0
FiniteFloat = Annotated[float, Field(allow_inf_nan=False), BeforeValidator(_not_a_boolean)]


class MeasurementIn(_Body):
    formula: Formula
    value: FiniteFloat
    uncertainty: (
        Annotated[float, Field(ge=0, allow_inf_nan=False), BeforeValidator(_not_a_boolean)] | None
    ) = None
    unit: UnitText | None = Field(None, description="Unit of this row (default: the batch's).")
    conditions: (
        dict[Annotated[str, StringConstraints(min_length=1, max_length=100)], ConditionValue] | None
    ) = Field(None, max_length=50)
    structure: dict[str, Any] | None = Field(
        None, description="A pymatgen Structure.as_dict() of the measured material."
    )


class MeasurementBatch(_Body):
    property: PropertyName
    unit: UnitText
    method: Method = "experiment"
    source: SourceText | None = None
    dataset: Annotated[str, StringConstraints(min_length=1, max_length=200)] = "api"
    rows: list[MeasurementIn] = Field(min_length=1)
    allow_duplicate: bool = Field(
        False,
        description="Add the batch even if the same batch (property, unit, method and rows) is "
        "already in the project; without it a repeated batch is refused with 409.",
    )
    allow_unphysical: bool = Field(
        False,
        description="Store values outside their property's physical range (a modulus <= 0 GPa, "
        "a negative band gap), marked in their flag, instead of refusing them.",
    )


class IngestOut(BaseModel):
    """What an upload wrote. With ``skip_invalid``, ``rejected`` lists the bad cells."""

    dataset_id: str | None
    property: str
    unit: str = Field(description="Canonical unit the values were stored in.")
    n_rows: int
    n_written: int
    n_rejected: int
    n_flagged: int = Field(
        0, description="Rows stored outside their property's physical range (allow_unphysical)."
    )
    new_property: bool
    rejected: list[RowErrorOut]


# --- jobs and models -----------------------------------------------------------------------


class JobOut(BaseModel):
    id: str
    kind: str
    status: JobStatus
    progress: float = Field(description="Fraction done, 0 to 1.")
    message: str
    result: dict[str, Any] | None
    error: str | None
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class ModelCreate(_Body):
    project_id: PublicId
    property: PropertyName
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    n_estimators: int = Field(200, ge=10, le=1000, description="Trees of the random forest.")
    random_state: int = Field(0, ge=0, le=2**31 - 1)


class ModelOut(BaseModel):
    id: str
    name: str
    project_id: str
    property: str
    unit: str
    owner: str
    estimator: str
    status: JobStatus = Field(description="Status of the training job.")
    job: JobOut
    n_train: int | None
    metrics: dict[str, float | None] | None
    created_at: datetime


class PredictIn(_Body):
    formulas: list[Formula] = Field(min_length=1)


class PredictionOut(BaseModel):
    formula: str
    mean: float | None
    std: float | None
    error: str | None = None
    domain_distance: float | None = Field(
        None,
        description="distance to the model's training compositions (~1: as close as they are "
        "to each other); null without a prediction",
    )
    in_domain: bool | None = Field(
        None,
        description="domain_distance <= the response's domain_threshold; false: the "
        "prediction is an extrapolation",
    )


class PredictOut(BaseModel):
    model_id: str
    property: str
    unit: str
    domain_threshold: float | None = Field(
        None,
        description="the 99th percentile of the training compositions' own (leave-one-out) "
        "domain distances: a formula farther than that is out of the model's domain",
    )
    predictions: list[PredictionOut]


class ModelCvOut(BaseModel):
    """Held-out (cross-validated or out-of-bag) predictions of a model's training rows, for the
    parity plot, and the expected vs observed coverage of its central intervals, for the
    calibration plot. Values in ``unit``."""

    model_id: str
    property: str
    unit: str
    formula: list[str]
    y: list[float | None]
    mean: list[float | None]
    std: list[float | None]
    expected_coverage: list[float]
    observed_coverage: list[float]
    metrics: dict[str, float | None] | None


# --- screening -----------------------------------------------------------------------------

ElementSymbol = Annotated[str, StringConstraints(pattern=r"^[A-Z][a-z]?$")]


class ScreenCreate(_Body):
    """A screen of every composition of ``elements`` with ``arities`` distinct elements and at
    most ``max_atoms`` atoms per formula unit, ranked by the model's prediction."""

    elements: list[ElementSymbol] = Field(
        min_length=2, max_length=40, description="Element symbols, e.g. Ga, In, N."
    )
    max_atoms: int = Field(6, ge=2, le=12, description="Most atoms per formula unit.")
    arities: list[Literal[2, 3, 4]] = Field(
        [2, 3], min_length=1, max_length=3, description="Numbers of distinct elements."
    )
    charge_balanced: bool = Field(
        True, description="Keep only compositions some choice of oxidation states makes neutral."
    )
    rank_by: Literal["max", "min", "ucb"] = Field(
        "max", description="Highest mean first, lowest mean first, or highest mean + std."
    )
    top_k: int = Field(50, ge=1, le=1000, description="Candidates kept in the result.")


# --- generative design ---------------------------------------------------------------------


class GenerateSampleCreate(_Body):
    """Sample new compositions from a shipped generative model (``rnn``: the formula language
    model; ``gan``: the MatGAN-style network), each annotated with its validity, novelty and
    nearest known composition."""

    model: Literal["rnn", "gan"] = Field("rnn", description="Which shipped generator.")
    n: int = Field(1000, ge=1, le=20_000, description="Compositions to draw.")
    temperature: float = Field(
        1.0, gt=0, le=5, description="Above 1: more novel, less often charge-balanced."
    )
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling (rnn only).")
    elements_in: list[ElementSymbol] = Field(
        [], max_length=8, description="Elements every sample contains."
    )
    elements_out: list[ElementSymbol] = Field(
        [], max_length=100, description="Elements no sample contains."
    )
    seed: int = Field(0, ge=0, le=2**31 - 1)


class DesignCreate(_Body):
    """Design compositions against a trained model: a goal on the model's property, a search
    method and a budget of distinct compositions the model may score."""

    goal: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300, pattern=r"\S")
    ] = (
        Field(description='e.g. "band_gap in [1.0, 1.8]", "band_gap >= 5", "maximize band_gap".')
    )
    method: Literal["rl", "ga", "best-of-n", "random"] = Field(
        "rl",
        description="Reinforcement learning from the shipped language model, a genetic "
        "algorithm, the best of N language-model samples, or random compositions.",
    )
    budget: int = Field(1000, ge=10, le=5000, description="Distinct compositions scored.")
    top_k: int = Field(50, ge=1, le=500, description="Designs kept in the result.")
    elements_in: list[ElementSymbol] = Field(
        [], max_length=8, description="Elements every design contains."
    )
    elements_out: list[ElementSymbol] = Field(
        [], max_length=100, description="Elements no design contains."
    )
    seed: int = Field(0, ge=0, le=2**31 - 1)


# --- xrd -----------------------------------------------------------------------------------


class XrdCandidateOut(BaseModel):
    """A class of one of the classifier's heads with its calibrated probability (0–1)."""

    name: str
    probability: float


class XrdMatchOut(BaseModel):
    """A candidate structure (AFLOW prototype). For the first ``overlay`` matches, its profile
    simulated with the lattice scale that fits the pattern best (2θ in degrees, max 1), the
    fitted scale and the cosine similarity to the measurement (0–1)."""

    name: str = Field(description="Prototype label with its example compound and mineral.")
    prototype: str
    space_group: str | None
    probability: float
    two_theta: list[float] | None = None
    intensity: list[float] | None = None
    score: float | None = None
    lattice_scale: float | None = None


class XrdIdentifyOut(BaseModel):
    """The measured pattern (2θ in degrees at ``wavelength`` Å, Cu Kα1; at most 4000 points)
    and what the classifier makes of it. A head whose best probability is below ``threshold``
    is uncertain."""

    source: str
    wavelength: float
    two_theta: list[float]
    intensity: list[float]
    threshold: float
    crystal_systems: list[XrdCandidateOut]
    space_groups: list[XrdCandidateOut]
    matches: list[XrdMatchOut]
    warnings: list[str] = Field(
        [], description="What was assumed about the file (wavelength, axis) and what limits the answer."
    )


class XrdBatchRowOut(BaseModel):
    """What the classifier makes of one file of a batch: per head (crystal system, space group,
    AFLOW prototype) the best class, "uncertain" when its probability is below the
    classifier's threshold, and that probability (0–1, 4 decimals); the cell its peaks index
    to. Without an answer (null fields) when the file could not be read or identified: then
    ``error`` says why."""

    source: str = Field(
        description="The uploaded file's name (characters outside A-Za-z0-9._- as _)."
    )
    crystal_system: str | None = None
    crystal_system_probability: float | None = None
    space_group: str | None = None
    space_group_probability: float | None = None
    prototype: str | None = None
    prototype_probability: float | None = None
    indexed_system: str | None = Field(None, description="Lattice system of the indexed cell.")
    indexed_cell: str | None = Field(None, description="a b c of the indexed cell in Å.")
    m20: float | None = Field(None, description="De Wolff's figure of merit M20 of the indexing.")
    warnings: list[str] = Field(
        [], description="What was assumed about the file (wavelength, axis) and what limits it."
    )
    error: str | None = Field(
        None, description="Why the file could not be identified; null when it was."
    )


class XrdBatchOut(BaseModel):
    """One row per uploaded pattern file, in upload order."""

    files: list[XrdBatchRowOut]


# --- campaigns -----------------------------------------------------------------------------

CampaignName = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        min_length=1,
        max_length=100,
        pattern=r"^[^/:\x00-\x1f\x7f]*[^/:\s\x00-\x1f\x7f][^/:\x00-\x1f\x7f]*$",
    ),
]


class CampaignCreate(_Body):
    name: CampaignName
    property: PropertyName = Field(
        description="The objective: a property measured in the project (its measurements are "
        "the campaign's initial results)."
    )
    goal: Literal["max", "min"] = "max"
    candidates: list[Formula] = Field(
        min_length=1, max_length=5000, description="Candidate formulas the campaign picks from."
    )
    seed: int = Field(0, ge=0, le=2**31 - 1)


class CampaignSummaryOut(BaseModel):
    id: str
    project_id: str
    name: str
    property: str
    goal: Literal["max", "min"]
    created_at: datetime


class SuggestionOut(BaseModel):
    """A proposed experiment with the surrogate's prediction when it was chosen."""

    id: str
    batch: int | None
    status: str
    formula: str
    mean: float | None
    std: float | None
    acquisition: float | None


class ObservationOut(BaseModel):
    """A recorded result; ``best_so_far`` is the best value up to and including it."""

    formula: str
    value: float | None
    source: str
    batch: int
    best_so_far: float | None


class CampaignOut(CampaignSummaryOut):
    unit: str | None
    n_candidates: int
    observations: int
    pending: int
    batches: int
    best: ObservationOut | None
    suggestions: list[SuggestionOut]
    history: list[ObservationOut]


class CampaignSuggest(_Body):
    n: int = Field(1, ge=1, le=50, description="How many experiments to propose.")


class ResultIn(_Body):
    suggestion_id: PublicId
    value: FiniteFloat


class CampaignObserve(_Body):
    results: list[ResultIn] = Field(min_length=1, max_length=1000)


class ObserveOut(BaseModel):
    matched: int
    unplanned: int
    duplicates: int
