using System.Globalization;
using System.Text;
using Microsoft.ML.Tokenizers;

namespace AttnDreamBooth.Text;

/// <summary>
/// The text clean-up CLIP prompts go through before BPE, as transformers' <c>CLIPTokenizer</c> performs it when
/// <c>ftfy</c> is not installed (the configuration the reference fixtures were produced with): its
/// <c>BasicTokenizer(do_lower_case=True, strip_accents=False, do_split_on_punc=False)</c>.
/// </summary>
/// <remarks>
/// Steps, per Unicode scalar value: drop U+0000, U+FFFD and every character of category C* except tab, CR and LF;
/// map tab, CR, LF and category Zs to a space; surround CJK ideographs with spaces; NFC; split on whitespace
/// (which after the previous steps also means U+2028 / U+2029); lower-case each piece as Python's <c>str.lower</c>
/// does (full mapping of U+0130, final sigma; accents kept); join the pieces with one space.
/// With ftfy installed the reference would instead apply <c>ftfy.fix_text</c> and collapse whitespace, which differs
/// only for unusual Unicode (mojibake repair, control characters, CJK spacing, NFC).
/// </remarks>
internal sealed class ClipTextCleaner : Normalizer
{
    /// <summary>The shared instance (the cleaner is stateless and thread-safe).</summary>
    public static ClipTextCleaner Instance { get; } = new();

    /// <inheritdoc />
    public override string Normalize(string original)
    {
        ArgumentNullException.ThrowIfNull(original);
        return Normalize(original.AsSpan());
    }

    /// <inheritdoc />
    public override string Normalize(ReadOnlySpan<char> original)
    {
        if (original.IsEmpty) return string.Empty;
        if (System.Text.Ascii.IsValid(original)) return NormalizeAscii(original);

        // Steps 1 and 2: drop control characters, map whitespace, space out CJK ideographs.
        var cleaned = new StringBuilder(original.Length + 8);
        foreach (Rune rune in EnumerateRunes(original))
        {
            int cp = rune.Value;
            if (cp == 0 || cp == 0xFFFD || IsControl(rune)) continue;
            if (IsCleanerWhitespace(rune)) cleaned.Append(' ');
            else if (IsCjkIdeograph(cp)) cleaned.Append(' ').Append(rune.ToString()).Append(' ');
            else cleaned.Append(rune.ToString());
        }

        // Step 3: NFC. The text holds no lone surrogates any more (they are category Cs and were dropped).
        string composed = cleaned.ToString().Normalize(NormalizationForm.FormC);

        // Steps 4-6: split on whitespace, lower-case each piece, re-join with single spaces.
        var result = new StringBuilder(composed.Length);
        int start = -1;
        for (int i = 0; i <= composed.Length; i++)
        {
            bool separator = i == composed.Length || IsPythonSplitWhitespace(composed[i]);
            if (!separator)
            {
                if (start < 0) start = i;
                continue;
            }
            if (start < 0) continue;
            if (result.Length > 0) result.Append(' ');
            PythonCase.AppendLower(result, composed.AsSpan(start, i - start));
            start = -1;
        }
        return result.ToString();
    }

    // The same steps for ASCII-only text (most prompts): NFC, CJK spacing and special casing cannot apply.
    private static string NormalizeAscii(ReadOnlySpan<char> text)
    {
        var result = new StringBuilder(text.Length);
        bool pendingSpace = false;
        foreach (char c in text)
        {
            if (c is ' ' or '\t' or '\n' or '\r')
            {
                pendingSpace = result.Length > 0;
                continue;
            }
            if (c < ' ' || c == '\u007F') continue;
            if (pendingSpace) result.Append(' ');
            pendingSpace = false;
            result.Append(c is >= 'A' and <= 'Z' ? (char)(c + 32) : c);
        }
        return result.ToString();
    }

    /// <summary>Enumerates scalar values; a lone surrogate comes back as itself (category Cs) so it can be dropped.</summary>
    internal static IEnumerable<Rune> EnumerateRunes(ReadOnlySpan<char> text)
    {
        var runes = new List<Rune>(text.Length);
        int i = 0;
        while (i < text.Length)
        {
            if (Rune.DecodeFromUtf16(text[i..], out Rune rune, out int used) == System.Buffers.OperationStatus.Done)
            {
                runes.Add(rune);
                i += used;
            }
            else
            {
                // Rune cannot hold a surrogate; U+FFFD is dropped by the cleaner exactly as a C* character would be.
                runes.Add(Rune.ReplacementChar);
                i += Math.Max(used, 1);
            }
        }
        return runes;
    }

    private static bool IsControl(Rune rune)
    {
        int cp = rune.Value;
        if (cp is '\t' or '\n' or '\r') return false;
        return Rune.GetUnicodeCategory(rune) switch
        {
            UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.Surrogate or
            UnicodeCategory.PrivateUse or UnicodeCategory.OtherNotAssigned => true,
            _ => false,
        };
    }

    private static bool IsCleanerWhitespace(Rune rune) =>
        rune.Value is ' ' or '\t' or '\n' or '\r' || Rune.GetUnicodeCategory(rune) == UnicodeCategory.SpaceSeparator;

    /// <summary>Python's <c>str.split()</c> separators that can survive the cleaning (the rest are C* or Zs).</summary>
    private static bool IsPythonSplitWhitespace(char c) => c is ' ' or '\u2028' or '\u2029';

    /// <summary>The "CJK Unified Ideographs" ranges of BERT's <c>_is_chinese_char</c>.</summary>
    internal static bool IsCjkIdeograph(int cp) =>
        (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
        (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
        (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}
