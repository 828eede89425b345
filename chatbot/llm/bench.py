"""Speed of the llamacpp backend on a RAG-sized prompt: ``python -m chatbot.llm.bench``.

Each model runs in its own subprocess so the reported peak RSS is that model's alone.
Prints one JSON line per model: load time, prompt tokens, time to first token (prefill),
decode tokens/s, peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

from chatbot.llm.base import ChatMessage, GenerationOptions

_PASSAGE = ("Asthma is a long-term condition in which the airways become inflamed and narrow, "
            "causing wheezing, breathlessness, chest tightness and coughing. Inhaled "
            "corticosteroids reduce the inflammation and prevent attacks, and a reliever inhaler "
            "such as salbutamol opens the airways during symptoms. ")


def bench_prompt(count, target_tokens: int) -> list[ChatMessage]:
    """A system + user prompt of about ``target_tokens`` tokens, shaped like the engine's."""
    system = "You are MedChat. Use only the numbered passages and cite them as [1], [2]."

    def user(k: int) -> str:
        passages = "\n\n".join(f"[{n}] Asthma (NHS)\n<<<\n{_PASSAGE}\n>>>" for n in range(1, k + 1))
        return (f"Reference passages:\n{passages}\n\n"
                "Patient's question: How is asthma treated? Explain in detail.\n\nAnswer:")

    k = 1
    while count(system) + count(user(k)) < target_tokens:
        k += 1
    return [ChatMessage("system", system), ChatMessage("user", user(k))]


def run_one(model: str, prompt_tokens: int, max_tokens: int, n_threads: int) -> dict[str, object]:
    from chatbot.llm.llamacpp import LlamaCppGenerator

    t0 = time.perf_counter()
    generator = LlamaCppGenerator(model, n_ctx=2048, n_threads=n_threads)
    generator.warm_up()
    load_s = time.perf_counter() - t0
    messages = bench_prompt(generator.count_tokens, prompt_tokens)
    # Warm the process (first call allocates buffers), on a different prompt so the prefix
    # cache cannot shorten the measured prefill.
    list(generator.stream([ChatMessage("user", "Hi")], GenerationOptions(max_tokens=2)))
    start = time.perf_counter()
    first = 0.0
    pieces: list[str] = []
    for piece in generator.stream(messages, GenerationOptions(max_tokens=max_tokens, timeout_s=300)):
        if not pieces:
            first = time.perf_counter()
        pieces.append(piece)
    end = time.perf_counter()
    completion = generator.count_tokens("".join(pieces))
    decode_s = end - first if pieces else 0.0
    return {
        "model": model,
        "n_threads": generator.n_threads,
        "load_s": round(load_s, 2),
        "prompt_tokens": sum(generator.count_tokens(m.content) for m in messages),
        "ttft_s": round(first - start, 3) if pieces else None,
        "completion_tokens": completion,
        "decode_tok_s": round((completion - 1) / decode_s, 1) if decode_s > 0 and completion > 1 else None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", nargs="+", default=["gemma3-270m", "smollm2-135m"])
    parser.add_argument("--prompt-tokens", type=int, default=300)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.models[0], args.prompt_tokens, args.max_tokens, args.threads)))
        return
    for model in args.models:
        subprocess.run([sys.executable, "-m", "chatbot.llm.bench", "--one", "--models", model,
                        "--prompt-tokens", str(args.prompt_tokens),
                        "--max-tokens", str(args.max_tokens), "--threads", str(args.threads)],
                       check=True)


if __name__ == "__main__":
    main()
