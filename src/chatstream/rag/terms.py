"""Search terms for full-text indexing, the same for stored passages and for questions.

Full-text engines split text on spaces, which leaves Chinese or Japanese as one long "word" that no
question ever matches. Each CJK run therefore becomes overlapping character bigrams, the usual way
to index CJK text without a dictionary, and Latin words are lowercased and stripped of stopwords,
and English plurals are folded ("tyres" finds "tyre"): a light stemmer, the same on both sides.
"""

from __future__ import annotations

import re
import unicodedata

# Letters of the CJK scripts: Han (with extensions and compatibility ideographs), Hiragana, Katakana,
# Bopomofo, Hangul. Used by chunking too, where CJK punctuation is added to the set.
CJK_LETTERS = (
    "\u1100-\u11ff\u3040-\u309f\u30a0-\u30ff\u3100-\u312f\u3130-\u318f\u31a0-\u31bf\u31f0-\u31ff"
    "\u3400-\u4dbf\u4e00-\u9fff\ua960-\ua97f\uac00-\ud7af\ud7b0-\ud7ff\uf900-\ufaff"
    "\uff66-\uff9f\uffa0-\uffdc\U00020000-\U0003134f"
)

_TERM = re.compile(rf"(?P<cjk>[{CJK_LETTERS}]+)|(?P<word>[^\W_{CJK_LETTERS}]+)")

_STOPWORDS = """
    a about above after again all am an and any are as at be because been before being below between both
    but by can could did do does doing down during each few for from further had has have having he her
    here hers him his how i if in into is it its itself just me more most my no nor not of off on once
    only or other our ours out over own s same she should so some such t than that the their theirs them
    then there these they this those through to too under until up very was we were what when where which
    while who whom why will with would you your yours
"""
STOPWORDS = frozenset(_STOPWORDS.split())


def search_terms(text: str) -> list[str]:
    """The terms of `text` in order, duplicates kept (term frequency matters to ranking)."""
    terms: list[str] = []
    for match in _TERM.finditer(unicodedata.normalize("NFKC", text).lower()):
        if (run := match["cjk"]) is not None:
            if len(run) == 1:
                terms.append(run)
            else:
                terms.extend(run[i : i + 2] for i in range(len(run) - 1))
        elif (word := match["word"]) not in STOPWORDS:
            terms.append(singular(word))
    return terms


def singular(word: str) -> str:
    """A plural's singular by the regular rules ("boxes" -> "box", "cities" -> "city"), else the word."""
    if len(word) <= 3 or not word.endswith("s") or word.endswith(("ss", "us", "is")) or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "sses", "zes")):
        return word[:-2]
    return word[:-1]


_LETTER = re.compile(r"[^\W\d_]")
_CJK_LETTER = re.compile(f"[{CJK_LETTERS}]")


def cjk_share(text: str) -> float:
    """The share of the letters in `text` that are CJK (0.0 for a text without letters)."""
    letters = len(_LETTER.findall(text))
    return len(_CJK_LETTER.findall(text)) / letters if letters else 0.0


def terms_text(text: str) -> str:
    """The terms joined by spaces: what goes into a full-text column or query."""
    return " ".join(search_terms(text))
