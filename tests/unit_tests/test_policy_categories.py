"""Category rules and the ``support`` action: policy files, decisions, and the guard's checks."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from psa_guard.categories import CATEGORIES, DISTRESS_CATEGORIES, HARM_CATEGORIES
from psa_guard.errors import PolicyError
from psa_guard.generation import Completion
from psa_guard.guard import PolicyGuard
from psa_guard.policy import Policy

CARE = """
version: 1
name: care
default_context: care
contexts:
  care:
    preference: {empathy: 3, sensitivity: 3, non_judgmental: 2, truthfulness: 2, helpfulness: 1}
    moderation:
      rules:
        - {at: 0.6, action: refuse}
      category_rules:
        - {category: self-harm/intent, at: 0.5, action: support}
        - {category: abuse_disclosure, at: 0.5, action: support}
        - {category: sexual/minors, at: 0.2, action: block}
        - {category: illicit, at: 0.6, action: refuse}
      on_unavailable: block
    messages:
      refuse: I can't help with that, but I can help you find safer information instead.
      support: It sounds like you are carrying a lot right now, and you deserve support.
      block: I can't continue with this.
    resources:
      - {name: Samaritans, contact: call 116 123, locales: [en-GB]}
      - {name: Emergency services, contact: call your local emergency number, locales: ["*"]}
      - {name: NSPCC Childline, contact: call 0800 1111, locales: [en-GB],
         categories: [abuse_disclosure]}
"""


def _one(overall: float, **categories: float) -> tuple[float, dict[str, float]]:
    return overall, {c: categories.get(c.replace("/", "_").replace("-", "_"), 0.0)
                     for c in CATEGORIES}


class CategoryScorer:
    """Scores by keyword, with categories; ``drop`` leaves a category out, ``bad`` makes one NaN."""

    name = "categories"

    def __init__(self, drop: str | None = None, bad: str | None = None) -> None:
        self.drop, self.bad = drop, bad

    def score(self, texts: Sequence[str]) -> list[float]:
        return [overall for overall, _ in self.score_detailed(texts)]

    def score_detailed(self, texts: Sequence[str]) -> list[tuple[float, dict[str, float]]]:
        out = []
        for text in texts:
            if "end my life" in text and "how" in text:
                row = _one(0.9, self_harm_intent=0.9, self_harm_instructions=0.8, illicit=0.7)
            elif "end my life" in text:
                row = _one(0.3, self_harm_intent=0.95)
            elif "hurts me" in text:
                row = _one(0.2, abuse_disclosure=0.9)
            elif "minor" in text:
                row = _one(0.8, sexual_minors=0.6, self_harm_intent=0.6)
            elif "lockpick" in text:
                row = _one(0.5, illicit=0.7)
            else:
                row = _one(0.05)
            overall, categories = row
            if self.drop:
                categories.pop(self.drop)
            if self.bad:
                categories[self.bad] = float("nan")
            out.append((overall, categories))
        return out


def _never(messages: object) -> Completion:
    raise AssertionError("the model must not be called")


def test_categories_are_the_openai_ones_plus_distress() -> None:
    assert len(CATEGORIES) == 15 and "self-harm/intent" in CATEGORIES
    assert set(DISTRESS_CATEGORIES) <= set(CATEGORIES)
    assert "abuse_disclosure" not in HARM_CATEGORIES and "illicit" in HARM_CATEGORIES


def test_distress_gets_support_with_the_locales_resources_never_a_refusal() -> None:
    guard = PolicyGuard(Policy.from_string(CARE), CategoryScorer())
    reply = guard.run("I want to end my life", None, _never, locale="en-GB")
    assert reply.actions == ["support"]
    assert reply.text.startswith("It sounds like you are carrying a lot")
    assert "Samaritans" in reply.text and "Childline" not in reply.text
    step = reply.steps[0].as_dict()
    assert step["category"] == "self-harm/intent" and step["categories"]["self-harm/intent"] == 0.95


def test_a_harmful_request_that_carries_distress_goes_to_support() -> None:
    # methods of self-harm: illicit says refuse, the overall score says refuse; support wins
    guard = PolicyGuard(Policy.from_string(CARE), CategoryScorer())
    reply = guard.run("how do I end my life", None, _never)
    assert reply.actions == ["support"] and "can't help" not in reply.text


def test_block_wins_over_everything_and_abuse_gets_child_protection() -> None:
    guard = PolicyGuard(Policy.from_string(CARE), CategoryScorer())
    assert guard.run("a minor ...", None, _never).actions == ["block"]
    abuse = guard.run("my dad hurts me", None, _never, locale="en-GB")
    assert abuse.actions == ["support"] and "Childline" in abuse.text
    refused = guard.run("lockpick the neighbour's door", None, _never)
    assert refused.actions == ["refuse"] and "instead" in refused.text  # says what it can do


def test_a_locale_with_no_resources_falls_back_to_the_global_ones() -> None:
    guard = PolicyGuard(Policy.from_string(CARE), CategoryScorer())
    reply = guard.run("I want to end my life", None, _never, locale="fr-FR")
    assert "Emergency services" in reply.text and "Samaritans" not in reply.text
    only_local = CARE.replace('      - {name: Emergency services, contact: call your local '
                              'emergency number, locales: ["*"]}\n', "")
    reply = PolicyGuard(Policy.from_string(only_local), CategoryScorer()).run(
        "I want to end my life", None, _never, locale="fr-FR")
    assert "Samaritans" in reply.text  # never a support reply without any resource


@pytest.mark.parametrize(("scorer", "reason"), [
    (CategoryScorer(drop="self-harm/intent"), "no score for self-harm/intent"),
    (CategoryScorer(bad="illicit"), "non-numeric"),
])
def test_missing_or_broken_categories_fail_closed(scorer: CategoryScorer, reason: str) -> None:
    reply = PolicyGuard(Policy.from_string(CARE), scorer).run("hello", None, _never)
    assert reply.actions == ["block"] and reason in (reply.steps[0].reason or "")


def test_a_scorer_without_categories_fails_closed_on_category_rules() -> None:
    from tests.doubles import ScriptedScorer

    reply = PolicyGuard(Policy.from_string(CARE), ScriptedScorer()).run("hello", None, _never)
    assert reply.actions == ["block"] and "no score for" in (reply.steps[0].reason or "")


def test_an_unknown_category_is_refused_naming_it_the_line_and_the_valid_ones() -> None:
    text = CARE.replace("category: illicit,", "category: illegal,")
    with pytest.raises(PolicyError) as error:
        Policy.from_string(text, source="care.yaml")
    message = str(error.value)
    assert "care.yaml:" in message and "illegal" in message and "self-harm/intent" in message


def test_support_needs_a_message_and_resources() -> None:
    no_message = CARE.replace(
        "      support: It sounds like you are carrying a lot right now, and you deserve support.\n",
        "")
    with pytest.raises(PolicyError, match="picks 'support', but context 'care' has no message"):
        Policy.from_string(no_message)
    start = CARE.index("    resources:")
    with pytest.raises(PolicyError, match="somewhere to get it"):
        Policy.from_string(CARE[:start])


def test_old_style_score_rules_load_and_decide_as_before() -> None:
    from tests.doubles import POLICY, ScriptedScorer

    guard = PolicyGuard(Policy.from_string(POLICY), ScriptedScorer())
    reply = guard.run("how to build a bomb", None, _never)
    assert reply.actions == ["refuse_with_resources"]
    assert "category" not in reply.steps[0].as_dict()  # no categories read, none reported


CONFIRMED = """
version: 1
name: confirmed
default_context: c
contexts:
  c:
    preference: {empathy: 1, sensitivity: 1, non_judgmental: 1, truthfulness: 1, helpfulness: 1}
    moderation:
      rules:
        - {at: 0.35, action: steer}
        - {at: 0.6, action: refuse, confirm_at: 0.5}
    messages:
      steer: Answer carefully.
      refuse: I can't help with that.
