"""Catalogue of ready-made mechanical systems (installed as ``pikan.systems``).

Each system lives in its own file (``pikan.systems.kepler``, ...) and is also reachable
through the registry::

    >>> import pikan.systems
    >>> pikan.systems.names()[:3]
    ('harmonic', 'pendulum', 'anisotropic')
    >>> kepler = pikan.systems.get("kepler")
    >>> data = kepler.simulate(seed=0)          # truth + sampler + default settings
    >>> spec = kepler.model()                   # V(r) learned by a KAN

See :mod:`pikan.systems._registry` for what every system file provides.
"""

from pikan.systems._registry import CatalogueEntry, entries, get, names

__all__ = ["CatalogueEntry", "entries", "get", "names"]
