"""matforge: open, local-first platform for AI-driven materials discovery.

Importing the package is cheap: heavy libraries (pymatgen, torch, dask) load only in the
sub-modules that need them.
"""

__version__ = "0.1.0"

from matforge.errors import MatforgeError  # noqa: E402  (light: no third-party imports)

__all__ = ["MatforgeError", "__version__"]
