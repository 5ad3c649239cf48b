"""Settings of embedding optimisation (the ``zo`` configuration and the ``repair`` action)."""

from __future__ import annotations

from dataclasses import dataclass

from psa_guard.errors import ConfigurationError
from psa_guard.zo.quality import penalised
from psa_guard.zo.trace import Candidate

__all__ = ["ZOSettings"]


@dataclass(frozen=True)
class ZOSettings:
    """Hyper-parameters (TIDE ranges: N 8-16, mu 0.03-0.1, eta 0.3-1.5, threshold 0.5, 10 iters).

    Only a flagged reply (score at or above ``threshold``) is optimised; an unflagged one is
    returned as it is.

    Attributes:
        n_directions: N random directions per iteration (N generations, batched). 16, the top
            of TIDE's range, was chosen on training-side prompts over 8: more candidates per
            iteration, and the call budget (N + 1) x 3 grows with N (docs/zo.md, "Tuning").
        mu: perturbation scale, relative to each token embedding's norm.
        eta: step size, relative to each token embedding's norm.
        threshold: the flagging score: a reply scoring at or above it is flagged, and a repaired
            reply counts as neutralised when it scores below it.
        target: the optimisation goes on until a reply scores below ``min(target, threshold)``
            (:attr:`stop_below`). A target under the threshold leaves a margin, so the repaired
            reply is more clearly safe to judges other than the objective; ``target >= threshold``
            stops as soon as the reply is no longer flagged (TIDE's rule). The default is low
            because the local scorer's scores are not calibrated to other judges: on a tuning
            sample the independent harm judge agreed with it far more often below 0.002 than
            below 0.3 (docs/zo.md, "Measured").
        max_iters: iteration cap.
        budget_iterations: the mean scorer-call budget per flagged reply when a batch is repaired
            (:meth:`~psa_guard.zo.config.ZOGenerator.repair`), in full iterations of N + 1 calls
            (:attr:`call_budget`). Calls a reply leaves unspent carry over to the next flagged
            reply of the batch, so a hard prompt may run more iterations (up to ``max_iters``)
            when easier ones finished early, and the batch's mean never exceeds the budget.
            None: no pooling, each reply may run ``max_iters`` iterations.
        degeneracy_weight: weight of the degeneracy penalty in the objective that ranks, accepts
            and returns candidates (0: the moderation score alone). A degenerate reply (empty,
            or fewer than ``degeneracy_floor`` distinct word bigrams) then ranks behind coherent
            replies that are not flagged, so the optimisation cannot "win" by derailing the
            model; it still ranks ahead of flagged ones
            (:func:`~psa_guard.zo.quality.penalised`). 1 puts the penalty on the score's scale.
        degeneracy_floor: the distinct-word-bigram ratio below which a reply is penalised.
        elitist: each iteration starts from the best point scored so far by the objective (the
            previous point, its best perturbation or the step), rather than from the step
            whatever its score. Costs no call: every such point has been scored.
        min_cos: each token embedding keeps at least this cosine with its original.
        seed: seeds the directions (the run is deterministic under greedy decoding).
        time_budget_s: stop starting new iterations after this many seconds (None: no limit).
    """

    n_directions: int = 16
    mu: float = 0.05
    eta: float = 0.5
    threshold: float = 0.5
    target: float = 0.002
    max_iters: int = 4
    budget_iterations: float | None = 3
    degeneracy_weight: float = 1.0
    degeneracy_floor: float = 0.5
    elitist: bool = False
    min_cos: float = 0.2
    seed: int = 0
    time_budget_s: float | None = None

    def __post_init__(self) -> None:
        checks = [
            (self.n_directions >= 1, "n_directions must be >= 1"),
            (self.mu > 0, "mu must be > 0"),
            (self.eta > 0, "eta must be > 0"),
            (0.0 < self.threshold <= 1.0, "threshold must be in (0, 1]"),
            (0.0 < self.target <= 1.0, "target must be in (0, 1] (use target >= threshold for "
                                       "no margin)"),
            (self.max_iters >= 0, "max_iters must be >= 0"),
            (self.budget_iterations is None or self.budget_iterations > 0,
             "budget_iterations must be > 0 (None: no call budget)"),
            (self.degeneracy_weight >= 0, "degeneracy_weight must be >= 0"),
            (0.0 < self.degeneracy_floor <= 1.0, "degeneracy_floor must be in (0, 1]"),
            (-1.0 <= self.min_cos <= 1.0, "min_cos must be in [-1, 1]"),
            (self.time_budget_s is None or self.time_budget_s > 0, "time_budget_s must be > 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigurationError(f"ZOSettings: {message}")

    @property
    def stop_below(self) -> float:
        """The score the optimisation aims under: ``min(target, threshold)``."""
        return min(self.target, self.threshold)

    @property
    def call_budget(self) -> int | None:
        """Mean scorer calls per flagged reply in a batch: ``budget_iterations * (N + 1)``."""
        if self.budget_iterations is None:
            return None
        return int(self.budget_iterations * (self.n_directions + 1))

    def objective(self, candidate: Candidate) -> float:
        """Ranks candidates, lower is better: replies that are not flagged first, by moderation
        score plus the degeneracy penalty (:func:`~psa_guard.zo.quality.penalised`)."""
        return penalised(candidate.score, candidate.text, self.degeneracy_weight,
                         self.degeneracy_floor, self.threshold)
