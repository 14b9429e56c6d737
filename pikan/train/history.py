"""What :func:`pikan.fit` returns: the history of a fit and its result record."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class History:
    """What a fit did.

    Attributes
    ----------
    rows : list of dict
        One per accepted optimizer step: ``step``, ``stage`` (index), ``optimizer``,
        ``lr``, ``loss`` (the batch objective), one key per loss term (``acceleration`` or
        ``rollout``, ``sparsity``, soft-constraint penalties; weighted, they sum to
        ``loss``), ``train`` (the data term) and ``val`` (validation data loss, None on
        steps without a check).
    events : list of dict
        ``kind`` in ``adapt``, ``prune``, ``refine``, ``fault``, ``divergence``,
        ``early_stop``, ``time_limit``, ``restore_best``, ``interrupt``, ``resume``, each
        with ``step`` and ``stage``. A ``divergence`` event has ``reason``, ``restored``
        (what the model went back to), ``lr_scale``, ``recoveries`` and ``gave_up``.
    """

    rows: list = field(default_factory=list)
    events: list = field(default_factory=list)

    def column(self, key: str) -> list:
        """Values of ``key`` over the rows (None where a row lacks it)."""
        return [row.get(key) for row in self.rows]

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)


@dataclass
class FitResult:
    """The outcome of :func:`fit`.

    Attributes
    ----------
    history : History
    best_val : float
        Validation data loss of the returned parameters (the restored best of the last fit
        stage; the training subset when there is no validation split).
    choices : dict
        Every option as resolved (loss and why, steps, recipe, lr, batch size, device,
        dtype, window, ...), with the reasons of automatic choices.
    wall_time : float
        Seconds spent in this call.
    steps : int
        Optimizer steps attempted, including those before a resume and rejected ones (each
        rejected step has a ``fault`` event and no row).
    interrupted : bool
        True when stopped by Ctrl-C or the callback (a checkpoint was written if a path
        was given).
    checkpoint : str or None
    stopped : str
        Why training ended, for printing: ``"steps done"``, ``"early stop"`` (the last fit
        stage stopped when validation stalled), ``"time limit"``, ``"diverged"`` (divergence
        recoveries used up; the best state is kept) or ``"interrupted"``.
    warnings : list of str
        What the caller should hear about (a divergence that could not be recovered from).
    """

    history: History
    best_val: float
    choices: dict
    wall_time: float
    steps: int
    interrupted: bool = False
    checkpoint: str | None = None
    stopped: str = "steps done"
    warnings: list = field(default_factory=list)

    @property
    def diverged(self) -> bool:
        """Whether a divergence was detected (recovered or not: see the events)."""
        return any(e["kind"] == "divergence" for e in self.history.events)

    @property
    def events(self) -> list:
        return self.history.events
