"""Synthetic multiple-choice medical questions for the benchmark (deterministic with a seed).

Clinical vignettes of realistic length (stems of roughly 300-600 characters)
with four or five options, written as generic JSONL that
``reasonmed_async.loaders.dispatch.load_questions`` reads.  Nothing here is medically
meaningful: it only has the shape (and size) of MedQA-style questions.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

_AGES = tuple(range(2, 89))
_WHO = ("man", "woman", "boy", "girl", "patient", "nursing home resident", "college athlete", "pregnant woman")
_SETTING = ("emergency department", "clinic", "primary care office", "urgent care center", "hospital ward",
            "outpatient department")
_COMPLAINT = ("progressive shortness of breath", "intermittent chest pain", "fever and a productive cough",
              "episodes of palpitations", "worsening fatigue", "painless jaundice", "recurrent headaches",
              "blood in the urine", "weight loss and night sweats", "sudden weakness of the left arm",
              "abdominal pain radiating to the back", "joint swelling and morning stiffness", "a new skin rash",
              "difficulty swallowing solids", "blurred vision", "polyuria and polydipsia", "syncope on exertion")
_DURATION = ("2 days", "5 days", "1 week", "3 weeks", "2 months", "6 months", "1 year", "several hours")
_HISTORY = ("a history of type 2 diabetes mellitus", "a 30-pack-year smoking history", "hypertension treated with lisinopril",
            "no significant past medical history", "rheumatoid arthritis on methotrexate", "chronic alcohol use",
            "a recent trip to Southeast Asia", "HIV infection with poor adherence to therapy",
            "a family history of early coronary artery disease", "asthma since childhood", "a kidney transplant 4 years ago")
_VITALS = ("Temperature is {t:.1f}°C, pulse is {p}/min, respirations are {r}/min, and blood pressure is {s}/{d} mm Hg.",
           "Her vital signs are: temperature {t:.1f}°C, heart rate {p}/min, respiratory rate {r}/min, BP {s}/{d} mm Hg.",
           "Vital signs show a pulse of {p}/min, blood pressure of {s}/{d} mm Hg and a temperature of {t:.1f}°C.")
_EXAM = ("Physical examination shows {a} and {b}.", "On examination there is {a}; {b} is also noted.",
         "Examination reveals {a}, while {b} is present on closer inspection.")
_SIGNS = ("bilateral crackles at the lung bases", "a grade 3/6 systolic murmur at the apex", "scleral icterus",
          "tenderness in the right upper quadrant", "pitting edema of both ankles", "a palpable purpuric rash",
          "decreased breath sounds on the right", "hepatosplenomegaly", "a tender, swollen left knee",
          "cervical lymphadenopathy", "an irregularly irregular pulse", "papilledema", "dry mucous membranes")
_LABS = ("Laboratory studies show a hemoglobin of {h:.1f} g/dL and a leukocyte count of {w},{x:03d}/mm3.",
         "Serum studies show sodium {na} mEq/L, potassium {k:.1f} mEq/L and creatinine {cr:.1f} mg/dL.",
         "Laboratory studies show a platelet count of {w}0,000/mm3 and an elevated C-reactive protein.",
         "An ECG shows {ecg}.", "A chest x-ray shows {cxr}.")
_ECG = ("ST-segment elevation in leads II, III and aVF", "atrial fibrillation with a rapid ventricular response",
        "diffuse PR depression", "a prolonged QT interval")
_CXR = ("a right lower lobe consolidation", "bilateral hilar lymphadenopathy", "a widened mediastinum",
        "blunting of the costophrenic angles")
_ASK = ("Which of the following is the most likely diagnosis?",
        "Which of the following is the most appropriate next step in management?",
        "Which of the following is the most likely underlying mechanism?",
        "Which of the following is the most appropriate pharmacotherapy?",
        "Which of the following findings is most likely on further evaluation?")
_OPTIONS = {
    "diagnosis": ("Community-acquired pneumonia", "Pulmonary embolism", "Acute pericarditis", "Aortic dissection",
                  "Infective endocarditis", "Sarcoidosis", "Acute cholecystitis", "Pancreatic adenocarcinoma",
                  "Systemic lupus erythematosus", "Tuberculosis", "Multiple myeloma", "Heart failure with reduced ejection fraction",
                  "Hypertrophic cardiomyopathy", "Acute interstitial nephritis", "Giant cell arteritis", "Reactive arthritis"),
    "management": ("Obtain a CT angiography of the chest", "Start intravenous heparin", "Perform an echocardiography",
                   "Administer broad-spectrum antibiotics", "Schedule an elective colonoscopy", "Order a lumbar puncture",
                   "Begin oral corticosteroids", "Refer for urgent cardiac catheterization", "Observe and reassess in 24 hours",
                   "Obtain blood cultures before any treatment", "Perform an upper endoscopy"),
    "mechanism": ("Immune complex deposition", "Autoantibodies against the TSH receptor", "Impaired insulin secretion",
                  "Thromboembolic occlusion of a pulmonary artery", "Granulomatous inflammation", "Defective collagen synthesis",
                  "Increased production of parathyroid hormone", "Obstruction of the common bile duct",
                  "Type IV hypersensitivity reaction", "Clonal proliferation of plasma cells"),
    "drug": ("Metoprolol", "Amiodarone", "Ceftriaxone and azithromycin", "Prednisone", "Methimazole", "Furosemide",
             "Warfarin", "Isoniazid, rifampin, pyrazinamide and ethambutol", "Colchicine", "Insulin glargine", "Allopurinol"),
    "finding": ("Elevated serum calcium", "Positive antinuclear antibodies", "Low serum complement levels",
                "Noncaseating granulomas on biopsy", "Schistocytes on the peripheral smear", "An elevated D-dimer",
                "Bence Jones proteins in the urine", "Acid-fast bacilli in the sputum", "Ring-enhancing lesions on MRI",
                "Decreased ejection fraction on echocardiography"),
}
_POOL_FOR_ASK = ("diagnosis", "management", "mechanism", "drug", "finding")


def _stem(rng: random.Random) -> str:
    age = rng.choice(_AGES)
    who = rng.choice(_WHO)
    parts = [f"A {age}-year-old {who} comes to the {rng.choice(_SETTING)} because of {rng.choice(_COMPLAINT)} "
             f"for {rng.choice(_DURATION)}. The patient has {rng.choice(_HISTORY)}."]
    if rng.random() < 0.7:
        parts.append(rng.choice(_VITALS).format(t=36 + rng.random() * 3.5, p=rng.randint(52, 138),
                                                r=rng.randint(12, 30), s=rng.randint(88, 182), d=rng.randint(48, 110)))
    a, b = rng.sample(_SIGNS, 2)
    parts.append(rng.choice(_EXAM).format(a=a, b=b))
    for lab in rng.sample(_LABS, rng.randint(0, 2)):
        parts.append(lab.format(h=7 + rng.random() * 9, w=rng.randint(3, 24), x=rng.randint(0, 999),
                                na=rng.randint(124, 148), k=2.8 + rng.random() * 3, cr=0.5 + rng.random() * 4,
                                ecg=rng.choice(_ECG), cxr=rng.choice(_CXR)))
    return " ".join(parts)


def make_question(rng: random.Random, index: int) -> dict:
    ask_i = rng.randrange(len(_ASK))
    stem = _stem(rng)
    while len(stem) < 300:  # pad short vignettes with another finding
        stem += " " + rng.choice(_EXAM).format(a=rng.choice(_SIGNS), b=rng.choice(_SIGNS))
    stem = f"{stem[:520].rsplit(' ', 1)[0].rstrip('.,;')}. {_ASK[ask_i]}" if len(stem) > 520 else f"{stem} {_ASK[ask_i]}"
    options = rng.sample(_OPTIONS[_POOL_FOR_ASK[ask_i]], rng.choice((4, 5)))
    return {"id": f"synth-{index:06d}", "question": stem, "options": options,
            "answer": "ABCDE"[rng.randrange(len(options))], "source": "synthetic"}


def write_questions(path: str | Path, n: int, seed: int = 20250611) -> Path:
    """Write ``n`` synthetic questions as JSONL to ``path`` (same seed, same file)."""
    rng = random.Random(seed)
    path = Path(path)
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            f.write(json.dumps(make_question(rng, i), ensure_ascii=False) + "\n")
    return path
