"""Input files in each source's real shape (MedQA, MedMCQA, MMLU, PubMedQA), hand-written, for the loader tests."""

from __future__ import annotations

import json
from pathlib import Path

def jsonl(*records) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)


def write(tmp_path: Path, name: str, content: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8", newline="")
    return path


# -- hand-written samples in each source's real shape ------------------------

UTI = ("A 23-year-old pregnant woman at 22 weeks gestation presents with burning upon urination. "
       "Which of the following is the best treatment for this patient?")
UTI_OPTIONS = {"A": "Ampicillin", "B": "Ceftriaxone", "C": "Doxycycline", "D": "Nitrofurantoin"}


def medqa(question: str = UTI, options: dict | None = None, answer_idx="D", answer="Nitrofurantoin", **extra) -> dict:
    rec = {"question": question, "answer": answer, "options": dict(options or UTI_OPTIONS), "meta_info": "step2&3",
           "answer_idx": answer_idx, "metamap_phrases": ["23 year old pregnant woman", "burning"]}
    if answer is None:
        del rec["answer"]
    rec.update(extra)
    return rec


LEUKO = ("A 40-year-old man presents with 5 days of productive cough and fever. CBC shows marked leukocytosis "
         "and a shift to left. Which term best describes these findings?")
LEUKO_OPTIONS = ("Leukemoid reaction", "Leukopenia", "Myeloid metaplasia", "Neutrophilia")


def medmcqa(id="4e1715fe-0bc3-494e-b6eb-2d4617245aef", question=LEUKO, cop=1, options=LEUKO_OPTIONS, **extra) -> dict:
    rec = {"question": question, "exp": "Leukemoid reactions resemble leukaemia.", "cop": cop,
           **dict(zip(("opa", "opb", "opc", "opd"), options)), "subject_name": "Pathology",
           "topic_name": None, "id": id, "choice_type": "single"}
    rec.update(extra)
    return rec


def medmcqa_file(*cops: int, **extra) -> str:
    return jsonl(*(medmcqa(id=f"id-{i}", question=f"Question {i}?", cop=c, **extra) for i, c in enumerate(cops)))


MMLU = (
    "What is the embryological origin of the hyoid bone?,The first pharyngeal arch,"
    "The first and second pharyngeal arches,The second pharyngeal arch,The second and third pharyngeal arches,D\n"
    '"Which of these branches of the trigeminal nerve contain somatic motor processes?",'
    "The supraorbital nerve,The infraorbital nerve,The mental nerve,None of the above,D\n"
    '"A lesion causing compression of the facial nerve at the stylomastoid foramen will cause ipsilateral\n'
    'paralysis of the facial muscles, and what else?","loss of taste, lacrimation",'
    '"paralysis of the facial muscles, only","loss of ""taste""",loss of lacrimation,B\n'
)


def mmlu_rows(*answers: str) -> str:
    return "".join(f"Question {i}?,one {i},two {i},three {i},four {i},{a}\n" for i, a in enumerate(answers))


def pubmed(decision: str = "yes") -> dict:
    return {"QUESTION": "Is X associated with Y?", "CONTEXTS": ["First.", "Second."],
            "LABELS": ["BACKGROUND", "RESULTS"], "final_decision": decision}
