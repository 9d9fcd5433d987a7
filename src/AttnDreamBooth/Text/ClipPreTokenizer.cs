using System.Globalization;
using System.Text;
using Microsoft.ML.Tokenizers;

namespace AttnDreamBooth.Text;

/// <summary>
/// Splits cleaned CLIP text into BPE words exactly as CLIP's pattern
/// <c>&lt;\|startoftext\|&gt;|&lt;\|endoftext\|&gt;|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+</c>
/// (case-insensitive) does in Python.
/// </summary>
/// <remarks>
/// The scan walks Unicode scalar values instead of using <see cref="System.Text.RegularExpressions.Regex"/>: .NET's
/// regex engine sees a character outside the Basic Multilingual Plane as two surrogates, which are neither letters
/// nor digits, so mathematical letters or some scripts would land in the punctuation alternative.
/// </remarks>
internal sealed class ClipPreTokenizer : PreTokenizer
{
    private static readonly string[] Literals = ["<|startoftext|>", "<|endoftext|>"];
    private static readonly string[] Contractions = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"];

    /// <summary>The shared instance (stateless, thread-safe).</summary>
    public static ClipPreTokenizer Instance { get; } = new();

    /// <inheritdoc />
    public override IEnumerable<(int Offset, int Length)> PreTokenize(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return Split(text.AsSpan());
    }

    /// <inheritdoc />
    public override IEnumerable<(int Offset, int Length)> PreTokenize(ReadOnlySpan<char> text) => Split(text);

    /// <summary>The (offset, length) of every word of <paramref name="text"/>, in UTF-16 units.</summary>
    public static List<(int Offset, int Length)> Split(ReadOnlySpan<char> text)
    {
        var words = new List<(int, int)>();
        int i = 0;
        while (i < text.Length)
        {
            Rune rune = RuneAt(text, i, out int width);
            if (IsWhiteSpace(rune) || IsUnmatchable(rune))
            {
                i += width;
                continue;
            }

            int matched = MatchAny(text, i, Literals);
            if (matched == 0 && text[i] == '\'') matched = MatchAny(text, i, Contractions);
            if (matched == 0)
            {
                var kind = KindOf(rune);
                if (kind == CharKind.Number)
                {
                    matched = width;
                }
                else
                {
                    int j = i + width;
                    while (j < text.Length)
                    {
                        Rune next = RuneAt(text, j, out int w);
                        if (IsWhiteSpace(next) || IsUnmatchable(next) || KindOf(next) != kind) break;
                        j += w;
                    }
                    matched = j - i;
                }
            }
            words.Add((i, matched));
            i += matched;
        }
        return words;
    }

    private enum CharKind { Letter, Number, Other }

    private static CharKind KindOf(Rune rune) => Rune.GetUnicodeCategory(rune) switch
    {
        UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter or
        UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter => CharKind.Letter,
        UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber => CharKind.Number,
        _ => CharKind.Other,
    };

    /// <summary>U+0345 COMBINING GREEK YPOGEGRAMMENI is a mark whose case variants are letters (Ι, ι): under
    /// IGNORECASE Python's <c>regex</c> matches it with neither <c>[\p{L}]</c> nor <c>[^\s\p{L}\p{N}]</c>, so it is
    /// skipped and ends the word it follows. (A scan of every code point found no other such character.)</summary>
    private static bool IsUnmatchable(Rune rune) => rune.Value == 0x0345;

    /// <summary>The Unicode White_Space property (what <c>\s</c> means in Python's <c>regex</c> module).</summary>
    private static bool IsWhiteSpace(Rune rune) => rune.Value switch
    {
        >= 0x09 and <= 0x0D => true,
        0x20 or 0x85 or 0xA0 or 0x1680 or 0x2028 or 0x2029 or 0x202F or 0x205F or 0x3000 => true,
        >= 0x2000 and <= 0x200A => true,
        _ => false,
    };

    private static Rune RuneAt(ReadOnlySpan<char> text, int index, out int width)
    {
        if (Rune.DecodeFromUtf16(text[index..], out Rune rune, out width) != System.Buffers.OperationStatus.Done)
        {
            // A lone surrogate cannot come out of the cleaner; treat it as one "other" character if a caller passes one.
            width = 1;
            return Rune.ReplacementChar;
        }
        return rune;
    }

    private static int MatchAny(ReadOnlySpan<char> text, int index, string[] candidates)
    {
        foreach (string candidate in candidates)
        {
            if (index + candidate.Length > text.Length) continue;
            bool equal = true;
            for (int k = 0; k < candidate.Length && equal; k++) equal = Fold(text[index + k]) == candidate[k];
            if (equal) return candidate.Length;
        }
        return 0;
    }

    // Simple case folding of the characters that occur in the literals (IGNORECASE): ASCII letters and the long s.
    private static char Fold(char c) => c switch
    {
        >= 'A' and <= 'Z' => (char)(c + 32),
        '\u017F' => 's',
        _ => c,
    };
}
