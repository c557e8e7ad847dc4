"""The simulated model's phrase pools (``llm/sim.py`` picks from them with its seeded RNG): the sentences of
a six-step CoT, a verifier's reasons, a ranker's, a summary's and a scorer's."""

RESTATE = (
    "The question asks which option best explains the presentation described in the stem.",
    "We must pick the single best answer among the listed options for this clinical scenario.",
    "In short, the task is to choose the option most consistent with the findings given.",
    "The stem sets out a clinical problem and asks for the most appropriate choice.",
)
MECH = ("inflammatory", "ischemic", "autoimmune", "infectious", "metabolic", "neoplastic", "congenital", "toxic")
DETAIL = (
    "The onset, the examination findings and the laboratory values point to an {m} process (about {n}% of such cases).",
    "Key details are the age, the time course and the abnormal results, which together suggest a {m} cause in roughly {n}% of patients.",
    "The pattern of symptoms and the investigations favour an {m} mechanism; the background risk is near {n}%.",
)
BEST = ("fits the {m} mechanism and matches the key findings.", "explains every feature of the presentation.",
         "is the textbook correlate of these findings.")
ALT = ("is the strongest alternative and shares several features.", "remains plausible and needs a closer comparison.")
OTHER = (
    "is plausible at first glance but does not explain all the findings.",
    "is a common distractor; its typical presentation differs.",
    "would require findings that are absent here.",
    "contradicts the time course of the presentation.",
    "addresses a different organ system from the one involved.",
)
RULE = ("Options {x} can be excluded because they leave key findings unexplained.",
         "{x} do not fit the clinical picture and are ruled out.",
         "We can set aside {x}: each conflicts with at least one key detail.")
COMPARE = ("Between {a} and {b}, {a} better accounts for the {m} features.",
            "{a} and {b} overlap, but only {a} explains the decisive finding.",
            "Weighing {a} against {b}, the evidence favours {a}.")
CONCLUDE = ("Taking everything together, option {a} is the best answer.",
             "Therefore the most consistent choice is {a}.",
             "In summary, the findings are best explained by option {a}.")
REFINED = ("This corrects the errors flagged in the earlier attempts.",
            "Unlike the earlier attempts, it does not overlook the decisive finding.")
THINK = ("Let me weigh {a} against {b} once more before answering.",
          "Hmm, {b} is tempting, but the key finding points elsewhere. Check {a}.",
          "Wait, re-read the stem: the time course matters. {a} or {b}?")
OK = (
    "The reasoning identifies the key clinical factors, considers every option and reaches the correct answer.",
    "All options are weighed against the findings, and the conclusion matches the correct answer without factual errors.",
    "The path is complete and accurate: it rules out the distractors and concludes with the correct option.",
)
WHY = (
    "it overlooks the laboratory finding that separates the two.",
    "it misattributes the mechanism of the disease.",
    "it dismisses option {g} on a factual error about its typical presentation.",
    "it confuses first-line management with a later step.",
    "it ignores the time course of the symptoms.",
)
NOT_TOP = (
    "Correct but less thorough in ruling out the distractors.",
    "Reaches the answer with a weaker comparison of the final two options.",
    "Accurate yet repetitive, with less clinical detail than the chosen paths.",
    "Sound conclusion, but the key clinical details are only listed, not explained.",
)
SUMMARY = (
    "The presentation and the key findings fit this option best.",
    "The other options each leave at least one decisive finding unexplained.",
    "The mechanism behind it matches the time course and the investigations.",
    "It is the standard association tested by this scenario.",
)
JUSTIFY = (
    "Clinically accurate and logically ordered, with minor gaps in completeness.",
    "Correct answer with sound reasoning; some background could be more precise.",
    "Accurate, complete and well argued; rationale for excluding distractors is clear.",
)
