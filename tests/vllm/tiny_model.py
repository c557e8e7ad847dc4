"""A tiny Llama-style chat model built on the spot: no download, a few seconds on a CPU.

Hidden size 64, two heads of 32 (vLLM's CPU attention needs a head dimension of at
least 32), two layers, a byte-level BPE tokenizer of a few thousand tokens trained
with ``tokenizers`` on the project's prompt templates and demo questions, a ChatML
Jinja template in ``tokenizer_config.json``, and random (seeded) safetensors
weights.  It writes text nobody can read, which is all a test of the plumbing needs.

    python tests/vllm/tiny_model.py DIR      # builds the model in DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVED = "tiny-llama"  # the served model name in the tests
MAX_MODEL_LEN = 4096
SERVER_KEY = "test-vllm-key"  # the --api-key of the test server
SPECIAL = ["<|pad|>", "<|begin_of_text|>", "<|im_start|>", "<|im_end|>"]
PAD, BOS, IM_START, IM_END = range(len(SPECIAL))
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
BUILT_IN = """\
The patient presents with fever, cough and shortness of breath. Examination shows crackles at the right base.
The most likely diagnosis is community-acquired pneumonia; the first step in management is a chest radiograph.
Step 1: identify the key clinical findings. Step 2: consider each option. Final answer: C.
Insulin, metformin, aspirin, heparin, warfarin, adrenaline, amoxicillin, levothyroxine, propranolol.
The verdict is Correct because the reasoning reaches the correct answer; the verdict is Error when it does not.
{"verdict": "Correct", "reason": "The reasoning is sound."} {"verdict": "Error", "reason": "It misreads the ECG."}
yes no maybe A B C D E 0 1 2 3 4 5 6 7 8 9 mg kg mmHg years old woman man child
"""


def corpus() -> list[str]:
    """The built-in lines plus the project's templates and demo questions (where present)."""
    texts = BUILT_IN.splitlines()
    for path in sorted((ROOT / "agents" / "templates").glob("*.txt")):
        texts.extend(path.read_text(encoding="utf-8").splitlines())
    questions = ROOT / "examples" / "questions.jsonl"
    if questions.is_file():
        texts.extend(questions.read_text(encoding="utf-8").splitlines())
    return [t for t in texts if t.strip()] * 4


def build_tiny_model(out: str | Path, *, vocab_size: int = 3000, seed: int = 0) -> Path:
    """Write config, tokenizer and random weights to ``out``; returns the directory."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(corpus(), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, pad_token="<|pad|>", bos_token="<|begin_of_text|>",
                                        eos_token="<|im_end|>", additional_special_tokens=["<|im_start|>"])
    tokenizer.save_pretrained(out)
    config_path = out / "tokenizer_config.json"
    tok_config = json.loads(config_path.read_text(encoding="utf-8"))
    tok_config["chat_template"] = CHAT_TEMPLATE
    tok_config["model_max_length"] = 4096
    config_path.write_text(json.dumps(tok_config, indent=2), encoding="utf-8")
    (out / "chat_template.jinja").unlink(missing_ok=True)  # the template lives in tokenizer_config.json

    config = LlamaConfig(
        vocab_size=bpe.get_vocab_size(), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, head_dim=32, max_position_embeddings=4096,
        bos_token_id=BOS, eos_token_id=IM_END, pad_token_id=PAD, tie_word_embeddings=True, torch_dtype="float32",
    )
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(out)
    (out / "generation_config.json").unlink(missing_ok=True)  # no hidden sampling defaults
    return out


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/vllm/tiny_model.py DIR")
    print(build_tiny_model(sys.argv[1]))
