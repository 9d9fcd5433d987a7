using System;
using System.IO;
using System.Text;

namespace AttnDreamBooth.Build
{
    /// <summary>What <see cref="ElfVersionPatcher.MakeVersionWeak"/> did to a file.</summary>
    public enum ElfPatchOutcome
    {
        /// <summary>The version requirement was strong and is now weak; the file was rewritten.</summary>
        Patched,
        /// <summary>The requirement was already weak; the file was not touched.</summary>
        AlreadyWeak,
        /// <summary>The file is a 64-bit little-endian ELF without that version requirement; not touched.</summary>
        RequirementNotFound,
        /// <summary>The file is not a 64-bit little-endian ELF with sane section headers; not touched.</summary>
        NotApplicable,
    }

    /// <summary>
    /// Marks one symbol-version requirement (a Vernaux entry of <c>.gnu.version_r</c>) of an ELF shared
    /// library as weak (<c>VER_FLG_WEAK</c>), so the dynamic loader accepts a runtime library that lacks
    /// that version as long as no symbol bound to it is actually resolved.
    /// </summary>
    /// <remarks>
    /// TorchSharp 0.107.0's <c>libLibTorchSharp.so</c> names <c>GLIBCXX_3.4.32</c> (GCC 13) only for the marker
    /// symbol <c>std::ios_base_library_init</c>, which is never called; with a GCC 12 libstdc++ (Debian 12,
    /// Ubuntu 22.04) the strong requirement makes <c>dlopen</c> fail. Only the two flag bytes of that entry change.
    /// </remarks>
    public static class ElfVersionPatcher
    {
        /// <summary>The <c>VER_FLG_WEAK</c> bit of <c>vna_flags</c>.</summary>
        public const ushort VerFlagWeak = 0x2;

        private const uint ShtGnuVerneed = 0x6ffffffe;
        private const long MaxFileBytes = 1L << 30;

        /// <summary>Finds the Vernaux entry named <paramref name="versionName"/> and returns the file offset of its
        /// <c>vna_flags</c> field, or -1 when the ELF has no such requirement.</summary>
        /// <exception cref="InvalidDataException">The bytes are not a well-formed 64-bit little-endian ELF.</exception>
        public static long FindVernauxFlagsOffset(byte[] elf, string versionName)
        {
            if (elf is null) throw new ArgumentNullException(nameof(elf));
            if (string.IsNullOrEmpty(versionName)) throw new ArgumentException("A version name is required.", nameof(versionName));
            if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
                throw new InvalidDataException("not an ELF file (bad magic)");
            if (elf[4] != 2) throw new InvalidDataException("not a 64-bit ELF (EI_CLASS != ELFCLASS64)");
            if (elf[5] != 1) throw new InvalidDataException("not a little-endian ELF (EI_DATA != ELFDATA2LSB)");

            ulong shoff = U64(elf, 0x28);
            ushort shentsize = U16(elf, 0x3A);
            ushort shnum = U16(elf, 0x3C);
            if (shoff == 0 || shnum == 0) throw new InvalidDataException("the ELF has no section headers");
            if (shentsize < 64) throw new InvalidDataException($"section header size {shentsize} is below 64");
            CheckRange(elf, shoff, (ulong)shentsize * shnum, "section header table");

            for (int i = 0; i < shnum; i++)
            {
                long sh = (long)shoff + (long)i * shentsize;
                if (U32(elf, sh + 4) != ShtGnuVerneed) continue;

                ulong secOffset = U64(elf, sh + 0x18);
                ulong secSize = U64(elf, sh + 0x20);
                uint link = U32(elf, sh + 0x28);
                uint count = U32(elf, sh + 0x2C);
                CheckRange(elf, secOffset, secSize, ".gnu.version_r");
                if (link >= shnum) throw new InvalidDataException($".gnu.version_r links to section {link}, beyond {shnum} sections");
                long strSh = (long)shoff + (long)link * shentsize;
                ulong strOffset = U64(elf, strSh + 0x18);
                ulong strSize = U64(elf, strSh + 0x20);
                CheckRange(elf, strOffset, strSize, ".dynstr");

                ulong verneed = secOffset;
                for (uint n = 0; n < count; n++)
                {
                    CheckRange(elf, verneed, 16, "Verneed entry");
                    ushort auxCount = U16(elf, (long)verneed + 2);
                    uint auxOffset = U32(elf, (long)verneed + 8);
                    uint next = U32(elf, (long)verneed + 12);
                    ulong aux = verneed + auxOffset;
                    for (int a = 0; a < auxCount; a++)
                    {
                        CheckRange(elf, aux, 16, "Vernaux entry");
                        uint nameOffset = U32(elf, (long)aux + 8);
                        if (ReadName(elf, strOffset, strSize, nameOffset) == versionName) return (long)aux + 4;
                        uint auxNext = U32(elf, (long)aux + 12);
                        if (auxNext == 0) break;
                        aux += auxNext;
                    }
                    if (next == 0) break;
                    verneed += next;
                }
            }
            return -1;
        }

