"""LoRA training on a tiny Gemma-3-shaped model the test builds itself: the loss falls, the adapter
round-trips through peft and through the GGUF LoRA export, resume and Ctrl-C keep the run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import finetune.lora.train as lora_mod
from finetune.lora.config import FinetuneError, LoraRunConfig
from finetune.lora.export import export_gguf_lora, gguf_tensor_name
from tests.finetune.tiny import ByteTokenizer, tiny_gemma

QUESTIONS = [("What helps asthma?", "Inhalers help [1]."), ("哮喘怎么办？", "使用吸入剂[1]。"),
             ("What causes gout?", "Uric acid [2]."), ("痛风是什么原因？", "尿酸高[2]。")]


def _rows(n: int = 16) -> list[dict]:
    rows = []
    for i in range(n):
        q, a = QUESTIONS[i % len(QUESTIONS)]
        rows.append({"messages": [{"role": "system", "content": "Cite passages."},
                                  {"role": "user", "content": f"[1] p{i}\n{q}"}],
                     "target": a + "<end_of_turn>"})
    return rows


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in _rows()), encoding="utf-8")
    return path


def _cfg(tmp_path, data, **kw) -> LoraRunConfig:
    base = dict(base="tiny", train_file=str(data), dev_file=str(data), dev_examples=4,
                output_dir=str(tmp_path / "run"), grad_accum=2, lr=5e-3, save_every=3, threads=1,
                rank=4, alpha=8, dropout=0.0, warmup_steps=0, max_steps=12)
    base.update(kw)
    return LoraRunConfig(**base)


def _logits(model, ids):
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits[0]


def test_loss_falls_and_adapter_round_trips(tmp_path, data):
    model = tiny_gemma(seed=0)
    cfg = _cfg(tmp_path, data)
    metrics = lora_mod.train(cfg, loaded=(ByteTokenizer(), model), progress=False, echo=lambda _m: None)
    assert metrics["status"] == "finished" and metrics["steps"] == 12
    assert metrics["dev_loss_after"] < metrics["dev_loss_before"] - 0.05
    history = json.loads((tmp_path / "run" / "metrics.json").read_text())["history"]
    assert sum(h["loss"] for h in history[-3:]) < sum(h["loss"] for h in history[:3])
    assert (tmp_path / "run" / "loss.png").stat().st_size > 1000
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["rank"] == 4 and saved["target_modules"] == list(cfg.target_modules)

    # The trained LoRA weights live in ``model`` (peft injects layers in place); a fresh base with
    # the saved (fp16) adapter must give the same logits, and differ from the bare base.
    from peft import PeftModel

    ids = ByteTokenizer()("What helps asthma?")["input_ids"]
    trained = _logits(model.eval(), ids)
    reloaded = PeftModel.from_pretrained(tiny_gemma(seed=0), str(tmp_path / "run" / "adapter")).eval()
    assert torch.allclose(_logits(reloaded, ids), trained, atol=2e-3)
    assert not torch.allclose(_logits(tiny_gemma(seed=0), ids), trained, atol=1e-3)


def test_resume_continues_from_checkpoint(tmp_path, data):
    cfg = _cfg(tmp_path, data, max_steps=3)
    lora_mod.train(cfg, loaded=(ByteTokenizer(), tiny_gemma()), progress=False, echo=lambda _m: None)
    state = torch.load(tmp_path / "run" / "checkpoint" / "training_state.pt", weights_only=False)
    assert state["step"] == 3
    more = _cfg(tmp_path, data, max_steps=5)
    metrics = lora_mod.train(more, resume=True, loaded=(ByteTokenizer(), tiny_gemma()),
                             progress=False, echo=lambda _m: None)
    assert metrics["steps"] == 5
    history = json.loads((tmp_path / "run" / "metrics.json").read_text())["history"]
    assert [h["step"] for h in history] == [1, 2, 3, 4, 5]


def test_ctrl_c_keeps_last_checkpoint(tmp_path, data, monkeypatch):
    real = lora_mod.target_loss_sum
    calls = {"n": 0}

    def interrupting(model, batch):
        calls["n"] += 1
        if calls["n"] == 4 + 7:  # 4 dev examples, then the 7th training forward (step 4)
            raise KeyboardInterrupt
        return real(model, batch)

    monkeypatch.setattr(lora_mod, "target_loss_sum", interrupting)
    metrics = lora_mod.train(_cfg(tmp_path, data), loaded=(ByteTokenizer(), tiny_gemma()),
                             progress=False, echo=lambda _m: None)
    assert metrics == {"status": "interrupted", "step": 3}
    state = torch.load(tmp_path / "run" / "checkpoint" / "training_state.pt", weights_only=False)
    assert state["step"] == 3 and not (tmp_path / "run" / "adapter").exists()
    # the checkpoint becomes a usable adapter without training further
    kept = lora_mod.finalize_checkpoint(_cfg(tmp_path, data), echo=lambda _m: None)
    assert kept["steps"] == 3 and kept["status"] == "from_checkpoint"
    from safetensors.torch import load_file

    weights = load_file(str(tmp_path / "run" / "adapter" / "adapter_model.safetensors"))
    assert weights and all(t.dtype == torch.float16 for t in weights.values())
    assert len(json.loads((tmp_path / "run" / "metrics.json").read_text())["history"]) == 3


def test_time_budget_stops_with_a_complete_adapter(tmp_path, data):
    cfg = _cfg(tmp_path, data, max_minutes=1e-6)
    metrics = lora_mod.train(cfg, loaded=(ByteTokenizer(), tiny_gemma()), progress=False,
                             echo=lambda _m: None)
    assert metrics["status"] == "time_budget" and metrics["steps"] == 1 < metrics["planned_steps"]
    assert (tmp_path / "run" / "adapter" / "adapter_model.safetensors").is_file()


def test_answer_only_loss_equals_full_model_loss():
    model = tiny_gemma(seed=1)
    prompt, target = [1, 5, 6, 7, 8], [9, 10, 11]
    ex = lora_mod.Example(prompt + target, [lora_mod.IGNORE] * len(prompt) + target)
    batch = lora_mod.collate([ex], 0, "cpu")
    loss_sum, n = lora_mod.target_loss_sum(model, batch)
    full = model(input_ids=batch["input_ids"], labels=batch["labels"]).loss
    assert n == 3 and float((loss_sum / n).detach()) == pytest.approx(float(full.detach()), rel=1e-5)


def test_packing_and_length_filter():
    tok = ByteTokenizer()
    cfg = LoraRunConfig(max_length=20)
    rows = [{"prompt": "abc", "target": "de"}, {"prompt": "x" * 30, "target": "y"}]
    examples, skipped = lora_mod.encode(rows, tok, cfg)
    assert skipped == 1 and examples[0].labels == [-100] * 4 + [ord("d") + 3, ord("e") + 3]
    packed = lora_mod.pack(examples * 5, 20)
    assert [len(p.input_ids) for p in packed] == [18, 12]


def test_training_rows_are_read_with_their_line_numbers(tmp_path, data):
    assert len(lora_mod.read_rows(data, limit=3)) == 3
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "p", "target": "t"}\n\n{"prompt": "p"}\n', encoding="utf-8")
    with pytest.raises(FinetuneError, match="bad.jsonl:3: a row needs a string target"):
        lora_mod.read_rows(bad)
    bad.write_text('{"prompt": "p", "target": "t"}\nnot json\n', encoding="utf-8")
    with pytest.raises(FinetuneError, match="bad.jsonl:2: not JSON"):
        lora_mod.read_rows(bad)


@pytest.mark.parametrize("bad", [{"rank": 0}, {"dropout": 1.0}, {"prompt_format": "chatml"},
                                 {"target_modules": []}, {"device": "tpu"}, {"max_minutes": -1}])
def test_config_checks_itself(bad):
    with pytest.raises(FinetuneError):
        LoraRunConfig(**bad)


def test_config_file_rejects_unknown_fields(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("rank: 8\nranks: 4\n")
    with pytest.raises(FinetuneError, match="ranks"):
        LoraRunConfig.load(path)
    path.write_text("rank: 8\ntarget_modules: [q_proj]\n")
    cfg = LoraRunConfig.load(path)
    assert cfg.rank == 8 and cfg.target_modules == ("q_proj",)


def test_unknown_target_module_is_refused(tmp_path, data):
    cfg = _cfg(tmp_path, data, target_modules=("qkv_proj",))
    with pytest.raises(FinetuneError, match="qkv_proj"):
        lora_mod.train(cfg, loaded=(ByteTokenizer(), tiny_gemma()), progress=False, echo=lambda _m: None)


# --- GGUF LoRA export ------------------------------------------------------------------------


def _tiny_base_gguf(path, model) -> None:
    """A base GGUF holding the tiny model's projection tensors (names and shapes as llama.cpp's
    converter writes them), so the export can check shapes against it."""
    import gguf

    names = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output",
             "gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down"}
    writer = gguf.GGUFWriter(str(path), "gemma3")
    for i, layer in enumerate(model.model.layers):
        for hf, gg in names.items():
            module = getattr(layer.self_attn, hf, None) or getattr(layer.mlp, hf)
            writer.add_tensor(f"blk.{i}.{gg}.weight", module.weight.detach().numpy().astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_gguf_export_names_shapes_metadata(tmp_path, data):
    import gguf
    from safetensors.numpy import load_file

    model = tiny_gemma(seed=0)
    base = tmp_path / "base.gguf"
    _tiny_base_gguf(base, model)
    lora_mod.train(_cfg(tmp_path, data, max_steps=2), loaded=(ByteTokenizer(), model), progress=False,
                   echo=lambda _m: None)
    adapter = tmp_path / "run" / "adapter"
    report = export_gguf_lora(adapter, tmp_path / "a.gguf", base=str(base), end_of_turn_aliases=[7, 9])
    assert report["tensors"] == 2 * 7 * 2 and report["architecture"] == "gemma3"

    reader = gguf.GGUFReader(str(tmp_path / "a.gguf"))
    assert reader.get_field("general.type").contents() == "adapter"
    assert reader.get_field("adapter.type").contents() == "lora"
    assert reader.get_field("adapter.lora.alpha").contents() == pytest.approx(8.0)
    assert reader.get_field("medchat.end_of_turn_aliases").contents() == [7, 9]
    tensors = {t.name: t for t in reader.tensors}
    q_a, q_b = tensors["blk.1.attn_q.weight.lora_a"], tensors["blk.1.attn_q.weight.lora_b"]
    # GGUF dims are reversed: a.ne = [in, rank], b.ne = [rank, out] (hidden 32, 2 heads x 16).
    assert [int(x) for x in q_a.shape] == [32, 4] and [int(x) for x in q_b.shape] == [4, 32]
    peft = load_file(str(adapter / "adapter_model.safetensors"))
    key = next(k for k in peft if "layers.1.self_attn.q_proj.lora_B" in k)
    assert np.allclose(np.asarray(q_b.data, dtype=np.float32), peft[key].astype(np.float32))


def test_gguf_export_refuses_mismatched_base(tmp_path, data):
    model = tiny_gemma(seed=0)
    lora_mod.train(_cfg(tmp_path, data, max_steps=1), loaded=(ByteTokenizer(), model), progress=False,
                   echo=lambda _m: None)
    other = tiny_gemma(seed=0)
    other.model.layers = other.model.layers[:1]  # a base with one layer fewer
    base = tmp_path / "small.gguf"
    _tiny_base_gguf(base, other)
    with pytest.raises(FinetuneError, match="base has no tensor blk.1"):
        export_gguf_lora(tmp_path / "run" / "adapter", tmp_path / "a.gguf", base=str(base))


def test_gguf_tensor_names():
    assert gguf_tensor_name("base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight") == \
        "blk.3.attn_q.weight.lora_a"
    assert gguf_tensor_name("base_model.model.model.language_model.layers.17.mlp.down_proj.lora_B.weight") == \
        "blk.17.ffn_down.weight.lora_b"
    with pytest.raises(FinetuneError):
        gguf_tensor_name("base_model.model.lm_head.lora_A.weight")
