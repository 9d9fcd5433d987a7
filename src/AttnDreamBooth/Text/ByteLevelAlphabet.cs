namespace AttnDreamBooth.Text;

/// <summary>GPT-2's reversible byte ↔ character alphabet that CLIP's vocabulary is written in: printable Latin-1
/// bytes stand for themselves, the other 68 bytes are shifted to U+0100 and up.</summary>
internal static class ByteLevelAlphabet
{
    private static readonly char[] ByteToChar = Build();
    private static readonly Dictionary<char, byte> CharToByte = ByteToChar.Select((c, b) => (c, b)).ToDictionary(p => p.c, p => (byte)p.b);

    public static char Encode(byte value) => ByteToChar[value];

    public static bool TryDecode(char c, out byte value) => CharToByte.TryGetValue(c, out value);

    private static char[] Build()
    {
        var map = new char[256];
        int shifted = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            map[b] = printable ? (char)b : (char)(256 + shifted++);
        }
        return map;
    }
}
