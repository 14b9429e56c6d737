"""pikan: physics-informed modeling on Kolmogorov-Arnold Networks.

The public API is re-exported here; nothing is defined in this file.
"""

from pikan._version import __version__
from pikan.errors import DataError, SpecError

__all__ = ["__version__", "DataError", "SpecError"]
