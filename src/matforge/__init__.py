"""matforge: open, local-first platform for AI-driven materials discovery.

Importing the package is cheap: heavy libraries (pymatgen, torch, dask) load only in the
sub-modules that need them. The subpackages load on first use, so in a notebook
``import matforge`` is enough (``matforge.chem.parse_formula("Fe2O3")``) and tab completion
lists them.
"""

__version__ = "0.1.0"

from matforge.errors import MatforgeError  # noqa: E402  (light: no third-party imports)

#: the subpackages reached as attributes (``matforge.xrd``); each imports on first access.
#: ``cli`` is the command line, not an API, and is left out.
_SUBPACKAGES = (
    "catalysis",
    "chem",
    "datasets",
    "design",
    "features",
    "generate",
    "models",
    "properties",
    "report",
    "screen",
    "server",
    "store",
    "xrd",
)

__all__ = ["MatforgeError", "__version__"]


def __getattr__(name: str):
    # PEP 562: called only for names not yet in the module; an imported subpackage is set as
    # an attribute by the import system and is found directly next time.
    return _import_submodule(__name__, name)


def __dir__() -> list[str]:
    return sorted({*globals(), *_SUBPACKAGES})


def _import_submodule(package: str, name: str):
    """Submodule ``package.name``, imported now: what a package's ``__getattr__`` returns so
    that ``matforge.xrd.identify`` needs no ``import`` of its own. A name that is no public
    submodule (``__main__`` is not imported this way) raises the AttributeError Python gives
    for a missing attribute."""
    import importlib
    import sys

    if not name.startswith("_") and name in _submodule_names(sys.modules[package].__path__):
        return importlib.import_module(f"{package}.{name}")
    raise AttributeError(f"module {package!r} has no attribute {name!r}")


def _submodule_names(path) -> list[str]:
    """Public modules and packages in a package's folder(s) ``path`` (its ``__path__``), for
    its ``__dir__``: tab completion lists them before they are imported."""
    import pkgutil

    return [m.name for m in pkgutil.iter_modules(path) if not m.name.startswith("_")]