        /// <summary>Sets <c>VER_FLG_WEAK</c> on the requirement <paramref name="versionName"/> of the ELF file at
        /// <paramref name="path"/>. The file is replaced atomically (temp file + rename), which also breaks any
        /// hard link to a package cache, so the source of a copied file is never modified.</summary>
        public static ElfPatchOutcome MakeVersionWeak(string path, string versionName)
        {
            var info = new FileInfo(path);
            if (!info.Exists) throw new FileNotFoundException($"'{path}' does not exist.", path);
            if (info.Length > MaxFileBytes || info.Length < 64) return ElfPatchOutcome.NotApplicable;
            byte[] bytes = File.ReadAllBytes(path);
            long flagsOffset;
            try
            {
                flagsOffset = FindVernauxFlagsOffset(bytes, versionName);
            }
            catch (InvalidDataException)
            {
                return ElfPatchOutcome.NotApplicable;
            }
            if (flagsOffset < 0) return ElfPatchOutcome.RequirementNotFound;
            ushort flags = U16(bytes, flagsOffset);
            if ((flags & VerFlagWeak) != 0) return ElfPatchOutcome.AlreadyWeak;
            flags |= VerFlagWeak;
            bytes[flagsOffset] = (byte)(flags & 0xff);
            bytes[flagsOffset + 1] = (byte)(flags >> 8);

            string temp = path + ".weak-" + Guid.NewGuid().ToString("N").Substring(0, 8) + ".tmp";
            try
            {
                File.WriteAllBytes(temp, bytes);
                try { File.SetLastWriteTimeUtc(temp, info.LastWriteTimeUtc); } catch (IOException) { }
                if (File.Exists(path)) File.Replace(temp, path, null);
                else File.Move(temp, path);
            }
            finally
            {
                if (File.Exists(temp)) File.Delete(temp);
            }
            return ElfPatchOutcome.Patched;
        }

        private static string ReadName(byte[] elf, ulong tableOffset, ulong tableSize, uint nameOffset)
        {
            if (nameOffset >= tableSize) throw new InvalidDataException($"string offset {nameOffset} is beyond .dynstr ({tableSize} bytes)");
            long start = (long)(tableOffset + nameOffset);
            long end = (long)(tableOffset + tableSize);
            long stop = start;
            while (stop < end && elf[stop] != 0) stop++;
            if (stop == end) throw new InvalidDataException("unterminated string in .dynstr");
            return Encoding.ASCII.GetString(elf, (int)start, (int)(stop - start));
        }

        private static void CheckRange(byte[] elf, ulong offset, ulong size, string what)
        {
            if (offset > (ulong)elf.Length || size > (ulong)elf.Length - offset)
                throw new InvalidDataException($"{what} at offset {offset} (+{size} bytes) lies outside the file ({elf.Length} bytes)");
        }

        private static ushort U16(byte[] b, long o) => (ushort)(b[o] | (b[o + 1] << 8));
        private static uint U32(byte[] b, long o) => (uint)(b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24));
        private static ulong U64(byte[] b, long o) => U32(b, o) | ((ulong)U32(b, o + 4) << 32);
    }
}
