#!/usr/bin/env python3
"""Chunks/s of the local all-MiniLM-L6-v2 (rag.embeddings.LocalMiniLM) on synthetic document chunks.

    .venv/bin/python scripts/bench_embeddings.py [--chunks 1000] [--tokens 200] [--precision int8,fp32]
                                                 [--threads 0] [--rounds 1] [--docs PATH ...]

Makes `--chunks` English and as many Chinese chunks of about `--tokens` word pieces each (the
model's own tokenizer; 256 is its limit), deterministic from a seed, embeds each set through
`LocalMiniLM.embed` (as ingestion does) at each precision, and prints a table: word pieces per
chunk, seconds, chunks/s, tokens/s, and the process's CPU time (all threads) with chunks per
CPU-second: that figure barely depends on what else runs on the machine, wall time does (chunks/s
on an idle machine come to about threads x chunks per CPU-second).

`--docs` adds a set "docs": the passages of real files (Markdown, text, HTML, PDF, DOCX; folders are
walked) as ingestion makes them with the default chunk settings (section path + text), e.g.
`--docs README.md docs tests/data/rag`.

Not a test: it takes about a minute on 2 cores and wants the machine to itself.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path

from tokenizers import Tokenizer

from chatstream.config import Settings
from chatstream.rag.chunking import chunk
from chatstream.rag.embeddings import LocalMiniLM, minilm_dir
from chatstream.rag.extract import UnsupportedFile, detect_kind, extract
from chatstream.rag.parsing import embedding_text

EN_WORDS = str.split(
    "the of and to in is was for on that with as by at from it this be are an or which have has not "
    "data system model user server request document search index vector query result answer time "
    "memory network storage policy report market price value growth energy water city river school "
    "student teacher research study method analysis process change level number group company "
    "service customer product support security account password email message file page section "
    "table figure chapter history science language computer software hardware performance quickly "
    "carefully important different available possible general specific recent local national"
)
ZH_CHARS = (
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面"
    "而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把"
    "性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质"
    "气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活"
    "设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则"
)
ZH_PUNCT = "，。；、"  # noqa: RUF001


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def english_chunk(rng: random.Random, tokenizer: Tokenizer, tokens: int) -> str:
    words: list[str] = []
    while len(tokenizer.encode(" ".join(words)).ids) < tokens:
        sentence = [rng.choice(EN_WORDS) for _ in range(rng.randint(8, 20))]
        words += [sentence[0].capitalize(), *sentence[1:-1], sentence[-1] + "."]
    return " ".join(words)


def chinese_chunk(rng: random.Random, tokenizer: Tokenizer, tokens: int) -> str:
    text = ""
    while len(tokenizer.encode(text).ids) < tokens:
        text += "".join(rng.choice(ZH_CHARS) for _ in range(rng.randint(8, 24))) + rng.choice(ZH_PUNCT)
    return text


def document_passages(paths: list[Path]) -> list[str]:
    """What ingestion embeds for these files (folders walked), with the default chunk settings."""
    settings = Settings()
    files = sorted(f for p in paths for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file())
    texts: list[str] = []
    for file in files:
        data = file.read_bytes()
        try:
            blocks = extract(data, detect_kind(data, file.name), name=file.name)
        except UnsupportedFile:
            continue
        passages = chunk(blocks, size=settings.chunk_tokens, overlap=settings.chunk_overlap)
        texts += [embedding_text(p.section, p.text) for p in passages]
    return texts


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chunks", type=int, default=1000, help="chunks per language")
    parser.add_argument("--tokens", type=int, default=200, help="word pieces per chunk, about")
    parser.add_argument("--precision", default="int8,fp32", help="comma-separated: int8, fp32")
    parser.add_argument("--threads", type=int, default=0, help="texts embedded at once; 0: all cores")
    parser.add_argument("--rounds", type=int, default=1, help="embed each set this many times, keep the best")
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--docs", nargs="*", type=Path, default=[], help="real files or folders to chunk")
    args = parser.parse_args()

    tokenizer = Tokenizer.from_file(str(minilm_dir() / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    rng = random.Random(args.seed)
    sets = {
        "en": [english_chunk(rng, tokenizer, args.tokens - 2) for _ in range(args.chunks)],
        "zh": [chinese_chunk(rng, tokenizer, args.tokens - 2) for _ in range(args.chunks)],
    }
    if args.docs:
        sets["docs"] = document_passages(args.docs)

    say(
        f"{'model':<24} {'set':<4} {'chunks':>6} {'pieces':>6} {'seconds':>8} {'CPU s':>7} {'chunks/s':>9} "
        f"{'tokens/s':>9} {'per CPU s':>9}"
    )
    for precision in args.precision.split(","):
        model = LocalMiniLM(threads=args.threads, precision=precision)  # type: ignore[arg-type]
        started = time.perf_counter()
        model.warm()
        built = time.perf_counter() - started
        for name, texts in sets.items():
            pieces = sum(min(len(e.ids), 256) for e in tokenizer.encode_batch(texts)) / len(texts)
            best: tuple[float, float] | None = None
            for _ in range(args.rounds):
                cpu, wall = time.process_time(), time.perf_counter()
                vectors = asyncio.run(model.embed(texts))
                took = (time.perf_counter() - wall, time.process_time() - cpu)
                best = took if best is None or took[0] < best[0] else best
            assert best is not None and vectors.shape == (len(texts), model.dim)
            seconds, cpu_seconds = best
            rate = len(texts) / seconds
            say(
                f"{model.model_id:<24} {name:<4} {len(texts):>6} {pieces:>6.0f} {seconds:>8.2f} "
                f"{cpu_seconds:>7.2f} {rate:>9.1f} {rate * pieces:>9.0f} {len(texts) / cpu_seconds:>9.1f}"
            )
        say(f"  ({model.model_id} built in {built:.2f} s; {model.threads} threads)")


if __name__ == "__main__":
    main()
