using System.Globalization;
using System.Text;

namespace AttnDreamBooth.Text;

/// <summary>Lower-casing with the two differences between Python's <c>str.lower</c> and a per-character simple
/// mapping: U+0130 becomes "i" + U+0307, and a capital sigma at the end of a word becomes final sigma.</summary>
internal static class PythonCase
{
    public static void AppendLower(StringBuilder output, ReadOnlySpan<char> word)
    {
        var runes = ClipTextCleaner.EnumerateRunes(word).ToArray();
        for (int i = 0; i < runes.Length; i++)
        {
            Rune rune = runes[i];
            if (rune.Value == 0x0130)
            {
                output.Append('i').Append('\u0307');
            }
            else if (rune.Value == 0x03A3)
            {
                output.Append(IsFinalSigma(runes, i) ? '\u03C2' : '\u03C3');
            }
            else
            {
                output.Append(Rune.ToLowerInvariant(rune).ToString());
            }
        }
    }

    // Final_Sigma (Unicode 3.13): a cased letter before it (skipping case-ignorables) and none after it.
    private static bool IsFinalSigma(Rune[] runes, int index)
    {
        int j = index - 1;
        while (j >= 0 && IsCaseIgnorable(runes[j])) j--;
        if (j < 0 || !IsCased(runes[j])) return false;
        j = index + 1;
        while (j < runes.Length && IsCaseIgnorable(runes[j])) j++;
        return j == runes.Length || !IsCased(runes[j]);
    }

    // Approximations of the Cased / Case_Ignorable properties by general category (.NET exposes no properties).
    private static bool IsCased(Rune rune) => Rune.GetUnicodeCategory(rune) is
        UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter;

    private static bool IsCaseIgnorable(Rune rune) =>
        rune.Value is '\'' or '.' or ':' or '^' or '`' or 0x00B7 or 0x2018 or 0x2019 or 0x2024 or 0x2027 ||
        Rune.GetUnicodeCategory(rune) is UnicodeCategory.NonSpacingMark or UnicodeCategory.EnclosingMark or
            UnicodeCategory.Format or UnicodeCategory.ModifierLetter or UnicodeCategory.ModifierSymbol;
}
