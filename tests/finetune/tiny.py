"""A tiny Gemma-3-shaped causal LM and a byte tokenizer, built in the test (nothing downloaded)."""

from __future__ import annotations


class ByteTokenizer:
    """UTF-8 bytes + 3 specials; enough for the trainer's ``tokenizer(text)["input_ids"]``."""

    pad_token_id = 0
    bos_token_id = 1
    eos_token_id = 2
    offset = 3
    vocab_size = 256 + 3

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict:
        ids = [b + self.offset for b in text.encode("utf-8")]
        return {"input_ids": ([self.bos_token_id] + ids) if add_special_tokens else ids}


def tiny_gemma(seed: int = 0):
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(seed)
    config = Gemma3TextConfig(vocab_size=ByteTokenizer.vocab_size, hidden_size=32, intermediate_size=64,
                              num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                              head_dim=16, max_position_embeddings=256, sliding_window=64,
                              layer_types=["sliding_attention", "full_attention"],
                              pad_token_id=0, bos_token_id=1, eos_token_id=2)
    return Gemma3ForCausalLM(config).eval()
