"""The progressive KAN recipe as data: a :class:`Recipe` is a list of :class:`Stage` records.

The default (:meth:`Recipe.default`) is the KAN 2.0 recipe::

    fit the coarse grid with sparsity (Adam, then L-BFGS) -> prune edges by attribution
    -> adapt the grids to the data -> refine the grids -> fit again (Adam, then L-BFGS)

Stages are frozen records with a JSON-able ``to_dict`` (a checkpoint stores the recipe and
the position in it); :func:`pikan.train.loop.fit` runs them on a model and trajectories.
:meth:`Recipe.surrogate` is the recipe of the small KAN that :func:`pikan.find_law` fits to
static samples, run by :func:`pikan.laws.find_law.fit_static`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

KINDS = ("fit", "prune", "adapt", "refine")
OPTIMIZERS = ("adam", "adamw", "lbfgs", "adam+lbfgs")
PARAMS = ("all", "coefficients")
"""What a fit stage moves: every parameter, or the spline coefficients alone."""


@dataclass(frozen=True)
class Stage:
    """One stage of a :class:`Recipe`.

    Build stages with the constructors :meth:`fit`, :meth:`prune`, :meth:`adapt` and
    :meth:`refine`.

    Attributes
    ----------
    kind : {"fit", "prune", "adapt", "refine"}
    steps : int
        Optimizer steps of a fit stage.
    optimizer : {"adam", "adamw", "lbfgs", "adam+lbfgs"}
        ``"adam+lbfgs"`` is expanded by :class:`Recipe` into an Adam stage (3/4 of the
        steps) and an L-BFGS stage (1/4).
    lr : float or None
        Base learning rate (None: the fit's ``lr`` for Adam, 1 for L-BFGS).
    sparsity : float
        Weight of the KAN sparsity penalty (:func:`pikan.train.losses.sparsity`).
    patience : int or None
        Validation checks without improvement before the stage stops early (None: auto).
    threshold : float
        Prune: edges scoring below ``threshold`` times the layer's largest score go.
    grid : int or None
        Refine: the new number of grid intervals (None: twice the current grid).
    params : {"all", "coefficients"}
        What a fit stage moves: every parameter, or the spline coefficients alone (with the
        base and spline scales fixed, a fit from a fresh KAN is close to linear least
        squares, where L-BFGS from all parameters often stalls). Honoured by the static
        driver :func:`pikan.laws.find_law.fit_static`; :func:`pikan.fit` moves every
        trainable parameter.
    """

    kind: str
    steps: int = 0
    optimizer: str = "adam"
    lr: float | None = None
    sparsity: float = 0.0
    patience: int | None = None
    threshold: float = 0.02
    grid: int | None = None
    params: str = "all"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"stage kind must be one of {KINDS}, got {self.kind!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.kind == "fit" and (int(self.steps) != self.steps or self.steps < 1):
            raise ValueError(f"a fit stage needs steps >= 1, got {self.steps!r}")
        if self.sparsity < 0 or (self.lr is not None and not self.lr > 0):
            raise ValueError(f"stage needs sparsity >= 0 and lr > 0, got {self.sparsity}, "
                             f"{self.lr}")
        if self.grid is not None and (int(self.grid) != self.grid or self.grid < 1):
            raise ValueError(f"refine grid must be a positive integer, got {self.grid!r}")
        if self.params not in PARAMS:
            raise ValueError(f"params must be one of {PARAMS}, got {self.params!r}")

    @classmethod
    def fit(cls, steps: int, optimizer: str = "adam", lr: float | None = None,
            sparsity: float = 0.0, patience: int | None = None, params: str = "all") -> Stage:
        """Train for ``steps`` optimizer steps (with early stopping and restore-best)."""
        return cls("fit", steps=int(steps), optimizer=optimizer, lr=lr, sparsity=sparsity,
                   patience=patience, params=params)

    @classmethod
    def prune(cls, threshold: float = 0.02) -> Stage:
        """Mask edges whose attribution score on the training data is below ``threshold``."""
        return cls("prune", threshold=threshold)

    @classmethod
    def adapt(cls) -> Stage:
        """Move every learned KAN's grid to the quantiles of its inputs on the training data."""
        return cls("adapt")

    @classmethod
    def refine(cls, grid: int | None = None) -> Stage:
        """Refine every learned KAN to ``grid`` intervals (default: twice the current)."""
        return cls("refine", grid=grid)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def label(self) -> str:
        """A name for the progress display: ``"Adam fit with sparsity"``, ``"L-BFGS fit"``,
        ``"prune edges"``, ``"adapt grids"``, ``"refine grids to 10"``."""
        if self.kind == "fit":
            name = {"adam": "Adam", "adamw": "AdamW", "lbfgs": "L-BFGS",
                    "adam+lbfgs": "Adam+L-BFGS"}[self.optimizer]
            what = " of the coefficients" if self.params == "coefficients" else ""
            return f"{name} fit{what}" + (" with sparsity" if self.sparsity else "")
        if self.kind == "prune":
            return "prune edges"
        if self.kind == "refine":
            return f"refine grids to {self.grid}" if self.grid else "refine grids (x2)"
        return "adapt grids"

    def __str__(self) -> str:
        if self.kind == "fit":
            extra = f", sparsity={self.sparsity:g}" if self.sparsity else ""
            if self.params != "all":
                extra += f", params={self.params}"
            return f"fit({self.steps} {self.optimizer}{extra})"
        if self.kind == "prune":
            return f"prune({self.threshold:g})"
        if self.kind == "refine":
            return f"refine({self.grid or 'x2'})"
        return "adapt"


class Recipe:
    """A sequence of stages run by :func:`fit`.

    Parameters
    ----------
    stages : sequence of Stage
        ``"adam+lbfgs"`` fit stages are split into an Adam and an L-BFGS stage.

    Examples
    --------
    >>> Recipe([Stage.fit(300, sparsity=1e-3), Stage.prune(), Stage.adapt(),
    ...         Stage.refine(10), Stage.fit(300, "adam+lbfgs")])
    Recipe(fit(300 adam, sparsity=0.001) -> prune(0.02) -> adapt -> refine(10) -> fit(225 adam) -> fit(75 lbfgs))
    """

    def __init__(self, stages) -> None:
        expanded = []
        for stage in stages:
            if not isinstance(stage, Stage):
                raise TypeError(f"a Recipe holds Stage records, got {stage!r}; hint: "
                                 "Stage.fit(steps), Stage.prune(), Stage.adapt(), Stage.refine()")
            if stage.kind == "fit" and stage.optimizer == "adam+lbfgs":
                n_lbfgs = max(1, stage.steps // 4)
                if stage.steps > n_lbfgs:
                    expanded.append(Stage.fit(stage.steps - n_lbfgs, "adam", stage.lr,
                                              stage.sparsity, stage.patience, stage.params))
                expanded.append(Stage.fit(n_lbfgs, "lbfgs", None, stage.sparsity, stage.patience,
                                          stage.params))
            else:
                expanded.append(stage)
        if not any(s.kind == "fit" for s in expanded):
            raise ValueError("a Recipe needs at least one fit stage")
        self.stages = tuple(expanded)

    @classmethod
    def default(cls, steps: int = 800, sparsity: float = 1e-3, threshold: float = 0.02,
                grid: int | None = None, optimizer: str | None = None,
                refine: bool = True) -> Recipe:
        """The progressive recipe: 40 % of ``steps`` fitting the coarse grid with sparsity,
        prune, adapt, refine (to ``grid``; default twice the current; skipped with
        ``refine=False``), 60 % fitting again.

        Both fits run Adam then L-BFGS (unless ``optimizer`` says otherwise): pruning needs a
        converged fit, since an irrelevant input's edges only flatten out once the data are
        matched."""
        coarse = max(2, round(0.4 * steps))
        middle = [Stage.prune(threshold), Stage.adapt()] + ([Stage.refine(grid)] if refine else [])
        return cls([Stage.fit(coarse, optimizer or "adam+lbfgs", sparsity=sparsity), *middle,
                    Stage.fit(max(2, steps - coarse), optimizer or "adam+lbfgs")])

    @classmethod
    def plain(cls, steps: int = 800, optimizer: str = "adam+lbfgs") -> Recipe:
        """A single fit stage: no sparsity, pruning or refinement."""
        return cls([Stage.fit(steps, optimizer)])

    @classmethod
    def surrogate(cls, steps: int = 800) -> Recipe:
        """The recipe of :func:`pikan.find_law`'s KAN surrogate, a static fit by L-BFGS.

        The spline coefficients alone, then every parameter with the sparsity penalty
        (weight 1e-4), prune (threshold 0.01), fit, then refine the grids to 10 and to 20
        with a fit after each. Each of the five fits runs ``steps // 4`` L-BFGS iterations
        in whole rounds of 20 (at least one round): ``steps`` sets the effort, as in
        :meth:`default`.
        """
        n = 20 * max(int(steps) // 20 // 4, 1)
        return cls([Stage.fit(n, "lbfgs", params="coefficients"),
                    Stage.fit(n, "lbfgs", sparsity=1e-4), Stage.prune(1e-2),
                    Stage.fit(n, "lbfgs"), Stage.refine(10), Stage.fit(n, "lbfgs"),
                    Stage.refine(20), Stage.fit(n, "lbfgs")])

    @property
    def total_steps(self) -> int:
        return sum(s.steps for s in self.stages if s.kind == "fit")

    def to_list(self) -> list[dict]:
        return [s.to_dict() for s in self.stages]

    @classmethod
    def from_list(cls, items) -> Recipe:
        return cls([Stage(**item) for item in items])

    def __len__(self) -> int:
        return len(self.stages)

    def __iter__(self):
        return iter(self.stages)

    def __getitem__(self, index: int) -> Stage:
        return self.stages[index]

    def __eq__(self, other) -> bool:
        return isinstance(other, Recipe) and self.stages == other.stages

    def __repr__(self) -> str:
        return f"Recipe({' -> '.join(str(s) for s in self.stages)})"
