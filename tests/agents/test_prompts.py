"""Prompt building: templates, their validation and overrides, and every builder."""

from __future__ import annotations

import string
from pathlib import Path as FsPath

import pytest

from agents.llm import ChatMessage
from agents.prompts import (
    ALLOWED,
    RANKING_SCHEMA,
    SCORE_SCHEMA,
    TEMPLATE_NAMES,
    VERDICT_SCHEMA,
    ranking_schema,
    Templates,
    format_options,
    check_score_template,
    generator_messages,
    optimizer_messages,
    ranker_messages,
    refiner_messages,
    regenerator_messages,
    scorer_messages,
    summarizer_messages,
    verifier_messages,
)
from bus.messages import Judgement, Path, Question

Q = Question(
    id="q1",
    stem="A 54-year-old man has crushing chest pain radiating to the left arm. What is the most likely diagnosis?",
    options=("Pericarditis", "Myocardial infarction", "Aortic dissection", "Pulmonary embolism"),
    answer=1,
)
QCTX = Question(
    id="q2",
    stem="Does drug X lower blood pressure?",
    options=("yes", "no", "maybe"),
    answer=0,
    source="pubmedqa",
    context="BACKGROUND: a trial.\nRESULTS: pressure fell.",
)
COT = "1. Restate ... 6. Conclude: it is an MI.\nFinal answer: B"
PATHS = (Path(name="qwen_1", cot="CoT one. Final answer: B"), Path(name="deepseek_2", cot="CoT two. Final answer: B"))
ERRS = (
    Judgement(path="qwen_2", verdict="Error", reason="Confused pericarditis\nwith MI."),
    Judgement(path="huatuo_3", verdict="Error", reason="Ignored the radiation to the arm."),
)
OTHER = Judgement(path="qwen_3", verdict="Correct", reason="Well argued; praise that must not leak.")


@pytest.fixture(scope="module")
def t() -> Templates:
    return Templates.load()


def _one_user(msgs: tuple[ChatMessage, ...]) -> str:
    assert len(msgs) == 1 and msgs[0].role == "user"
    return msgs[0].content


def test_format_options_lettered() -> None:
    assert format_options(Q) == "A) Pericarditis\nB) Myocardial infarction\nC) Aortic dissection\nD) Pulmonary embolism"
    assert format_options(QCTX) == "A) yes\nB) no\nC) maybe"


def test_packaged_templates_load_and_hash(t: Templates) -> None:
    hashes = t.hashes()
    assert set(hashes) == set(TEMPLATE_NAMES)
    assert all(len(h) == 12 and int(h, 16) >= 0 for h in hashes.values())
    assert len(set(hashes.values())) == len(TEMPLATE_NAMES)
    for name in TEMPLATE_NAMES:
        used = set(string.Template(t.text(name)).get_identifiers())
        assert used <= ALLOWED[name]
    with pytest.raises(KeyError):
        t.text("nope")


SIX_STEPS = ("Restate", "Key clinical details", "pathophysiology", "anatomy", "presentations", "tests",
             "Evaluate every option", "pitfalls", "Rule out", "Compare", "Conclude", "summary")


@pytest.mark.parametrize(
    "build, expect, absent",
    [
        (lambda t: generator_messages(t, Q),
         (*SIX_STEPS, Q.stem, "A) Pericarditis", "D) Pulmonary embolism", "Final answer: <letter>"),
         ("Correct answer", "Context:")),
        (lambda t: verifier_messages(t, Q, COT),
         (Q.stem, "B) Myocardial infarction", "Correct answer: B) Myocardial infarction", COT, '"verdict"', '"reason"',
          "key clinical factors", "all of the options", "factual errors"),
         ("Context:",)),
        (lambda t: ranker_messages(t, Q, PATHS),
         ("[qwen_1]\nCoT one. Final answer: B\n\n[deepseek_2]\nCoT two.", "qwen_1, deepseek_2", '"top2"', '"reasons"',
          "Correct answer: B) Myocardial infarction"),
         ()),
        (lambda t: regenerator_messages(t, Q, ERRS),
         (*SIX_STEPS, "Correct answer: B) Myocardial infarction", "- [qwen_2] Confused pericarditis with MI.",
          "from scratch", "Final answer: <letter>"),
         ()),
        (lambda t: regenerator_messages(t, Q, ()), ("(none recorded)",), ("- [",)),
        (lambda t: summarizer_messages(t, Q, COT), (COT, Q.stem, "A) Pericarditis", "state the answer"), ()),
        (lambda t: optimizer_messages(t, Q, COT, ERRS),
         (*SIX_STEPS, "Correct answer: B) Myocardial infarction", COT, "- [qwen_2] Confused pericarditis with MI.",
          "Improve that reasoning", "Final answer: <letter>"),
         ("from scratch",)),
    ],
    ids=["generate", "verify", "rank", "regenerate", "regenerate-empty", "summarize", "optimize"],
)
def test_single_user_message_builders(t: Templates, build, expect, absent) -> None:
    content = _one_user(build(t))
    for piece in expect:
        assert piece in content, piece
    for piece in absent:
        assert piece not in content, piece
    assert "${" not in content and content == content.strip()


