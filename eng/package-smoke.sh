#!/usr/bin/env bash
# The README's install path, end to end: eng/pack-local.sh packs the library into a folder feed, then a fresh console
# app runs exactly the commands the README's Install section and that script's output give, and renders one image
# from the tiny fixture pipeline through the installed package. On Debian 12 this also proves the native-loading fix
# travels with the package.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
# A private package cache: the smoke test must neither see stale copies of this package nor pollute the user's cache.
export NUGET_PACKAGES="$work/packages"
torchsharp=0.107.0

# The commands below are the README's; fail loudly if the README stops giving them.
for documented in "bash eng/pack-local.sh" "dotnet new nugetconfig" "dotnet add package TorchSharp-cpu --version $torchsharp"; do
  grep -qF -- "$documented" "$repo/README.md" || { echo "README.md no longer documents '$documented'; update this script with it"; exit 1; }
done

echo "== bash eng/pack-local.sh"
instructions=$(bash "$repo/eng/pack-local.sh" --out "$work/feed")
echo "$instructions"
version=$(sed -n 's/^Packed AttnDreamBooth \([^ ]*\) and .*/\1/p' <<<"$instructions")
[ -n "$version" ] || { echo "pack-local.sh did not say which version it packed"; exit 1; }
ls -l "$work/feed"
for file in "AttnDreamBooth.$version.nupkg" "AttnDreamBooth.$version.snupkg" "AttnDreamBooth.Shapes.$version.nupkg"; do
  test -f "$work/feed/$file" || { echo "the feed lacks $file"; exit 1; }
done
contents=$(unzip -l "$work/feed/AttnDreamBooth.$version.nupkg")
for entry in buildTransitive/AttnDreamBooth.targets build/AttnDreamBooth.targets tasks/netstandard2.0/AttnDreamBooth.Build.dll \
             lib/net10.0/AttnDreamBooth.dll lib/net10.0/AttnDreamBooth.xml README.md; do
  grep -q " $entry\$" <<<"$contents" || { echo "package lacks $entry"; exit 1; }
done
nuspec=$(unzip -p "$work/feed/AttnDreamBooth.$version.nupkg" AttnDreamBooth.nuspec)
grep -q '<license type="expression">MIT</license>' <<<"$nuspec" || { echo "nuspec lacks the MIT licence expression"; exit 1; }
grep -q '<repository ' <<<"$nuspec" || { echo "nuspec lacks repository metadata"; exit 1; }
grep -q "id=\"TorchSharp\" version=\"$torchsharp\"" <<<"$nuspec" || { echo "nuspec must depend on TorchSharp (no libtorch flavour)"; exit 1; }
if grep -qiE 'id="(TorchSharp-cpu|libtorch|AttnDreamBooth.Build)' <<<"$nuspec"; then echo "nuspec must not depend on a libtorch flavour or the build task"; exit 1; fi
shapes_nuspec=$(unzip -p "$work/feed/AttnDreamBooth.Shapes.$version.nupkg" AttnDreamBooth.Shapes.nuspec)
grep -q "id=\"AttnDreamBooth\" version=\"$version\"" <<<"$shapes_nuspec" || { echo "AttnDreamBooth.Shapes must depend on AttnDreamBooth $version"; exit 1; }
echo "package layout and nuspec: OK"

echo "== fresh console app, the documented steps"
mkdir -p "$work/app"
cd "$work/app"
dotnet new console -n SmokeApp -o . --framework net10.0 >/dev/null
dotnet new nugetconfig >/dev/null
# The lines pack-local.sh printed for the user, run as printed.
steps=$(grep -E '^  dotnet ' <<<"$instructions" | sed 's/^  //')
[ "$(wc -l <<<"$steps")" -eq 2 ] || { echo "pack-local.sh should print exactly two commands, printed:"; echo "$steps"; exit 1; }
while IFS= read -r step; do
  echo "\$ $step"
  eval "$step" >/dev/null
done <<<"$steps"
dotnet add package TorchSharp-cpu --version "$torchsharp" >/dev/null
cp "$repo/samples/PackageSmoke/Program.cs.txt" Program.cs

echo "== build and run"
build_log=$(dotnet build -c Release -nologo 2>&1) || { echo "$build_log"; exit 1; }
grep "AttnDreamBooth: marked" <<<"$build_log"
native=$(find bin/Release -path '*runtimes/linux-x64/native/libLibTorchSharp.so' | head -n1)
# Captured first: with pipefail, `readelf | grep -q` fails whenever grep exits before readelf has written everything.
versions=$(readelf -V "$native")
grep -q "Name: GLIBCXX_3.4.32  Flags: WEAK" <<<"$versions" || { echo "the package's targets did not patch $native"; exit 1; }
dotnet run -c Release --no-build -- "$repo/tests/fixtures/tiny-sd1/pipeline" "$work/smoke.png"
test -s "$work/smoke.png"
echo "package smoke: OK"
