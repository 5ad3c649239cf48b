"""Zeroth-order optimisation of a prompt's input embeddings against a moderation score.

The visible prompt is unchanged: only the embedding vectors fed to the model move. Candidates are
ranked by an objective: the moderation score plus, when ``degeneracy_weight`` is set, a penalty on
degenerate (empty or repetitive) replies (:func:`~psa_guard.zo.quality.penalised`). Each iteration scores
the reply at N perturbed embeddings (generated as one batch) and, if the best of them by the
objective is already below the stopping score, accepts it (its embeddings and reply) at no extra
cost. Otherwise it estimates the gradient of the moderation score
(:func:`~psa_guard.zo.math.zo_gradient`; the penalty does not enter it, so the trajectory is the
same whatever the objective), takes a per-token normalised, projected step
(:func:`~psa_guard.zo.math.descent_step`) and re-scores. It stops once a candidate's objective
falls below ``min(target, threshold)``, after ``max_iters`` iterations, or when the time budget is
spent, and returns the best candidate by the objective it has seen
(:func:`~psa_guard.zo.trace.replay` picks it), never a worse one.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from psa_guard.generation import ChatGenerator, Conversation, GenerationSettings
from psa_guard.zo.config import ZOSettings
from psa_guard.zo.math import descent_step, sample_directions, zo_gradient
from psa_guard.zo.quality import degeneracy
from psa_guard.zo.trace import Candidate, Source, replay

if TYPE_CHECKING:
    from psa_guard.moderation.base import ModerationScorer

__all__ = ["RepairResult", "EmbeddingOptimizer", "model_responder", "make_repairer"]

#: Turns a batch of prompt embeddings (B, T, D) into one reply text per row.
Responder = Callable[[torch.Tensor], list[str]]


@dataclass(frozen=True)
class RepairResult:
    """Outcome of one optimisation.

    Attributes:
        text: the returned reply: the best one seen by the objective (the initial reply
            included).
        score: its moderation score.
        initial_score: the score of the reply to the unmodified prompt.
        iterations: ZO iterations run.
        scorer_calls: texts scored (the initial one included when it was not given).
        seconds: wall time.
        neutralised: ``score`` is below the threshold.
        source: where ``text`` came from: ``initial``, ``step`` (a descent step) or
            ``perturbation`` (an iteration's best perturbed reply).
        trace: every scored candidate in scoring order (see :mod:`psa_guard.zo.trace`).
        embeddings: (T, D) the prompt embeddings that produce ``text``.
        degenerate: ``text`` is empty or repetitive (:func:`~psa_guard.zo.quality.degeneracy`
            above 0 at the settings' floor): the optimisation found nothing coherent that is
            not flagged. Not a usable answer: the policy's ``repair`` action then uses its
            fallback message.
    """

    text: str
    score: float
    initial_score: float
    iterations: int
    scorer_calls: int
    seconds: float
    neutralised: bool
    source: Source = "step"
    trace: tuple[Candidate, ...] = field(default=(), repr=False)
    embeddings: torch.Tensor | None = field(default=None, compare=False, repr=False)
    degenerate: bool = False


def model_responder(generator: ChatGenerator, settings: GenerationSettings) -> Responder:
    """Greedy replies of ``generator``'s model from prompt embeddings, one batch per call."""
    loaded = generator.loaded
    tokenizer = loaded.tokenizer

    def respond(embeds: torch.Tensor) -> list[str]:
        budget = generator.budget(embeds.shape[1], settings)
        with loaded.lock, torch.inference_mode():
            output = loaded.model.generate(
                inputs_embeds=embeds, attention_mask=torch.ones(embeds.shape[:2], dtype=torch.long),
                max_new_tokens=budget, do_sample=False, temperature=None, top_p=None, top_k=None,
                pad_token_id=tokenizer.pad_token_id,
            )
        return [generator.decode_reply(row.tolist(), settings)[0] for row in output]

    return respond


class EmbeddingOptimizer:
    """Optimise prompt embeddings so the reply's objective falls below the stopping score.

    Args:
        respond: replies from a batch of prompt embeddings (see :func:`model_responder`).
        scorer: the moderation scorer (the objective).
        settings: ZO hyper-parameters.
    """

    def __init__(self, respond: Responder, scorer: ModerationScorer,
                 settings: ZOSettings | None = None) -> None:
        self.respond = respond
        self.scorer = scorer
        self.settings = settings or ZOSettings()

    def optimise(
        self, embeddings: torch.Tensor, initial: tuple[str, float] | None = None,
        max_calls: int | None = None,
    ) -> RepairResult:
        """Run the optimisation from ``embeddings`` (T, D).

        Args:
            embeddings: the prompt's input embeddings, (T, D) float.
            initial: the reply and score at ``embeddings`` if already known (saves a call).
            max_calls: scorer calls this run may spend (the initial one included); an iteration
                starts only if its N + 1 calls fit. None: only ``max_iters`` limits it.
        """
        cfg = self.settings
        stop = cfg.stop_below
        start = time.perf_counter()
        calls = 0
        original = embeddings.detach().clone()
        if initial is None:
            text = self.respond(original.unsqueeze(0))[0]
            score = float(self.scorer.score([text])[0])
            calls += 1
        else:
            text, score = initial
        trace = [Candidate(text, float(score), "initial", 0, calls, original)]
        current, score = original.clone(), float(score)
        objective = cfg.objective
        generator = torch.Generator().manual_seed(cfg.seed)
        iterations = 0
        flagged = score >= cfg.threshold  # a reply that is not flagged is returned untouched
        last = base = trace[0]
        while flagged and objective(last) >= stop and iterations < cfg.max_iters:
            if cfg.time_budget_s is not None and time.perf_counter() - start > cfg.time_budget_s:
                break
            if max_calls is not None and calls + cfg.n_directions + 1 > max_calls:
                break
            iterations += 1
            directions = sample_directions(original, cfg.n_directions, generator)
            points = current.unsqueeze(0) + cfg.mu * directions
            replies = self.respond(points)
            scores = [float(s) for s in self.scorer.score(replies)]
            calls += len(replies)
            batch = [Candidate(reply, s, "perturbation", iterations, calls, point.clone())
                     for reply, s, point in zip(replies, scores, points)]
            trace.extend(batch)
            if objective(min(batch, key=objective)) < stop:
                break  # accept the best perturbed point: no step, no extra call
            gradient = zo_gradient(score, torch.tensor(scores), directions, cfg.mu)
            current = descent_step(current, original, gradient, cfg.eta, cfg.min_cos)
            text = self.respond(current.unsqueeze(0))[0]
            step_score = float(self.scorer.score([text])[0])
            calls += 1
            last = Candidate(text, step_score, "step", iterations, calls, current)
            trace.append(last)
            if cfg.elitist:  # ties go to the step, then to the perturbation: keep moving
                best = min((last, min(batch, key=objective), base), key=objective)
                current = best.embeddings if best.embeddings is not None else current
                base, score = best, best.score
            else:
                base, score = last, step_score
        outcome = replay(trace, stop, iterations, objective=objective)
        if outcome is None:  # pragma: no cover - the trace covers its own run by construction
            raise RuntimeError("the optimisation trace does not cover its own run")
        chosen = outcome.chosen
        return RepairResult(chosen.text, chosen.score, trace[0].score, iterations, calls,
                            time.perf_counter() - start, chosen.score < cfg.threshold,
                            chosen.source, tuple(trace), chosen.embeddings,
                            degeneracy(chosen.text, cfg.degeneracy_floor) > 0)

    def repair_prompt(
        self, generator: ChatGenerator, conversation: Conversation,
        initial: tuple[str, float] | None = None, max_calls: int | None = None,
    ) -> RepairResult:
        """Optimise the embeddings of ``conversation``'s templated prompt on ``generator``
        (``initial`` and ``max_calls`` as in :meth:`optimise`)."""
        ids = torch.tensor([generator.encode(conversation)])
        embed: Any = generator.loaded.model.get_input_embeddings()
        with torch.no_grad():
            embeddings = embed(ids)[0].float()
        return self.optimise(embeddings, initial, max_calls)


def make_repairer(
    generator: ChatGenerator,
    settings: GenerationSettings,
    scorer: ModerationScorer,
    zo_settings: ZOSettings | None = None,
) -> Callable[[Sequence[dict[str, str]], Any, float, float], RepairResult]:
    """The ``repair`` action for :class:`~psa_guard.guard.PolicyGuard`: optimise the prompt's
    embeddings on ``generator`` until ``scorer`` rates the reply below the rule's threshold
    (and below ``zo_settings.target``, the margin, when that is lower)."""
    base = zo_settings or ZOSettings()

    def repair(messages: Sequence[dict[str, str]], completion: Any, score: float,
               threshold: float) -> RepairResult:
        optimizer = EmbeddingOptimizer(model_responder(generator, settings), scorer,
                                       dataclasses.replace(base, threshold=threshold))
        return optimizer.repair_prompt(generator, messages, initial=(completion.text, score))

    return repair
