"""Search terms: lowercased Latin words without stopwords, CJK runs as overlapping bigrams."""

from __future__ import annotations

import time

from chatstream.rag.terms import search_terms, terms_text


def test_latin_words_are_lowercased_without_stopwords() -> None:
    assert search_terms("How does the Vector Index work, and what is HNSW?") == [
        "vector",
        "index",
        "work",
        "hnsw",
    ]


def test_words_split_on_anything_that_is_not_a_letter_or_digit() -> None:
    terms = ["snake", "case", "e", "mail", "v2", "10", "gpt4o"]
    assert search_terms("snake_case, e-mail; v2.10 GPT4o") == terms


def test_full_width_and_compatibility_forms_are_normalized() -> None:
    assert search_terms("ＰＹＴＨＯＮ３ ﬁle Ⅻ") == ["python3", "file", "xii"]  # noqa: RUF001


def test_cjk_runs_become_overlapping_bigrams_and_a_lone_character_stays() -> None:
    assert search_terms("全文检索") == ["全文", "文检", "检索"]
    assert search_terms("我，爱你") == ["我", "爱你"]  # noqa: RUF001


def test_mixed_scripts_are_split_where_the_script_changes() -> None:
    assert search_terms("用Python写向量检索，用pgvector存储。") == [  # noqa: RUF001
        "用",
        "python",
        "写向",
        "向量",
        "量检",
        "检索",
        "用",
        "pgvector",
        "存储",
    ]


def test_japanese_and_korean_are_cjk_too() -> None:
    assert search_terms("カタカナ 한국어") == ["カタ", "タカ", "カナ", "한국", "국어"]


def test_repeated_terms_are_kept_for_term_frequency() -> None:
    assert search_terms("index the index") == ["index", "index"]


def test_a_question_shares_its_terms_with_the_passage_that_answers_it() -> None:
    passage = set(search_terms("数据库使用向量索引来加速相似度检索。"))
    assert {"向量", "索引", "检索"} <= passage
    assert set(search_terms("向量索引")) <= passage


def test_terms_text_joins_the_terms_with_spaces() -> None:
    assert terms_text("The Quick 向量检索") == "quick 向量 量检 检索"
    assert terms_text("the of and ，。") == ""  # noqa: RUF001


def test_terms_of_pathological_text_take_linear_time() -> None:
    started = time.perf_counter()
    assert len(search_terms("\u5b57" * 300_000)) == 299_999  # one CJK run: its bigrams
    assert search_terms("a" * 1_000_000 + "s") == ["a" * 1_000_000]  # one word, its plural folded
    assert search_terms("." * 1_000_000 + "\ufdfa" * 10_000)  # NFKC expands U+FDFA to 18 letters
    assert time.perf_counter() - started < 2
