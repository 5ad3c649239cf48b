"""What one embedding optimisation saw, and what another stopping rule would have returned.

Every reply the loop scores is a :class:`Candidate`. A run's trace holds, in scoring order, the
initial reply and, for each iteration, its N perturbed replies and then the reply at the stepped
embeddings. The trajectory (the stepped embeddings) depends neither on the target nor on the
iteration cap nor on whether perturbations may be accepted nor on the objective that ranks the
candidates (the gradient uses the moderation scores alone): those only decide where the loop stops
and which candidate it returns. So :func:`replay` tells exactly what a run with a higher stopping
score, fewer iterations, another ranking objective, or the older rule (steps only, last reply)
would have returned, from one trace. The optimiser itself picks its result with :func:`replay`, so
the rule is written once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import torch

__all__ = ["Candidate", "Objective", "Outcome", "Source", "by_score", "replay"]

#: Where a reply came from: the unmodified prompt, a perturbed point, or a descent step.
Source = Literal["initial", "perturbation", "step"]


@dataclass(frozen=True)
class Candidate:
    """One scored reply.

    Attributes:
        text: the reply.
        score: its moderation score.
        source: ``initial``, ``perturbation`` (one of an iteration's N) or ``step``.
        iteration: the iteration that produced it (0 for the initial reply).
        calls: scorer calls spent when it had been scored (cumulative, this one included; the N
            perturbed replies of an iteration are scored as one batch and share the count).
        embeddings: (T, D) the prompt embeddings that produced it, when kept.
    """

    text: str
    score: float
    source: Source
    iteration: int
    calls: int
    embeddings: torch.Tensor | None = field(default=None, compare=False, repr=False)


#: Ranks candidates, lower is better: the stopping test and the choice use it.
Objective = Callable[[Candidate], float]


def by_score(candidate: Candidate) -> float:
    """The default objective: the moderation score alone."""
    return candidate.score


@dataclass(frozen=True)
class Outcome:
    """What a stopping rule returns from a trace.

    Attributes:
        chosen: the candidate returned.
        iterations: iterations run before stopping.
        scorer_calls: scorer calls spent up to the stop (cumulative).
    """

    chosen: Candidate
    iterations: int
    scorer_calls: int


def replay(
    trace: Sequence[Candidate], stop_below: float, max_iters: int, *,
    accept_perturbations: bool = True, keep_best: bool = True, objective: Objective = by_score,
) -> Outcome | None:
    """Apply a stopping rule to a recorded trace.

    The rule: each iteration's perturbed replies are ranked by ``objective`` and the best one (the
    earliest on ties) is seen first, then the step's reply; stop at the first seen candidate whose
    objective is below ``stop_below`` (perturbations are seen only when ``accept_perturbations``)
    or after ``max_iters`` iterations; return the seen candidate with the lowest objective (the
    earliest on ties) when ``keep_best``, else the last one seen.
    ``accept_perturbations=False, keep_best=False, stop_below=threshold`` is the original TIDE
    loop, which only ever returned the reply at its last step. The initial reply is taken to be
    flagged (the optimiser records no iterations for one that is not).

    Args:
        trace: the run's candidates in scoring order, starting with the initial reply.
        stop_below: stop once a candidate's objective is below this.
        max_iters: iteration cap (>= 0).
        accept_perturbations: an iteration's best perturbed reply may end the run.
        keep_best: return the best candidate seen rather than the last.
        objective: ranks candidates, lower is better (default: the moderation score).

    Returns:
        The outcome, or None when the trace stops before this rule would (the run that recorded
        it stopped earlier: a lower stopping score or more iterations need a longer trace).
    """
    if not trace or trace[0].source != "initial":
        raise ValueError("a trace starts with the initial candidate")
    initial = trace[0]
    perturbations: dict[int, list[Candidate]] = {}
    steps: dict[int, Candidate] = {}
    for candidate in trace[1:]:
        if candidate.source == "perturbation":
            perturbations.setdefault(candidate.iteration, []).append(candidate)
        elif candidate.source == "step":
            steps[candidate.iteration] = candidate
    seen = [initial]
    iterations, calls = 0, initial.calls
    while objective(seen[-1]) >= stop_below and iterations < max_iters:
        iterations += 1
        batch = perturbations.get(iterations)
        if not batch:
            return None
        calls = max(c.calls for c in batch)
        if accept_perturbations:
            best = min(batch, key=objective)  # the earliest on ties
            seen.append(best)
            if objective(best) < stop_below:
                break
        step = steps.get(iterations)
        if step is None:
            return None
        seen.append(step)
        calls = step.calls
    chosen = min(seen, key=objective) if keep_best else seen[-1]
    return Outcome(chosen, iterations, calls)
