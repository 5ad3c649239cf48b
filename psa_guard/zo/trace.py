"""What one embedding optimisation saw, and what another stopping rule would have returned.

Every reply the loop scores and keeps is a :class:`Candidate`. A run's trace holds, in scoring
order, the initial reply and, for each iteration, the best of its N perturbed replies and then the
reply at the stepped embeddings. The trajectory (the stepped embeddings) depends neither on the
target nor on the iteration cap nor on whether perturbations may be accepted: those only decide
where the loop stops and which candidate it returns. So :func:`replay` tells exactly what a run
with a higher stopping score, fewer iterations, or the older rule (steps only, last reply) would
have returned, from one trace. The optimiser itself picks its result with :func:`replay`, so the
rule is written once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import torch

__all__ = ["Candidate", "Outcome", "Source", "replay"]

#: Where a reply came from: the unmodified prompt, a perturbed point, or a descent step.
Source = Literal["initial", "perturbation", "step"]


@dataclass(frozen=True)
class Candidate:
    """One scored reply.

    Attributes:
        text: the reply.
        score: its moderation score.
        source: ``initial``, ``perturbation`` (the best of an iteration's N) or ``step``.
        iteration: the iteration that produced it (0 for the initial reply).
        calls: scorer calls spent when it had been scored (cumulative, this one included).
        embeddings: (T, D) the prompt embeddings that produced it, when kept.
    """

    text: str
    score: float
    source: Source
    iteration: int
    calls: int
    embeddings: torch.Tensor | None = field(default=None, compare=False, repr=False)


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
    accept_perturbations: bool = True, keep_best: bool = True,
) -> Outcome | None:
    """Apply a stopping rule to a recorded trace.

    The rule: stop at the first seen candidate scoring below ``stop_below`` (perturbations are
    seen only when ``accept_perturbations``; an iteration's perturbations come before its step)
    or after ``max_iters`` iterations; return the lowest-scoring seen candidate (the earliest on
    ties) when ``keep_best``, else the last one seen.
    ``accept_perturbations=False, keep_best=False, stop_below=threshold`` is the original TIDE
    loop, which only ever returned the reply at its last step. The initial reply is taken to be
    flagged (the optimiser records no iterations for one that is not).

    Args:
        trace: the run's candidates in scoring order, starting with the initial reply.
        stop_below: stop once a score is below this.
        max_iters: iteration cap (>= 0).
        accept_perturbations: an iteration's best perturbed reply may end the run.
        keep_best: return the best candidate seen rather than the last.

    Returns:
        The outcome, or None when the trace stops before this rule would (the run that recorded
        it stopped earlier: a lower stopping score or more iterations need a longer trace).
    """
    if not trace or trace[0].source != "initial":
        raise ValueError("a trace starts with the initial candidate")
    initial = trace[0]
    by_iteration: dict[tuple[int, str], Candidate] = {(c.iteration, c.source): c for c in trace[1:]}
    seen = [initial]
    iterations, calls = 0, initial.calls
    while seen[-1].score >= stop_below and iterations < max_iters:
        iterations += 1
        perturbation = by_iteration.get((iterations, "perturbation"))
        if perturbation is None:
            return None
        calls = perturbation.calls
        if accept_perturbations:
            seen.append(perturbation)
            if perturbation.score < stop_below:
                break
        step = by_iteration.get((iterations, "step"))
        if step is None:
            return None
        seen.append(step)
        calls = step.calls
    chosen = min(seen, key=lambda c: c.score) if keep_best else seen[-1]
    return Outcome(chosen, iterations, calls)
