"""Writes a tiny random-weight llama GGUF that llama.cpp loads in milliseconds.

The model is a real llama-architecture network (a couple of layers, a small embedding)
with a byte-level vocabulary: three special tokens, the ChatML markers as control
tokens, then one token per byte (`<0x00>` .. `<0xFF>`), so any text tokenizes by
byte fallback. Its output layer only has weights for the printable ASCII bytes (the
other rows, the end-of-turn token among them, are zero and never win), so what it
writes is readable gibberish that never ends on its own: answers run to the token limit,
which is what tests of streaming, stopping and queueing want. The chat template is
ChatML, the format SmolLM2 uses too.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

SPECIAL = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
BYTES_FROM = len(SPECIAL)  # token id of byte 0x00
VOCAB_SIZE = BYTES_FROM + 256
EOS_ID = SPECIAL.index("<|im_end|>")


def write_tiny_gguf(
    path: Path,
    *,
    n_embd: int = 64,
    n_layer: int = 2,
    n_head: int = 4,
    n_ff: int = 128,
    context_length: int = 4096,
    seed: int = 7,
) -> Path:
    """Writes the model to `path` (a few hundred KB with the defaults) and returns the path."""
    rng = np.random.default_rng(seed)

    def weights(*shape: int, scale: float = 0.2) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    writer = gguf.GGUFWriter(path, "llama")
    writer.add_name("tiny-random-llama")
    writer.add_context_length(context_length)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layer)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head)
    writer.add_rope_dimension_count(n_embd // n_head)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)

    writer.add_tokenizer_model("llama")
    writer.add_token_list([*SPECIAL, *(f"<0x{b:02X}>" for b in range(256))])
    writer.add_token_scores([0.0] * VOCAB_SIZE)
    writer.add_token_types(
        [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
        + [gguf.TokenType.CONTROL] * (len(SPECIAL) - 3)
        + [gguf.TokenType.BYTE] * 256
    )
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(EOS_ID)
    writer.add_add_bos_token(False)
    writer.add_add_space_prefix(False)
    writer.add_chat_template(CHAT_TEMPLATE)

    output = np.zeros((VOCAB_SIZE, n_embd), dtype=np.float32)
    printable = slice(BYTES_FROM + 0x20, BYTES_FROM + 0x7F)
    output[printable] = weights(0x7F - 0x20, n_embd, scale=1.0)
    writer.add_tensor("token_embd.weight", weights(VOCAB_SIZE, n_embd, scale=1.0))
    writer.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    writer.add_tensor("output.weight", output)
    for layer in range(n_layer):
        block = f"blk.{layer}"
        writer.add_tensor(f"{block}.attn_norm.weight", np.ones(n_embd, dtype=np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(f"{block}.{name}.weight", weights(n_embd, n_embd))
        writer.add_tensor(f"{block}.ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
        writer.add_tensor(f"{block}.ffn_gate.weight", weights(n_ff, n_embd))
        writer.add_tensor(f"{block}.ffn_up.weight", weights(n_ff, n_embd))
        writer.add_tensor(f"{block}.ffn_down.weight", weights(n_embd, n_ff))

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
