using System;
using System.IO;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

namespace AttnDreamBooth.Build
{
    /// <summary>
    /// MSBuild task: marks a symbol-version requirement weak in each given ELF file of the build or publish
    /// output (see <see cref="ElfVersionPatcher"/>). Files that are absent, not ELF, or lack the requirement are
    /// left alone; running it twice changes nothing the second time.
    /// </summary>
    public sealed class MakeElfVersionWeak : Task
    {
        /// <summary>The output copies to patch (never package-cache files).</summary>
        [Required]
        public ITaskItem[] Files { get; set; } = Array.Empty<ITaskItem>();

        /// <summary>The version requirement to weaken, e.g. <c>GLIBCXX_3.4.32</c>.</summary>
        [Required]
        public string VersionName { get; set; } = string.Empty;

        /// <inheritdoc />
        public override bool Execute()
        {
            foreach (ITaskItem item in Files)
            {
                string path = item.GetMetadata("FullPath");
                if (!File.Exists(path)) continue;
                ElfPatchOutcome outcome;
                try
                {
                    outcome = ElfVersionPatcher.MakeVersionWeak(path, VersionName);
                }
                catch (IOException ex)
                {
                    Log.LogWarning(null, "ADB0001", null, path, 0, 0, 0, 0,
                        "AttnDreamBooth: could not mark {0} weak in '{1}': {2}", VersionName, path, ex.Message);
                    continue;
                }
                switch (outcome)
                {
                    case ElfPatchOutcome.Patched:
                        Log.LogMessage(MessageImportance.High,
                            "AttnDreamBooth: marked the {0} requirement of '{1}' weak so it loads with older libstdc++ (opt out: AttnDreamBoothPatchNativeLibraries=false).",
                            VersionName, path);
                        break;
                    case ElfPatchOutcome.AlreadyWeak:
                        Log.LogMessage(MessageImportance.Low, "AttnDreamBooth: {0} in '{1}' is already weak.", VersionName, path);
                        break;
                    default:
                        Log.LogMessage(MessageImportance.Normal, "AttnDreamBooth: '{0}' needs no patch ({1}).", path, outcome);
                        break;
                }
            }
            return !Log.HasLoggedErrors;
        }
    }
}
