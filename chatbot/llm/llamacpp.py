"""GGUF models on CPU through llama-cpp-python: the fast default backend.

Concurrency: one ``llama_cpp.Llama`` holds one KV cache and is not re-entrant, so generations on
one generator are serialised by a lock (a second caller waits, within its own time budget).
For parallel answers run several processes, or serve the model with a server (llama.cpp
server, vLLM, ...) and use the ``openai`` backend.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from chatbot.llm.base import BackendInfo, ChatMessage, GenerationError, GenerationOptions
from chatbot.llm.models import model_label, resolve_model
from chatbot.llm.prompting import GEMMA_END_OF_TURN, Deadline, gemma_turns

if TYPE_CHECKING:
    from llama_cpp import Llama

INSTALL_HINT = "pip install llama-cpp-python"


def default_threads() -> int:
    # Respect CPU affinity (containers, taskset) rather than the host's core count.
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def find_gguf(ref: str | Path, gguf_file: str = "") -> Path:
    """The .gguf file a model reference designates: a file, or a directory + ``gguf_file`` (or
    the only .gguf inside it). HF ids are refused: this backend never downloads."""
    resolved = resolve_model(ref)
    if isinstance(resolved, str):
        raise GenerationError(f"llamacpp needs a local .gguf file; {resolved!r} is neither an alias "
                              "nor an existing path",
                              hint="use gemma3-270m, smollm2-135m or the path of a .gguf file")
    if resolved.is_dir():
        if gguf_file:
            resolved = resolved / gguf_file
        else:
            candidates = sorted(resolved.glob("*.gguf"))
            if len(candidates) != 1:
                raise GenerationError(f"{resolved} holds {len(candidates)} .gguf files; "
                                      "say which one", hint="set llm.gguf_file")
            resolved = candidates[0]
    if not resolved.is_file():
        raise GenerationError(f"model file not found: {resolved}")
    return resolved


ADAPTER_HINT = ("llamacpp takes a GGUF LoRA file (convert a peft adapter with llama.cpp's "
                "convert_lora_to_gguf.py)")


def check_gguf_adapter(path: Path) -> None:
    """Refuse what is not a GGUF file before handing it to llama.cpp."""
    try:
        with path.open("rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise GenerationError(f"LoRA adapter not readable: {path}: {exc}", hint=ADAPTER_HINT) from exc
    if magic != b"GGUF":
        raise GenerationError(f"LoRA adapter {path} is not a GGUF file", hint=ADAPTER_HINT)


_PATCH_LOCK = threading.Lock()


def disable_extra_buffers() -> None:
    """Make every llama.cpp model load in this process skip the CPU "extra" buffer types (AMX
    tiles, repacked weights). Why: a CPU that reports AMX inside a VM whose kernel does not
    enable the tile state faults on the first matrix product (general protection fault at
    ``ldtilecfg`` in ``ggml_backend_amx_mul_mat``: the process dies without a Python error), and
    llama-cpp-python's ``Llama`` does not expose ``use_extra_bufts``. Idempotent."""
    import llama_cpp.llama_cpp as C

    with _PATCH_LOCK:
        if getattr(C.llama_model_default_params, "_medchat_no_extra_bufts", False):
            return
        original = C.llama_model_default_params

        def params():  # the library's defaults, minus the extra buffer types
            p = original()
            p.use_extra_bufts = False
            return p

        params._medchat_no_extra_bufts = True
        C.llama_model_default_params = params


