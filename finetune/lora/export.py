"""Serve a finetuned adapter on the fast path: a GGUF LoRA file for llama.cpp, or merged weights.

GGUF LoRA layout (what llama.cpp's ``llama_adapter_lora_init`` reads, and what llama.cpp's own
``convert_lora_to_gguf.py`` writes):

- metadata ``general.architecture`` = the base's (``gemma3``), ``general.type`` = ``adapter``,
  ``adapter.type`` = ``lora``, ``adapter.lora.alpha`` = the peft ``lora_alpha`` (llama.cpp scales
  by alpha / rank, as peft does);
- per adapted matrix two tensors, ``<base tensor name>.lora_a`` and ``.lora_b``, where the base
  tensor name is the GGUF one (``blk.{i}.attn_q.weight`` for ``layers.{i}.self_attn.q_proj``).
  peft stores ``lora_A`` as (rank, in) and ``lora_B`` as (out, rank); GGUF lists dimensions in
  reverse, so these numpy shapes give ``a.ne = [in, rank]`` and ``b.ne = [rank, out]``, which is
  what llama.cpp checks against the base tensor (``ne = [in, out]``).

Gemma needs no re-ordering of the q/k rows: llama.cpp runs Gemma with NeoX-style RoPE, the HF
layout (the q/k permutation of the converter is for Llama-family models only). The check is
empirical: see tests/finetune/test_export_slow.py, which compares llama.cpp with the adapter
against transformers + peft.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from finetune.lora.config import FinetuneError

# HF module name -> GGUF tensor stem (llama.cpp's tensor map for Gemma/Llama-style blocks).
GGUF_NAMES = {
    "q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output",
    "gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down",
}
_LORA_KEY = re.compile(r"layers\.(\d+)\.(?:self_attn|mlp)\.(\w+)\.lora_([AB])\.weight$")


def gguf_tensor_name(peft_key: str) -> str:
    """``base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight`` ->
    ``blk.3.attn_q.weight.lora_a``."""
    m = _LORA_KEY.search(peft_key)
    if not m or m.group(2) not in GGUF_NAMES:
        raise FinetuneError(f"no GGUF name for adapter tensor {peft_key}",
                            hint="supported modules: " + ", ".join(GGUF_NAMES))
    layer, module, ab = m.groups()
    return f"blk.{layer}.{GGUF_NAMES[module]}.weight.lora_{ab.lower()}"


def _read_adapter(adapter: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    from safetensors.numpy import load_file

    config_path = adapter / "adapter_config.json"
    weights = adapter / "adapter_model.safetensors"
    if not config_path.is_file() or not weights.is_file():
        raise FinetuneError(f"{adapter} is not a peft adapter directory",
                            hint="it needs adapter_config.json and adapter_model.safetensors")
    return json.loads(config_path.read_text(encoding="utf-8")), load_file(str(weights))


def _base_gguf(base: str) -> Path:
    from chatbot.llm.models import resolve_model

    path = resolve_model(base)
    if isinstance(path, str) or not path.is_file() or path.suffix != ".gguf":
        raise FinetuneError(f"the GGUF export needs the base as a .gguf file; {base!r} is not one",
                            hint="--base gemma3-270m or the path of the base .gguf")
    return path


# Metadata key of the token ids served as end of turn (see chatbot/llm/llamacpp.py).
END_OF_TURN_ALIASES_KEY = "medchat.end_of_turn_aliases"
# Rows of the pretrained embedding this close to <end_of_turn>'s are indistinguishable from it
# (Gemma-3-270M base: 6,021 rows at cosine >= 0.98, untrained vocabulary; the next group starts
# far lower), so a finetuned model that means "end of turn" may pick any of them once quantised.
ALIAS_MIN_COSINE = 0.98


def end_of_turn_aliases(base: str = "gemma3-270m", token: str = "<end_of_turn>",
                        min_cosine: float = ALIAS_MIN_COSINE) -> tuple[int, list[int]]:
    """(id of ``token``, ids whose embedding rows have cosine >= ``min_cosine`` with its row) in
    the base GGUF (dequantised; ~40 s and ~1 GB for Gemma's 262k x 640 embedding)."""
    import gguf
    import numpy as np
    from gguf.quants import dequantize

    reader = gguf.GGUFReader(str(_base_gguf(base)))
    tokens = reader.get_field("tokenizer.ggml.tokens")
    if tokens is None:
        raise FinetuneError("the base GGUF has no tokenizer.ggml.tokens")
    vocab = tokens.contents()
    if token not in vocab:
        raise FinetuneError(f"{token} is not in the base vocabulary")
    tid = vocab.index(token)
    embd = next((t for t in reader.tensors if t.name == "token_embd.weight"), None)
    if embd is None:
        raise FinetuneError("the base GGUF has no token_embd.weight")
    rows = dequantize(embd.data, embd.tensor_type).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True) + 1e-9
    cosine = rows @ rows[tid]
    return tid, [int(i) for i in np.nonzero(cosine >= min_cosine)[0] if i != tid]


