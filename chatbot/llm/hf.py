"""Any Hugging Face causal LM through transformers: GGUF (dequantised on load), a local model
directory or an HF id, an optional peft LoRA adapter, device / dtype / 4-bit selectable.

Slower than llamacpp on CPU (fp32 weights) but the path for fine-tuned adapters and GPUs.
An HF id is resolved by transformers: it needs network access or a filled HF cache; local paths
are always loaded with ``local_files_only=True`` so nothing is fetched behind the user's back.

Concurrency: generations on one generator are serialised (one model, one lock); the lock is
released by the generation thread itself, so a caller that timed out returns at once while the
thread stops at its next token.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from chatbot.llm.base import BackendInfo, ChatMessage, GenerationError, GenerationOptions
from chatbot.llm.models import model_label, resolve_model
from chatbot.llm.prompting import GEMMA_END_OF_TURN, Deadline, gemma_turns, trim_at_stops

INSTALL_HINT = "pip install torch transformers"


@dataclass(frozen=True)
class _Source:
    """What to hand to ``from_pretrained``."""

    location: str  # directory or HF id
    gguf_file: str | None
    local: bool

    def common_kwargs(self) -> dict[str, Any]:
        """``from_pretrained`` arguments shared by the tokenizer and the model: the GGUF file to
        dequantise, and no hub access for local paths."""
        common: dict[str, Any] = {}
        if self.gguf_file:
            common["gguf_file"] = self.gguf_file
        if self.local:
            common["local_files_only"] = True
        return common


def locate(ref: str | Path, gguf_file: str = "") -> _Source:
    resolved = resolve_model(ref)
    if isinstance(resolved, str):
        return _Source(resolved, gguf_file or None, local=False)
    if resolved.is_file():
        if resolved.suffix != ".gguf":
            raise GenerationError(f"{resolved} is a file but not a .gguf",
                                  hint="give a model directory, a .gguf file or an HF id")
        return _Source(str(resolved.parent), resolved.name, local=True)
    return _Source(str(resolved), gguf_file or None, local=True)


class TransformersGenerator:
    def __init__(self, model: str | Path, *, gguf_file: str = "", adapter: str = "",
                 device: str = "cpu", dtype: str = "float32", load_in_4bit: bool = False,
                 n_ctx: int = 4096) -> None:
        self.model_ref = model
        self.gguf_file = gguf_file
        self.adapter = adapter
        self.device = device
        self.dtype = dtype
        self.load_in_4bit = load_in_4bit
        self.n_ctx = n_ctx
        self.name = f"transformers:{model_label(model)}"
        self._model: Any = None
        self._tokenizer: Any = None
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()

    @property
    def context_length(self) -> int:
        return self.n_ctx

    def warm_up(self) -> None:
        self._load()

    # -- loading ---------------------------------------------------------------------------
    def _load(self) -> tuple[Any, Any]:
        with self._load_lock:
            if self._model is None:
                self._tokenizer, self._model = self._build()
            return self._tokenizer, self._model

    def _build(self) -> tuple[Any, Any]:
        try:
            import torch
        except ImportError as exc:
            raise GenerationError("the transformers backend needs torch", hint=INSTALL_HINT) from exc
        # Configuration errors first: they must not wait for the slow transformers import.
        self._check_device(torch)
        quantization = self._four_bit_config(torch) if self.load_in_4bit else None
        if self.adapter and not Path(self.adapter).is_dir():
            raise GenerationError(f"LoRA adapter directory not found: {self.adapter}",
                                  hint="llm.adapter must be a peft save_pretrained directory")
        try:
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:
            raise GenerationError("the transformers backend needs transformers",
                                  hint=INSTALL_HINT) from exc
        source = locate(self.model_ref, self.gguf_file)
        common = source.common_kwargs()
        kwargs: dict[str, Any] = dict(common, dtype=getattr(torch, self.dtype))
        if quantization is not None:
            kwargs["quantization_config"] = quantization
        if self.device == "auto":
            kwargs["device_map"] = "auto"
        try:
            tokenizer = AutoTokenizer.from_pretrained(source.location, **common)
            model = AutoModelForCausalLM.from_pretrained(source.location, **kwargs)
        except ImportError as exc:  # e.g. GGUF without the `gguf` package
            raise GenerationError(f"cannot load {source.location}: {exc}",
                                  hint="pip install gguf" if source.gguf_file else INSTALL_HINT) from exc
        except (OSError, ValueError) as exc:  # missing files, not in cache, unsupported arch
            raise GenerationError(f"cannot load {source.location}: {exc}",
                                  hint="check llm.model / llm.gguf_file; an HF id needs network "
                                       "or a filled HF cache") from exc
        if self.device != "auto" and not self.load_in_4bit:  # bnb places 4-bit weights itself
            model = model.to(self.device)
        if self.adapter:
            model = self._with_adapter(model)
        model.eval()
        return tokenizer, model

    def _check_device(self, torch: Any) -> None:
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise GenerationError(f"llm.device is {self.device!r} but CUDA is not available",
                                  hint="set llm.device=cpu")

    def _four_bit_config(self, torch: Any) -> Any:
        if not torch.cuda.is_available():
            raise GenerationError("4-bit loading (llm.load_in_4bit) needs CUDA; no GPU here",
                                  hint="set llm.load_in_4bit=false, or use the llamacpp backend "
                                       "with a quantised GGUF on CPU")
        try:
            import bitsandbytes  # noqa: F401  (only to give a clear hint when it is missing)
            from transformers import BitsAndBytesConfig
        except ImportError as exc:
            raise GenerationError("4-bit loading needs bitsandbytes",
                                  hint='pip install "medchat[gpu]"') from exc
        return BitsAndBytesConfig(load_in_4bit=True)

    def _with_adapter(self, model: Any) -> Any:
        try:
            from peft import PeftModel
        except ImportError as exc:
            raise GenerationError("a LoRA adapter needs peft", hint="pip install peft") from exc
        try:
            return PeftModel.from_pretrained(model, self.adapter, is_trainable=False)
        except (OSError, ValueError, KeyError) as exc:  # bad config, mismatched shapes/modules
            raise GenerationError(f"cannot apply adapter {self.adapter}: {exc}",
                                  hint="was the adapter trained on this base model?") from exc

    # -- generation ------------------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        tokenizer, _ = self._load()
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    def _prompt_ids(self, tokenizer: Any, messages: Sequence[ChatMessage]) -> Any:
        if getattr(tokenizer, "chat_template", None):
            return tokenizer.apply_chat_template([m.as_dict() for m in messages],
                                                 add_generation_prompt=True, return_tensors="pt",
                                                 return_dict=True)
        # No template (e.g. Gemma 3 270M base): Gemma's turn format. The tokenizer adds <bos>.
        return tokenizer(gemma_turns(messages), return_tensors="pt")

    def stream(self, messages: Sequence[ChatMessage], options: GenerationOptions) -> Iterator[str]:
        deadline = Deadline(options.timeout_s)
        tokenizer, model = self._load()
        if not self._run_lock.acquire(timeout=deadline.remaining()):
            raise deadline.timeout(f"waiting for {self.name}")
        try:
            run = _Run(self, tokenizer, model, messages, options, deadline)
            run.start()  # from here on the thread owns (and releases) the run lock
        except BaseException:
            self._run_lock.release()
            raise
        stops = list(options.stop)
        if not getattr(tokenizer, "chat_template", None):
            stops.append(GEMMA_END_OF_TURN)  # in case the tokenizer treats it as plain text
        pieces = run.pieces()
        try:
            yield from trim_at_stops(pieces, stops)
        finally:
            run.cancel()
            pieces.close()

    def info(self) -> BackendInfo:
        return BackendInfo(backend="transformers", model=model_label(self.model_ref),
                           adapter=self.adapter, device=self.device,
                           extra={"dtype": self.dtype, "load_in_4bit": str(self.load_in_4bit),
                                  "n_ctx": str(self.n_ctx)})


class _Run:
    """One generation: ``model.generate`` on a thread, text pieces via TextIteratorStreamer."""

    def __init__(self, owner: TransformersGenerator, tokenizer: Any, model: Any,
                 messages: Sequence[ChatMessage], options: GenerationOptions,
                 deadline: Deadline) -> None:
        from transformers import StoppingCriteriaList, TextIteratorStreamer

        self.owner = owner
        self.deadline = deadline
        self.cancelled = threading.Event()
        self.timed_out = False  # set by the stopping criterion, read after the stream ends
        self.error: BaseException | None = None
        self.streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True,
                                             timeout=max(deadline.remaining(), 0.001))
        inputs = owner._prompt_ids(tokenizer, messages)
        device = next(model.parameters()).device
        inputs = {k: v.to(device) for k, v in inputs.items()}
        self.kwargs: dict[str, Any] = dict(
            inputs, max_new_tokens=options.max_tokens, streamer=self.streamer,
            repetition_penalty=options.repeat_penalty,
            stopping_criteria=StoppingCriteriaList([_stop_when(self)]),
            pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None
            else tokenizer.eos_token_id)
        eos = _eos_ids(tokenizer)
        if eos:
            self.kwargs["eos_token_id"] = eos
        if options.temperature > 0:
            self.kwargs.update(do_sample=True, temperature=options.temperature, top_p=options.top_p)
        else:
            self.kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        self.seed = options.seed
        self.thread = threading.Thread(target=self._generate, name=f"generate:{owner.name}",
                                       daemon=True)

    def start(self) -> None:
        self.thread.start()

    def cancel(self) -> None:
        self.cancelled.set()

    def _generate(self) -> None:
        import torch

        try:
            torch.manual_seed(self.seed)  # only matters when sampling
            with torch.inference_mode():
                self.owner._model.generate(**self.kwargs)
        except BaseException as exc:  # handed to the consumer thread, which re-raises it
            self.error = exc
            self.streamer.end()  # unblock the consumer
        finally:
            self.owner._run_lock.release()

    def pieces(self) -> Iterator[str]:
        try:
            for piece in self.streamer:
                self.deadline.check(f"generation with {self.owner.name}")
                if piece:
                    yield piece
        except queue.Empty as exc:  # no token before the deadline (slow prefill)
            raise self.deadline.timeout(f"generation with {self.owner.name}") from exc
        if self.error is not None:
            if isinstance(self.error, (RuntimeError, ValueError)):
                raise GenerationError(f"{self.owner.name} failed: {self.error}") from self.error
            raise self.error
        if self.timed_out:
            raise self.deadline.timeout(f"generation with {self.owner.name}")


def _stop_when(run: _Run) -> Any:
    """A StoppingCriteria that ends generation at the deadline or when the consumer went away
    (built here because transformers is imported lazily)."""
    import torch
    from transformers import StoppingCriteria

    class StopWhen(StoppingCriteria):
        def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> Any:
            if run.deadline.expired():
                run.timed_out = True
            stop = run.timed_out or run.cancelled.is_set()
            return torch.full((input_ids.shape[0],), stop, dtype=torch.bool,
                              device=input_ids.device)

    return StopWhen()


def _eos_ids(tokenizer: Any) -> list[int]:
    """EOS plus Gemma's <end_of_turn> when the vocabulary has it as a token."""
    ids = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    turn_id = tokenizer.convert_tokens_to_ids(GEMMA_END_OF_TURN)
    if isinstance(turn_id, int) and turn_id != tokenizer.unk_token_id and turn_id not in ids:
        ids.append(turn_id)
    return ids
