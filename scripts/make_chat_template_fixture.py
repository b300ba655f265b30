#!/usr/bin/env python3
"""Writes tests/fixtures/chat_templates/: four tokenizer directories with chat templates
(SmolLM2's ChatML, Llama 3's, a Qwen2.5-style template in chat_template.jinja as newer
transformers saves it, and one that exercises raise_exception, loop controls, namespaces
and Python string methods), and expected.json: what transformers' `apply_chat_template(
tokenize=False)` renders for each conversation — or the error it raises. The Rust test
(crates/core/src/tasks/chat_template.rs) renders the same conversations with MiniJinja
and must produce the same text; it never needs Python.

    pip install transformers tokenizers
    python scripts/make_chat_template_fixture.py
"""
import json
import pathlib

from tokenizers import Tokenizer, models
from transformers import AutoTokenizer

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "chat_templates"

# SmolLM2-135M-Instruct's template (ChatML with a default system prompt).
CHATML = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# Meta-Llama-3-8B-Instruct's template.
LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | "
    "trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}"
    "{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)

# Qwen2.5-Instruct's template without its tool-calling branches, in block syntax with
# whitespace control, as chat_template.jinja.
QWEN_STYLE = """{%- if messages[0]['role'] == 'system' %}
    {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}
{%- else %}
    {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
"""

# Not a real model's: the Jinja features HF templates rely on.
FEATURES = """{%- set ns = namespace(system='', turns=0) -%}
{%- for m in messages -%}
  {%- if m['role'] == 'system' -%}
    {%- set ns.system = m['content'].strip() -%}
    {%- continue -%}
  {%- endif -%}
  {%- if m['role'] not in ['user', 'assistant'] -%}
    {{ raise_exception('Conversation roles must be user/assistant/system, not ' + m['role']) }}
  {%- endif -%}
  {%- if ns.turns >= 3 -%}{%- break -%}{%- endif -%}
  {%- set ns.turns = ns.turns + 1 -%}
  {%- if loop.first or (loop.index0 == 1 and messages[0]['role'] == 'system') -%}{{ bos_token }}{%- endif -%}
  [{{ m['role'] | upper }}{% if ns.system and m['role'] == 'user' %} ({{ ns.system.split('.')[0] }}){% endif %}]
  {{ m['content'].lstrip() | replace('\\n', ' / ') }}{% if m['content'].endswith('?') %} (a question){% endif %}
  {%- if not loop.last %}{{ eos_token }}{% endif %}
{% endfor -%}
{%- if add_generation_prompt -%}[ASSISTANT]{%- endif -%}"""

TEMPLATES = {
    "chatml": dict(config={"chat_template": CHATML, "bos_token": None,
                           "eos_token": "<|im_end|>", "pad_token": "<|im_end|>"}),
    "llama3": dict(config={"chat_template": LLAMA3, "bos_token": "<|begin_of_text|>",
                           "eos_token": "<|eot_id|>"}),
    # The file wins over a template in tokenizer_config.json (here a stale one).
    "jinja_file": dict(config={"chat_template": "{{ 'stale template' }}",
                               "eos_token": "<|im_end|>"}, jinja=QWEN_STYLE),
    "features": dict(config={"chat_template": FEATURES, "bos_token": "<s>",
                             "eos_token": {"content": "</s>", "lstrip": False,
                                           "normalized": False, "rstrip": False,
                                           "single_word": False, "special": True,
                                           "__type": "AddedToken"}}),
}

SPECIALS = ["<|im_start|>", "<|im_end|>", "<|begin_of_text|>", "<|start_header_id|>",
            "<|end_header_id|>", "<|eot_id|>", "<s>", "</s>", "[UNK]"]

CONVERSATIONS = [
    [{"role": "user", "content": "What is 2 + 3?"}],
    [{"role": "system", "content": "Reason in <think> </think>, answer in <answer> </answer>."},
     {"role": "user", "content": "Natalia sold clips to 48 friends.\nHow many in all?"}],
    [{"role": "user", "content": "  Hi there  "},
     {"role": "assistant", "content": "Hello! How can I help?"},
     {"role": "user", "content": "Écris « bonjour » — 你好?"}],
    [{"role": "system", "content": "Be brief. Really."},
     {"role": "user", "content": "one"}, {"role": "assistant", "content": "two"},
     {"role": "user", "content": "three"}, {"role": "assistant", "content": "four"}],
    [{"role": "user", "content": "a"}, {"role": "tool", "content": "{\"x\": 1}"}],
]


def write_tokenizer(directory, spec):
    directory.mkdir(parents=True, exist_ok=True)
    vocab = {token: i for i, token in enumerate(SPECIALS)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.add_special_tokens(SPECIALS)
    tok.save(str(directory / "tokenizer.json"))
    config = {k: v for k, v in spec["config"].items() if v is not None}
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config["unk_token"] = "[UNK]"
    (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    if "jinja" in spec:
        (directory / "chat_template.jinja").write_text(spec["jinja"])


def main():
    cases = []
    for name, spec in TEMPLATES.items():
        directory = OUT / name
        write_tokenizer(directory, spec)
        tokenizer = AutoTokenizer.from_pretrained(directory)
        for messages in CONVERSATIONS:
            for add_generation_prompt in (True, False):
                case = {"template": name, "messages": messages,
                        "add_generation_prompt": add_generation_prompt}
                try:
                    case["text"] = tokenizer.apply_chat_template(
                        messages, tokenize=False, add_generation_prompt=add_generation_prompt)
                except Exception as e:  # the template's own raise_exception
                    case["error"] = str(e)
                cases.append(case)
    (OUT / "expected.json").write_text(json.dumps(cases, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {len(cases)} cases to {OUT / 'expected.json'}")


if __name__ == "__main__":
    main()