def export_gguf_lora(adapter: str | Path, out: str | Path, *, base: str = "gemma3-270m",
                     dtype: str = "f16", end_of_turn_aliases: list[int] | None = None) -> dict[str, Any]:
    """Write ``out`` (GGUF LoRA) from a peft adapter directory; shapes are checked against the
    base GGUF so a mismatched adapter fails here, not inside llama.cpp. ``end_of_turn_aliases``
    (see :func:`end_of_turn_aliases`) are stored in the metadata for the llamacpp backend."""
    import gguf
    import numpy as np

    adapter, out = Path(adapter), Path(out)
    config, tensors = _read_adapter(adapter)
    if config.get("use_dora") or config.get("use_rslora"):
        raise FinetuneError("DoRA / rsLoRA adapters have no llama.cpp equivalent here")
    rank, alpha = int(config["r"]), float(config["lora_alpha"])
    reader = gguf.GGUFReader(str(_base_gguf(base)))
    arch_field = reader.get_field("general.architecture")
    arch = arch_field.contents() if arch_field is not None else "llama"
    base_shapes = {t.name: [int(x) for x in t.shape] for t in reader.tensors}
    np_dtype = np.float16 if dtype == "f16" else np.float32
    pairs: dict[str, dict[str, Any]] = {}
    for key, value in tensors.items():
        name = gguf_tensor_name(key)
        pairs.setdefault(name.rsplit(".lora_", 1)[0], {})[name[-1]] = value
    for stem, ab in sorted(pairs.items()):
        if set(ab) != {"a", "b"}:
            raise FinetuneError(f"{stem}: lora_A or lora_B missing in {adapter}")
        a, b = ab["a"], ab["b"]
        if stem not in base_shapes:
            raise FinetuneError(f"base has no tensor {stem}", hint="wrong --base for this adapter?")
        n_in, n_out = base_shapes[stem][:2]
        if a.shape != (rank, n_in) or b.shape != (n_out, rank):
            raise FinetuneError(f"{stem}: adapter shapes {a.shape}/{b.shape} do not fit base "
                                f"[in={n_in}, out={n_out}] at rank {rank}")
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(out), arch)
    writer.add_string(gguf.Keys.General.TYPE, "adapter")
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
    writer.add_string("general.name", f"MedChat LoRA ({adapter.name})")
    if end_of_turn_aliases:
        writer.add_array(END_OF_TURN_ALIASES_KEY, [int(i) for i in end_of_turn_aliases])
    for stem, ab in sorted(pairs.items(), key=lambda kv: _natural(kv[0])):
        writer.add_tensor(f"{stem}.lora_a", np.ascontiguousarray(ab["a"].astype(np_dtype)))
        writer.add_tensor(f"{stem}.lora_b", np.ascontiguousarray(ab["b"].astype(np_dtype)))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return {"out": str(out), "tensors": 2 * len(pairs), "rank": rank, "alpha": alpha,
            "architecture": arch, "dtype": dtype, "bytes": out.stat().st_size,
            "end_of_turn_aliases": len(end_of_turn_aliases or [])}


def _natural(name: str) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def merge_adapter(adapter: str | Path, out: str | Path, *, base: str = "gemma3-270m",
                  dtype: str = "float16") -> Path:
    """Base + adapter merged into plain weights (``save_pretrained``, safetensors) with the
    tokenizer: loadable by the transformers backend, or convertible with llama.cpp's tools."""
    import torch
    from peft import PeftModel

    from finetune.lora.config import LoraRunConfig
    from finetune.lora.train import load_base

    if dtype not in ("float16", "bfloat16", "float32"):
        raise FinetuneError("dtype must be float16, bfloat16 or float32")
    tokenizer, model = load_base(LoraRunConfig(base=base), "cpu", torch.float32)
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    merged = merged.to(getattr(torch, dtype))
    out = Path(out)
    merged.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out