def test_generator_ends_with_final_answer_instruction(t: Templates) -> None:
    content = _one_user(generator_messages(t, Q))
    assert "Final answer: <letter>" in content.splitlines()
    assert "Myocardial infarction" in content and "answer: B" not in content


def test_context_block_first_when_present(t: Templates) -> None:
    content = _one_user(generator_messages(t, QCTX))
    ctx = content.index("Context:\nBACKGROUND: a trial.\nRESULTS: pressure fell.")
    assert ctx < content.index(QCTX.stem) < content.index("A) yes\nB) no\nC) maybe")


@pytest.mark.parametrize(
    "given, present, missing",
    [
        (ERRS, ("- [qwen_2] Confused pericarditis with MI.", "- [huatuo_3] Ignored the radiation to the arm."),
         ("qwen_3", "praise", "(none recorded)")),
        (ERRS[:1], ("- [qwen_2] Confused pericarditis with MI.",), ("huatuo_3", "qwen_3", "(none recorded)")),
        ((), ("(none recorded)",), ("qwen_2", "huatuo_3", "qwen_3")),
    ],
    ids=["two", "one", "none"],
)
def test_refiner_contains_exactly_given_reasons(t: Templates, given, present, missing) -> None:
    msgs = refiner_messages(t, Q, COT, given)
    assert [m.role for m in msgs] == ["system", "user"]
    assert msgs[0].content == "You are a helpful medical assistant."  # the public code's, from refine.txt
    content = msgs[1].content
    assert COT in content and "Correct answer: B) Myocardial infarction" in content
    assert content.count("- [") == len(given)
    for piece in (*present, *SIX_STEPS, "Final answer: <letter>"):
        assert piece in content, piece
    for piece in missing:
        assert piece not in content, piece


@pytest.mark.parametrize(
    "paths, error",
    [((), "no paths"), ((PATHS[0], PATHS[0]), "duplicate")],
)
def test_ranker_rejects_bad_paths(t: Templates, paths, error) -> None:
    with pytest.raises(ValueError, match=error):
        ranker_messages(t, Q, paths)


def test_override_dir_replaces_same_named_file(t: Templates, tmp_path: FsPath) -> None:
    (tmp_path / "generate.txt").write_text("Q: ${stem}\n${options}\nCost: $$5\n", encoding="utf-8")
    custom = Templates.load(tmp_path)
    assert _one_user(generator_messages(custom, Q)).startswith("Q: A 54-year-old")
    assert "Cost: $5" in _one_user(generator_messages(custom, Q))
    assert custom.hash("generate") != t.hash("generate")
    assert custom.text("verify") == t.text("verify")


@pytest.mark.parametrize(
    "filename, text, error",
    [
        ("verify.txt", "${stem} ${options} ${answer} ${cot} ${verdict_hint}", r"verify\.txt.*\$\{verdict_hint\}"),
        ("generate.txt", "${stem} ${options} ${answer}", r"generate\.txt.*\$\{answer\}"),
        ("score.txt", "[system]\nBe fair.\n${response}", r"score\.txt.*needs a line \[user\]"),
        ("score.txt", "[system]\n\n[user]\n${response}", r"score\.txt.*section is empty"),
        ("rank.txt", "${stem} ${options} ${answer} ${paths} costs $5", r"rank\.txt.*invalid"),
        ("verifier.txt", "${stem}", r"verifier\.txt.*not a template name"),
    ],
    ids=["unknown-placeholder", "answer-leak", "no-user-section", "empty-system", "bad-dollar", "unknown-file"],
)
def test_override_dir_bad_template(tmp_path: FsPath, filename: str, text: str, error: str) -> None:
    (tmp_path / filename).write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=error):
        Templates.load(tmp_path)


