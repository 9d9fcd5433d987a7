"""Writes clip_text_fuzz.json: random strings of awkward Unicode with what CLIP's text handling makes of them in
Python, for ClipTextCleaner / ClipPreTokenizer tests.

The reference fixtures were tokenized by transformers' slow CLIPTokenizer without ftfy (Python 3.11, Unicode 14).
This script restates that path independently: BasicTokenizer(do_lower_case=True, strip_accents=False,
do_split_on_punc=False) cleaning, then CLIP's word pattern with the `regex` module (IGNORECASE).
It also gives the ids (no BOS/EOS) with tests/fixtures/tiny-sd1's vocabulary, using CLIP's rank-ordered BPE merge loop.
Run with Python 3.11 (unicodedata 14.0) and the `regex` package: python3 make_clip_text_fuzz.py
"""
import json
import os
import random
import unicodedata

import regex

PATTERN = regex.compile(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
                        regex.IGNORECASE)


def is_whitespace(c):
    return c in " \t\n\r" or unicodedata.category(c) == "Zs"


def is_control(c):
    return c not in "\t\n\r" and unicodedata.category(c).startswith("C")


def is_cjk(cp):
    return any(lo <= cp <= hi for lo, hi in [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
                                             (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)])


def clean(text):
    kept = "".join(" " if is_whitespace(c) else c for c in text if ord(c) not in (0, 0xFFFD) and not is_control(c))
    spaced = "".join(f" {c} " if is_cjk(ord(c)) else c for c in kept)
    words = [w.lower() for w in unicodedata.normalize("NFC", spaced).strip().split()]
    return " ".join(" ".join(words).split())


def byte_alphabet():
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table, shifted = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + shifted)
            shifted += 1
    return table


class ClipIds:
    """Token ids the way CLIPTokenizer computes them (SD 1.x folder: the special tokens are the two CLIP literals)."""

    def __init__(self, folder):
        with open(os.path.join(folder, "vocab.json"), encoding="utf-8") as f:
            self.vocab = json.load(f)
        with open(os.path.join(folder, "merges.txt"), encoding="utf-8") as f:
            merges = [tuple(line.split()) for line in f.read().strip().split("\n")[1:49152 - 256 - 2 + 1]]
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.alphabet = byte_alphabet()
        self.specials = ["<|startoftext|>", "<|endoftext|>"]

    def bpe(self, token):
        if token in self.specials:
            return [token]
        word = list(token[:-1]) + [token[-1] + "</w>"]
        while len(word) > 1:
            best = min(zip(word, word[1:]), key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            merged, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        return word

    def ids(self, text):
        pieces = regex.split("(" + "|".join(regex.escape(s) for s in self.specials) + ")", text)
        out = []
        for piece in pieces:
            if piece in self.specials:
                out.append(self.vocab[piece])
                continue
            for word in PATTERN.findall(clean(piece)):
                mapped = "".join(self.alphabet[b] for b in word.encode("utf-8"))
                out.extend(self.vocab[t] for t in self.bpe(mapped))
        return out


def main():
    rng = random.Random(1234)
    pool = [chr(c) for c in range(0x20, 0x7F)] * 3
    pool += list("\t\n\r\x0b\x0c\x00\x07\x1c\x1f\x7f\x85\xa0\u1680\u2000\u2009\u200a\u200b\u200c\u200d\u2028\u2029"
                 "\u202f\u205f\u3000\ufeff\u00ad\ufffd")
    pool += [chr(c) for c in range(0xA1, 0x180)]
    pool += list("ΣσςΑΒΓΔΩάέήίϊΐİıŞşĞğẞßǅǄǆﬁﬀÅΩKſ")
    pool += [chr(c) for c in range(0x300, 0x370)] + ["\u0345"] * 20 + [chr(c) for c in range(0x1F00, 0x1FFF)]
    pool += list("東京の夜景猫犬中文字こんにちはカタカナ한국어ﾊﾝｶｸ豈更車丽")
    pool += [chr(c) for c in [0xF900, 0xFA0E, 0x3400, 0x2F800, 0x20000, 0x2A700, 0x1D400, 0x1D41A, 0x1D7CE, 0x1F600,
                              0x1F431, 0x1F3A9, 0x2764, 0xFE0F, 0x1F1FA, 0x1F1F8, 0x10400, 0x10428, 0x1F44D, 0x1F3FD,
                              0x200D, 0xE000, 0xF8FF, 0x0378, 0x1C90, 0x1CBA, 0x10D0, 0x13A0, 0xAB70, 0x0900, 0x093F,
                              0x0915, 0x0E01, 0x0E31]]
    pool += list("½²³¼①Ⅻ٣०൧")
    pool += ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'ſ", "<|endoftext|>", "<|STARTOFTEXT|>", "<|endofteXt|>"] * 2
    here = os.path.dirname(os.path.abspath(__file__))
    ids = ClipIds(os.path.join(here, "..", "..", "..", "fixtures", "tiny-sd1", "pipeline", "tokenizer"))
    cases = []
    for _ in range(1500):
        text = "".join(rng.choice(pool) for _ in range(rng.randint(0, 14)))
        cleaned = clean(text)
        cases.append({"text": text, "cleaned": cleaned, "words": PATTERN.findall(cleaned), "sd1_ids": ids.ids(text)})
    with open(os.path.join(here, "clip_text_fuzz.json"), "w", encoding="ascii") as f:
        json.dump({"produced_with": f"Python {__import__('sys').version.split()[0]}, unicodedata {unicodedata.unidata_version}, "
                                    f"regex {regex.__version__}", "cases": cases}, f, ensure_ascii=True, separators=(",", ":"))


if __name__ == "__main__":
    main()