class LlamaCppGenerator:
    def __init__(self, model: str | Path, *, gguf_file: str = "", n_ctx: int = 4096,
                 n_threads: int = 0, adapter: str = "", seed: int = 0,
                 extra_buffers: bool = False) -> None:
        self.model_ref = model
        self.extra_buffers = extra_buffers
        self.gguf_file = gguf_file
        self.n_ctx = n_ctx
        self.n_threads = n_threads or default_threads()
        self.adapter = adapter
        self.seed = seed
        self.name = f"llamacpp:{model_label(model)}"
        self._llm: Llama | None = None
        self._has_template = False
        self._end_fold: Any = None  # (end-of-turn id, alias ids) from the adapter's metadata
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()

    @property
    def context_length(self) -> int:
        return self.n_ctx

    @property
    def has_chat_template(self) -> bool:
        """Whether the GGUF carries a chat template (known after loading)."""
        self._load()
        return self._has_template

    def warm_up(self) -> None:
        self._load()

    def _load(self) -> "Llama":
        with self._load_lock:
            if self._llm is not None:
                return self._llm
            try:
                from llama_cpp import Llama
            except ImportError as exc:
                raise GenerationError("the llamacpp backend needs llama-cpp-python",
                                      hint=INSTALL_HINT) from exc
            path = find_gguf(self.model_ref, self.gguf_file)
            if self.adapter:
                check_gguf_adapter(Path(self.adapter))
            if not self.extra_buffers:
                disable_extra_buffers()
            try:
                llm = Llama(model_path=str(path), n_ctx=self.n_ctx, n_threads=self.n_threads,
                            lora_path=self.adapter or None, seed=self.seed, verbose=False)
            except (ValueError, RuntimeError) as exc:  # llama_cpp reports load failures so
                raise GenerationError(f"cannot load {path}: {exc}",
                                      hint="is it a GGUF file this llama-cpp-python supports?") from exc
            # llama-cpp-python misses a NULL from llama_adapter_lora_init (it compares a ctypes
            # pointer with None) and the first generation then segfaults: check it here.
            if self.adapter and not getattr(llm, "_lora_adapter", True):
                llm.close()
                raise GenerationError(f"llama.cpp could not load the LoRA adapter {self.adapter}",
                                      hint=ADAPTER_HINT + "; it must match the base model")
            self._has_template = bool(llm.metadata.get("tokenizer.chat_template"))
            if self.adapter:
                self._end_fold = _end_of_turn_fold(llm, Path(self.adapter))
            self._llm = llm
            return llm

    def count_tokens(self, text: str) -> int:
        return len(self._load().tokenize(text.encode("utf-8"), add_bos=False))

    def stream(self, messages: Sequence[ChatMessage], options: GenerationOptions) -> Iterator[str]:
        deadline = Deadline(options.timeout_s)
        llm = self._load()
        # Wait for a concurrent generation only as long as our own budget allows.
        if not self._run_lock.acquire(timeout=deadline.remaining()):
            raise deadline.timeout(f"waiting for {self.name}")
        try:
            chunks: Iterator[dict[str, Any]] | None = None
            try:
                chunks = self._start(llm, messages, options)
                for chunk in chunks:
                    deadline.check(f"generation with {self.name}")
                    piece = _piece(chunk)
                    if piece:
                        yield piece
            except (ValueError, RuntimeError) as exc:  # e.g. prompt longer than n_ctx
                raise GenerationError(f"{self.name} failed: {exc}",
                                      hint="shorten the prompt or raise llm.n_ctx") from exc
            finally:
                # Stops llama.cpp promptly on timeout or when the consumer stops reading.
                if chunks is not None:
                    chunks.close()
        finally:
            self._run_lock.release()

    def _start(self, llm: "Llama", messages: Sequence[ChatMessage],
               options: GenerationOptions) -> Iterator[dict[str, Any]]:
        common = dict(stream=True, max_tokens=options.max_tokens, temperature=options.temperature,
                      top_p=options.top_p, repeat_penalty=options.repeat_penalty, seed=options.seed)
        if self._has_template:
            try:
                # Lazy: llama.cpp only evaluates (and may raise) when the stream is iterated.
                return llm.create_chat_completion(
                    messages=[m.as_dict() for m in messages], stop=list(options.stop) or None,
                    **common)
            except _template_error():
                # The template rejects our messages (e.g. "system role not supported"): use
                # the explicit turn format rather than fail the answer.
                pass
        return llm.create_completion(gemma_turns(messages),
                                     stop=[GEMMA_END_OF_TURN, *options.stop],
                                     logits_processor=self._fold_processor(), **common)

    def _fold_processor(self) -> Any:
        """Serve the adapter's end-of-turn look-alikes as ``<end_of_turn>`` itself.

        Gemma-3-270M base has 6,021 vocabulary rows (untrained tokens) within cosine 0.98 of
        ``<end_of_turn>``'s embedding. A LoRA-finetuned model that means "end the turn" points at
        that cluster, and on the quantised weights the top token of the cluster is often a
        look-alike (measured: "...blurring vision [1].𒍐モデル𒄗 Diabetic Retinopathy ..."). The
        best score of the cluster is given to ``<end_of_turn>`` and the look-alikes are never
        produced. The ids come from the adapter file (``finetune export``)."""
        if self._end_fold is None:
            return None
        import numpy as np
        from llama_cpp import LogitsProcessorList

        end_id, aliases = self._end_fold

        def fold(_input_ids: Any, scores: Any) -> Any:
            best = max(scores[end_id], scores[aliases].max())
            scores[aliases] = -np.inf
            scores[end_id] = best
            return scores

        return LogitsProcessorList([fold])

    def info(self) -> BackendInfo:
        extra = {"n_ctx": str(self.n_ctx), "n_threads": str(self.n_threads)}
        if self._llm is not None:
            extra["chat_format"] = "gguf template" if self._has_template else "gemma turns"
        return BackendInfo(backend="llamacpp", model=model_label(self.model_ref),
                           adapter=self.adapter, device="cpu", extra=extra)


def _end_of_turn_fold(llm: "Llama", adapter: Path) -> Any:
    """(``<end_of_turn>`` id, alias ids) stored in a MedChat GGUF LoRA, or None."""
    import gguf
    import numpy as np

    field = gguf.GGUFReader(str(adapter)).get_field("medchat.end_of_turn_aliases")
    if field is None:
        return None
    ids = llm.tokenize(GEMMA_END_OF_TURN.encode("utf-8"), add_bos=False, special=True)
    if len(ids) != 1:
        return None
    return ids[0], np.asarray(field.contents(), dtype=np.int64)


def _piece(chunk: dict[str, Any]) -> str:
    choice = (chunk.get("choices") or [{}])[0]
    if "delta" in choice:  # chat completion chunk
        return choice["delta"].get("content") or ""
    return choice.get("text") or ""


def _template_error() -> type[Exception]:
    from jinja2 import TemplateError  # a llama-cpp-python dependency

    return TemplateError