def test_scorer_sees_no_gold_answer_unless_asked(t: Templates) -> None:
    """The public code's scorer: a system message, [Question] and [Response], no answer; the prompt is the
    same whichever option is the gold one."""
    other = Question(id=Q.id, stem=Q.stem, options=Q.options, answer=3)
    msgs = scorer_messages(t, Q, "B) MI, because of the pain.")
    assert [m.role for m in msgs] == ["system", "user"] and msgs[0].content == "You are a helpful assistant."
    assert msgs == scorer_messages(t, other, "B) MI, because of the pain.")
    for piece in ("[Question]", Q.stem, "A) Pericarditis", "[Response]\nB) MI, because of the pain.",
                  "Clinical accuracy", "Logical reasoning", "Factual correctness", "Completeness", '"score"'):
        assert piece in msgs[1].content, piece
    assert "Correct answer" not in msgs[1].content
    shown = scorer_messages(t, Q, "B) MI.", show_answer=True)[1].content
    assert "Correct answer: B) Myocardial infarction\n\n[Response]" in shown


def test_score_template_using_answer_needs_show_answer(tmp_path: FsPath) -> None:
    (tmp_path / "score.txt").write_text("Gold: ${answer}\n${response}\nScore it as JSON.", encoding="utf-8")
    custom = Templates.load(tmp_path)
    check_score_template(custom, show_answer=True)
    with pytest.raises(ValueError, match=r"uses \$\{answer\} but \[stages.scorer\] show_answer = false"):
        check_score_template(custom, show_answer=False)


@pytest.mark.parametrize("name, text", [
    ("summarize", "${cot}\n\nSummarize the reasoning above in two sentences."),
    ("score", "Rate this from 1 to 10 as JSON: ${response}"),
    ("verify", "[system]\nYou judge medical reasoning.\n[user]\n${cot}\nIs it right? JSON verdict and reason."),
    ("rank", "${paths}\nPick two of ${names}."),
])
def test_any_subset_of_variables_and_system_section(tmp_path: FsPath, name: str, text: str) -> None:
    (tmp_path / f"{name}.txt").write_text(text, encoding="utf-8")
    custom = Templates.load(tmp_path)
    build = {"summarize": lambda: summarizer_messages(custom, Q, COT),
             "score": lambda: scorer_messages(custom, Q, "resp"),
             "verify": lambda: verifier_messages(custom, Q, COT),
             "rank": lambda: ranker_messages(custom, Q, PATHS)}[name]
    msgs = build()
    assert "${" not in msgs[-1].content and msgs[-1].role == "user"
    if name == "verify":
        assert msgs[0] == ChatMessage("system", "You judge medical reasoning.")
        assert msgs[1].content.startswith(COT)
    if name == "summarize":
        assert msgs == (ChatMessage("user", f"{COT}\n\nSummarize the reasoning above in two sentences."),)


def test_override_dir_missing(tmp_path: FsPath) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        Templates.load(tmp_path / "absent")


def test_templates_are_frozen(t: Templates) -> None:
    with pytest.raises(AttributeError):
        t.items = ()  # type: ignore[misc]


@pytest.mark.parametrize(
    "schema, required",
    [(VERDICT_SCHEMA, ["verdict", "reason"]), (RANKING_SCHEMA, ["top2", "reasons"]),
     (SCORE_SCHEMA, ["score", "justification"])],
)
def test_schemas(schema, required) -> None:
    assert schema["type"] == "object" and schema["required"] == required


def test_schema_details() -> None:
    assert VERDICT_SCHEMA["properties"]["verdict"]["enum"] == ["Correct", "Error"]
    assert VERDICT_SCHEMA["properties"]["reason"]["maxLength"] == 600
    top2 = RANKING_SCHEMA["properties"]["top2"]
    assert (top2["minItems"], top2["maxItems"], top2["items"]) == (2, 2, {"type": "string"})
    assert RANKING_SCHEMA["properties"]["reasons"]["items"]["required"] == ["path", "reason"]
    named = ranking_schema(["qwen_1", "qwen_2", "qwen_3"])["properties"]
    assert named["top2"]["items"] == {"type": "string", "enum": ["qwen_1", "qwen_2", "qwen_3"]}
    assert named["reasons"]["items"]["properties"]["path"]["enum"] == ["qwen_1", "qwen_2", "qwen_3"]
    score = SCORE_SCHEMA["properties"]["score"]
    assert (score["type"], score["minimum"], score["maximum"]) == ("integer", 1, 10)
    assert SCORE_SCHEMA["properties"]["justification"]["maxLength"] == 600
