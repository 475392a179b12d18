"""One search index for the English and the Japanese pages of the site (a Sphinx extension).

Sphinx picks one search language per build. English splits words at spaces and stems them (Porter);
Japanese has no spaces, so a sentence would be indexed as one "word" and 「自己注意」 would never be found.
This extension replaces the English search language with one that does both:
- runs of Japanese characters are cut into words by Sphinx's own TinySegmenter port
  (``sphinx.search.ja.DefaultSplitter``), kept unstemmed; every other word is stemmed as in English;
- the browser cuts the query the same way: the segmenter's tables are written into the page's search
  script (``splitQuery``), so the index and the query agree word for word. No network, no extra package.
"""

from __future__ import annotations

import json
import re
import string

from sphinx.search.en import SearchEnglish
from sphinx.search.ja import DefaultSplitter

JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff66-\uff9f]")
JAPANESE_JS = r"/[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff66-\uff9f]/u"


def _tables() -> dict:
    return {name: getattr(DefaultSplitter, name) for name in dir(DefaultSplitter)
            if name.endswith("__") and not name.startswith("_") and name != "BIAS__"}


def splitter_js() -> str:
    """``splitQuery`` for searchtools.js: the same cuts as :meth:`SearchEnglishJapanese.split`."""
    patterns = [[pattern.pattern, value] for pattern, value in DefaultSplitter.patterns_.items()]
    return string.Template("""
const _jaTables = $tables;
const _jaTypes = $patterns.map(([p, v]) => [new RegExp("^" + p, "u"), v]);
const _jaRe = $japanese;
const _jaType = (c) => { for (const [p, v] of _jaTypes) if (p.test(c)) return v; return "O"; };
const _jaScore = (table, key) => _jaTables[table][key] || 0;
const _jaSegment = (input) => {
  if (!input) return [];
  const chars = Array.from(input);
  const seg = ["B3", "B2", "B1", ...chars, "E1", "E2", "E3"];
  const ctype = ["O", "O", "O", ...chars.map(_jaType), "O", "O", "O"];
  const result = [];
  let word = seg[3], p1 = "U", p2 = "U", p3 = "U";
  for (let i = 4; i < seg.length - 3; i++) {
    const [w1, w2, w3, w4, w5, w6] = [seg[i-3], seg[i-2], seg[i-1], seg[i], seg[i+1], seg[i+2]];
    const [c1, c2, c3, c4, c5, c6] = [ctype[i-3], ctype[i-2], ctype[i-1], ctype[i], ctype[i+1], ctype[i+2]];
    let score = $bias;
    score += _jaScore("UP1__", p1) + _jaScore("UP2__", p2) + _jaScore("UP3__", p3);
    score += _jaScore("BP1__", p1 + p2) + _jaScore("BP2__", p2 + p3);
    score += _jaScore("UW1__", w1) + _jaScore("UW2__", w2) + _jaScore("UW3__", w3);
    score += _jaScore("UW4__", w4) + _jaScore("UW5__", w5) + _jaScore("UW6__", w6);
    score += _jaScore("BW1__", w2 + w3) + _jaScore("BW2__", w3 + w4) + _jaScore("BW3__", w4 + w5);
    score += _jaScore("TW1__", w1 + w2 + w3) + _jaScore("TW2__", w2 + w3 + w4);
    score += _jaScore("TW3__", w3 + w4 + w5) + _jaScore("TW4__", w4 + w5 + w6);
    score += _jaScore("UC1__", c1) + _jaScore("UC2__", c2) + _jaScore("UC3__", c3);
    score += _jaScore("UC4__", c4) + _jaScore("UC5__", c5) + _jaScore("UC6__", c6);
    score += _jaScore("BC1__", c2 + c3) + _jaScore("BC2__", c3 + c4) + _jaScore("BC3__", c4 + c5);
    score += _jaScore("TC1__", c1 + c2 + c3) + _jaScore("TC2__", c2 + c3 + c4);
    score += _jaScore("TC3__", c3 + c4 + c5) + _jaScore("TC4__", c4 + c5 + c6);
    score += _jaScore("UQ1__", p1 + c1) + _jaScore("UQ2__", p2 + c2) + _jaScore("UQ1__", p3 + c3);  // UQ1 twice, as Sphinx
    score += _jaScore("BQ1__", p2 + c2 + c3) + _jaScore("BQ2__", p2 + c3 + c4);
    score += _jaScore("BQ3__", p3 + c2 + c3) + _jaScore("BQ4__", p3 + c3 + c4);
    score += _jaScore("TQ1__", p2 + c1 + c2 + c3) + _jaScore("TQ2__", p2 + c2 + c3 + c4);
    score += _jaScore("TQ3__", p3 + c1 + c2 + c3) + _jaScore("TQ4__", p3 + c2 + c3 + c4);
    let p = "O";
    if (score > 0) { result.push(word.trim()); word = ""; p = "B"; }
    p1 = p2; p2 = p3; p3 = p;
    word += seg[i];
  }
  result.push(word.trim());
  return result;
};
var splitQuery = (query) => {
  const words = [];
  for (const run of query.split(/[^\\p{Letter}\\p{Number}_\\p{Emoji_Presentation}]+/gu)) {
    if (!run) continue;
    if (!_jaRe.test(run)) { words.push(run); continue; }
    // one-character Japanese words (mostly particles) are not indexed: leave them out of the query too
    const parts = _jaSegment(run).filter((w) => w);
    const kept = parts.filter((w) => !_jaRe.test(w) || Array.from(w).length > 1);
    words.push(...(kept.length ? kept : parts));
  }
  return words;
};
""").substitute(tables=json.dumps(_tables(), ensure_ascii=False), patterns=json.dumps(patterns, ensure_ascii=False),
                  japanese=JAPANESE_JS, bias=DefaultSplitter.BIAS__)


class SearchEnglishJapanese(SearchEnglish):
    """English search (Porter stemming) that also cuts Japanese runs into words."""

    lang = "en"
    language_name = "English"
    js_splitter_code = splitter_js()
    js_stemmer_code = SearchEnglish.js_stemmer_code.replace("var Stemmer = function", "var PorterStemmer = function") + """
var Stemmer = function() {
  const porter = new PorterStemmer();
  this.stemWord = (w) => (/[\\u3040-\\u30ff\\u3400-\\u4dbf\\u4e00-\\u9fff\\uff66-\\uff9f]/u.test(w) ? w : porter.stemWord(w));
};
"""

    def init(self, options: dict[str, str]) -> None:
        super().init(options)
        self.splitter = DefaultSplitter(options)

    def split(self, input: str) -> list[str]:
        words = []
        for run in self._word_re.findall(input):
            if JAPANESE.search(run):
                words.extend(word for word in self.splitter.split(run) if word)
            else:
                words.append(run)
        return words

    def stem(self, word: str) -> str:
        return word if JAPANESE.search(word) else super().stem(word)

    def word_filter(self, word: str) -> bool:
        if JAPANESE.search(word):
            return len(word) > 1  # as Sphinx's Japanese search: single characters are mostly particles
        return super().word_filter(word)


class SearchJapaneseEnglish(SearchEnglishJapanese):
    """The same index for the Japanese site (built with ``language = "ja"``): its pages keep English names and code."""

    lang = "ja"
    language_name = "Japanese"


def setup(app):
    app.add_search_language(SearchEnglishJapanese)
    app.add_search_language(SearchJapaneseEnglish)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
