"""Exception hierarchy. Every input boundary raises a subclass of :class:`MatforgeError`
whose message names the bad value and where it came from (file, line, column)."""

from __future__ import annotations


class MatforgeError(Exception):
    """Base class of every error matforge raises on purpose."""


class MatforgeWarning(UserWarning):
    """Something the user should know that does not stop the work (what was assumed, what a
    library reported about an input); the CLI prints it as one ``warning: ...`` line."""


class InvalidFormula(MatforgeError, ValueError):
    """A chemical formula string could not be parsed."""


class DatasetError(MatforgeError, KeyError):
    """Unknown dataset name or a damaged bundled data file."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class IngestError(MatforgeError, ValueError):
    """Rows of an input file failed validation; ``rows`` lists (line, column, message)."""

    def __init__(self, message: str, rows: list | None = None):
        super().__init__(message)
        self.rows = rows or []


class DuplicateIngest(IngestError):
    """The same file or table was already ingested into the project (``allow_duplicate``).

    ``dataset_id`` is the store's row id of the dataset already there; :meth:`naming` gives the
    message with another name for it (the server shows its public id, never a row number)."""

    def __init__(self, before: str, dataset_id: int, after: str):
        super().__init__(f"{before}{dataset_id}{after}")
        self.dataset_id = dataset_id
        self._parts = (before, after)

    def naming(self, dataset: str) -> str:
        """The message, with ``dataset`` where it names the dataset already ingested."""
        before, after = self._parts
        return f"{before}{dataset}{after}"


class UnitError(MatforgeError, ValueError):
    """A unit string is unknown or incompatible with the property's canonical unit."""


class StoreError(MatforgeError):
    """The persistent store is unreachable, has an incompatible schema, or refused a write."""


class PatternFileError(MatforgeError, ValueError):
    """A diffraction pattern file is unreadable, malformed or in an unsupported format."""


class StructureFileError(MatforgeError, ValueError):
    """A crystal structure file (CIF) is unreadable, malformed or unusable."""


class ModelRegistryError(MatforgeError):
    """A saved model is missing, damaged, untrusted or written in an incompatible format."""


class DesignSpaceError(MatforgeError, ValueError):
    """A design space, objective or proposal is invalid (impossible bounds, bad spec string)."""


class ScreenError(MatforgeError, ValueError):
    """A screening space, filter expression, ranking or checkpoint is invalid."""


class SpaceSpecError(ScreenError):
    """A candidate-space spec string names no space (:func:`matforge.screen.space_from_spec`);
    ``option`` is the command-line option at fault (``"SPACE"``, ``"--elements"``), or None."""

    def __init__(self, message: str, option: str | None = None):
        super().__init__(message)
        self.option = option


class CatalysisError(MatforgeError, ValueError):
    """A surface notation, metal, adsorbate or catalysis model input is invalid, or an oracle
    package is missing."""


class GenerateError(MatforgeError, ValueError):
    """A generative model, reward or sampling request is invalid."""


class TableError(MatforgeError, ValueError):
    """A table file is missing, unreadable, of an unknown type, or lacks the sheet asked for."""


class TooManyColumns(IngestError):
    """A table has more columns than the limit it is read under (``max_columns``)."""


class StructureIngestError(IngestError, StructureFileError):
    """A structure file cannot be read or holds something that is not a valid crystal
    structure; the message names the file (and the entry inside it). Both an ingest error
    (``rows``: ``(file, reason)`` per refused file) and a :class:`StructureFileError`."""


class CampaignError(MatforgeError, ValueError):
    """A campaign operation that cannot be done (unknown campaign, bad results file, ...)."""


class AccountError(MatforgeError, ValueError):
    """A user or token operation was refused (bad name, unknown or duplicate user)."""


class TokenRefused(AccountError):
    """A presented token authenticates nobody; the message says why (unknown, revoked, expired,
    user disabled), for the 401 it becomes."""


# --- the server's answers: not input errors of the library, but exceptions all the same ------


class JobCancelled(Exception):
    """Raised inside a server job whose runner is shutting down."""


class ApiError(Exception):
    """An error the REST API answers as its ``ErrorOut`` body with HTTP status ``status``."""

    def __init__(self, status: int, detail: str, errors: list | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors


class OptimadeError(Exception):
    """An error the OPTIMADE endpoint answers in OPTIMADE's JSON:API error format."""

    def __init__(self, status: int, title: str, detail: str):
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail

    @classmethod
    def from_optimade(cls, exc) -> OptimadeError:
        """From an ``optimade.server.exceptions.OptimadeHTTPException``."""
        return cls(exc.status_code, exc.title, str(exc.detail))
