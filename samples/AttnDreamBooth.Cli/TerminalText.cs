using System.Globalization;
using System.Text;

namespace AttnDreamBooth.Cli;

/// <summary>Makes untrusted text (paths, file names, tokens, prompts, exception messages) safe to print: a file named
/// <c>ESC]0;title BEL</c> would otherwise retitle the terminal, and <c>ESC[31m</c> recolour or hide what follows.</summary>
internal static class TerminalText
{
    /// <summary>Replaces every C0 control (U+0000–U+001F), DEL (U+007F), C1 control (U+0080–U+009F) and bidirectional
    /// override or isolate (U+202A–U+202E, U+2066–U+2069) by a visible escape such as <c>\x1B</c> or <c>\u202E</c>.
    /// With <paramref name="keepNewlines"/>, line feeds stay (multi-line error reports); carriage returns never do.</summary>
    public static string Safe(string? text, bool keepNewlines = false)
    {
        if (string.IsNullOrEmpty(text)) return text ?? "";
        StringBuilder? result = null;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            bool unsafeChar = c < 0x20 || c is >= '\u007F' and <= '\u009F' || c is >= '\u202A' and <= '\u202E' || c is >= '\u2066' and <= '\u2069';
            if (unsafeChar && keepNewlines && c == '\n') unsafeChar = false;
            if (!unsafeChar)
            {
                result?.Append(c);
                continue;
            }
            result ??= new StringBuilder(text, 0, i, text.Length + 16);
            result.Append(c <= 0xFF ? $"\\x{((int)c).ToString("X2", CultureInfo.InvariantCulture)}" : $"\\u{((int)c).ToString("X4", CultureInfo.InvariantCulture)}");
        }
        return result?.ToString() ?? text;
    }
}
