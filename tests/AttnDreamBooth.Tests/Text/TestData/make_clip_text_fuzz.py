"""Writes clip_text_fuzz.json: random strings of awkward Unicode with what CLIP's text handling makes of them in
Python, for ClipTextCleaner / ClipPreTokenizer tests.

The reference fixtures were tokenized by transformers' slow CLIPTokenizer without ftfy (Python 3.11, Unicode 14).
This script restates that path independently: BasicTokenizer(do_lower_case=True, strip_accents=False,
do_split_on_punc=False) cleaning, then CLIP's word pattern with the `regex` module (IGNORECASE).
Run with Python 3.11 (unicodedata 14.0) and the `regex` package: python3 make_clip_text_fuzz.py
"""
import json
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
    cases = []
    for _ in range(1500):
        text = "".join(rng.choice(pool) for _ in range(rng.randint(0, 14)))
        cleaned = clean(text)
        cases.append({"text": text, "cleaned": cleaned, "words": PATTERN.findall(cleaned)})
    with open("clip_text_fuzz.json", "w", encoding="ascii") as f:
        json.dump({"produced_with": f"Python {__import__('sys').version.split()[0]}, unicodedata {unicodedata.unidata_version}, "
                                    f"regex {regex.__version__}", "cases": cases}, f, ensure_ascii=True, separators=(",", ":"))


if __name__ == "__main__":
    main()
