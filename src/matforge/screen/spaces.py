"""The old path of :mod:`matforge.screen.candidate_spaces` (renamed: ``design.spaces`` holds
design spaces, which are another thing); kept for ``benchmarks/screen.py`` and old imports."""

from matforge.screen.candidate_spaces import *  # noqa: F403
from matforge.screen.candidate_spaces import __all__  # noqa: F401
