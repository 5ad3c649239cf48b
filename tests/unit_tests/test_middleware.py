"""PSAGuardMiddleware in a real LangChain v1 agent (create_agent), with scripted scores."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage

from langchain_psa_guard import ChatPSAGuard, PSAGuardMiddleware, guard_chat_model
from psa_guard.policy import Policy

from ..doubles import POLICY, ScriptedScorer


@dataclass
class AppContext:
    app_context: str = "general"
    locale: str | None = None


class RecordingFake(GenericFakeChatModel):
    """A fake model that records the messages it was called with."""

    calls: list = []

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        self.calls.append(messages)
        return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)


def _agent(model, scorer=None):
    middleware = PSAGuardMiddleware(Policy.from_string(POLICY), scorer=scorer or ScriptedScorer())
    return create_agent(model, tools=[], middleware=[middleware], context_schema=AppContext)


def test_blocked_input_ends_the_agent_without_a_model_call() -> None:
    model = RecordingFake(messages=iter([AIMessage("should not appear")]), calls=[])
    result = _agent(model).invoke({"messages": [HumanMessage("build a bomb")]},
                                  context=AppContext(locale="en-GB"))
    last = result["messages"][-1]
    assert model.calls == []
    assert last.content.startswith("I can't help with that.") and "Helpline" in last.content
    assert last.response_metadata["psa_guard"]["actions"][0]["action"] == "refuse_with_resources"


def test_context_comes_from_the_runtime_context() -> None:
    model = RecordingFake(messages=iter([AIMessage("unused")]), calls=[])
    result = _agent(model).invoke({"messages": [HumanMessage("I feel sad")]},
                                  context=AppContext(app_context="strict"))
    assert result["messages"][-1].content == "Not here." and model.calls == []


def test_steer_reaches_the_model_as_system_instruction() -> None:
    model = RecordingFake(messages=iter([AIMessage("I'm listening.")]), calls=[])
    result = _agent(model).invoke({"messages": [HumanMessage("I feel sad")]}, context=AppContext())
    system = model.calls[0][0]
    assert system.type == "system" and "Be extra careful." in system.content
    assert result["messages"][-1].content == "I'm listening."


def test_flagged_output_is_replaced_in_place() -> None:
    model = RecordingFake(messages=iter([AIMessage("here is the bomb recipe", id="m1")]), calls=[])
    result = _agent(model).invoke({"messages": [HumanMessage("tell me a story")]},
                                  context=AppContext())
    replies = [m for m in result["messages"] if isinstance(m, AIMessage)]
    assert len(replies) == 1 and "bomb" not in replies[0].content
    assert replies[0].response_metadata["psa_guard"]["actions"][-1]["action"] == (
        "refuse_with_resources")


def test_guarded_local_model_gets_the_context_and_streams(tiny_model_dir: Path) -> None:
    llm = ChatPSAGuard(model=str(tiny_model_dir), max_tokens=4)
    agent = _agent(llm)
    result = agent.invoke({"messages": [HumanMessage("hello")]}, context=AppContext())
    assert result["messages"][-1].response_metadata["context"] == "general"
    chunks = [chunk for chunk, _ in agent.stream({"messages": [HumanMessage("hello")]},
                                                 context=AppContext(), stream_mode="messages")
              if isinstance(chunk, AIMessageChunk)]
    assert len(chunks) >= 2  # token by token, not one final message


def test_guard_chat_model_wraps_any_model_in_a_chain() -> None:
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate

    prompt = ChatPromptTemplate.from_messages([("human", "{question}")])
    fake = GenericFakeChatModel(messages=iter([AIMessage("Sunny."), AIMessage("a bomb")]))
    chain = prompt | guard_chat_model(fake, Policy.from_string(POLICY),
                                      scorer=ScriptedScorer()) | StrOutputParser()
    assert chain.invoke({"question": "weather?"}) == "Sunny."
    assert chain.invoke({"question": "story?"}).startswith("I can't help with that.")
    assert chain.invoke({"question": "I feel sad"},
                        config={"configurable": {"context": "strict"}}) == "Not here."


def test_c_input_is_scored_once_per_model_call() -> None:
    # Before: before_model and wrap_model_call each scored the last user message.
    scorer = ScriptedScorer()
    model = RecordingFake(messages=iter([AIMessage("Sunny today.")]), calls=[])
    _agent(model, scorer).invoke({"messages": [HumanMessage("weather?")]}, context=AppContext())
    assert scorer.seen == ["weather?", "Sunny today."]  # the input once, the reply once


def test_c_context_steering_reaches_a_model_without_the_policy(
        tiny_model_dir: Path, monkeypatch) -> None:
    # Before: a ChatPSAGuard got the context's name, but its preference only if it also held
    # the policy; now the middleware hands over the context's complete steering.
    from psa_guard.pipeline import RequestPipeline

    seen: list = []
    run = RequestPipeline.run

    def record(self, messages, options=None, generate=None):
        seen.append(options)
        return run(self, messages, options, generate)

    monkeypatch.setattr(RequestPipeline, "run", record)
    policy = POLICY.replace("  strict:\n    extends: general\n",
                            "  strict:\n    extends: general\n    beta: 0.5\n"
                            "    preference: {empathy: 1, sensitivity: 0, non_judgmental: 0,"
                            " truthfulness: 0, helpfulness: 0}\n")
    llm = ChatPSAGuard(model=str(tiny_model_dir), max_tokens=3)  # no policy of its own
    middleware = PSAGuardMiddleware(Policy.from_string(policy), scorer=ScriptedScorer())
    agent = create_agent(llm, tools=[], middleware=[middleware], context_schema=AppContext)
    agent.invoke({"messages": [HumanMessage("hello")]}, context=AppContext(app_context="strict"))
    (options,) = seen
    assert options.context == "strict" and options.steering is not None
    assert options.steering.preference == (1.0, 0, 0, 0, 0) and options.steering.beta == 0.5
    assert options.steering.risk == 0.05  # the middleware's input score: not scored again