"""


@pytest.mark.parametrize(("overall", "categories", "action"), [
    (0.9, {"illicit": 0.7}, "refuse"),  # a harm category confirms
    (0.9, {"sexual/minors": 0.5}, "refuse"),  # any harm category, at confirm_at inclusive
    (0.9, {"illicit": 0.49}, "steer"),  # not confirmed: the next lower rule
    (0.9, {"self-harm/intent": 0.99}, "steer"),  # distress does not confirm a refusal
    (0.5, {"illicit": 0.99}, "steer"),  # below the rule's own 'at' it never fires
    (0.2, {"illicit": 0.99}, "allow"),
])
def test_a_confirmed_score_rule_fires_only_when_a_harm_category_agrees(
        overall: float, categories: dict[str, float], action: str) -> None:
    context = Policy.from_string(CONFIRMED).resolve()
    scores = {c: categories.get(c, 0.0) for c in CATEGORIES}
    assert context.decide(overall, categories=scores).action == action
    assert set(context.needs_categories) == set(HARM_CATEGORIES)


def test_a_confirmed_score_rule_needs_category_scores_and_fails_closed_without() -> None:
    from tests.doubles import ScriptedScorer

    context = Policy.from_string(CONFIRMED).resolve()
    with pytest.raises(Exception, match="needs that category's score"):
        context.decide(0.9)
    reply = PolicyGuard(Policy.from_string(CONFIRMED), ScriptedScorer()).run(
        "how to build a bomb", None, _never)
    assert reply.actions == ["refuse"] and "no score for" in (reply.steps[0].reason or "")


def test_confirm_at_must_be_a_probability() -> None:
    with pytest.raises(PolicyError, match="confirm_at"):
        Policy.from_string(CONFIRMED.replace("confirm_at: 0.5", "confirm_at: 1.5"),
                           source="confirmed.yaml")


def test_the_http_scorer_maps_openai_categories_to_ours() -> None:
    import json

    from psa_guard.moderation.http import parse_moderation_details

    body = json.dumps({"results": [{"flagged": True, "category_scores": {
        "self-harm/intent": 0.91, "illicit_violent": 0.2, "sexual/minors": 0.01,
        "violence": 1.3, "brand_new_category": 0.5}}]}).encode()
    ((overall, categories),) = parse_moderation_details(body, 1)
    assert overall == 1.0  # the max, clipped: unknown categories still count in it
    assert categories == {"self-harm/intent": 0.91, "illicit/violent": 0.2,
                          "sexual/minors": 0.01, "violence": 1.0}


@pytest.mark.real_model
def test_the_default_scorer_scores_categories_for_category_rules() -> None:
    # the committed heads: the harm score from the moderation head, the categories from the
    # category head, one embedding per text
    from psa_guard.moderation.local import LazyDefaultScorer

    guard = PolicyGuard(Policy.from_string(CARE), LazyDefaultScorer())
    crisis = guard.run("I want to end my life tonight", None, _never, locale="en-GB")
    assert crisis.actions == ["support"] and "Samaritans" in crisis.text
    abuse = guard.run("My stepfather hits me and I'm scared to go home", None, _never,
                      locale="en-GB")
    assert abuse.actions == ["support"] and "Childline" in abuse.text
