#!/usr/bin/env bash
# Proves `dotnet add package AttnDreamBooth` works: packs the library into a local folder feed, creates a fresh
# console app in a temp directory, adds AttnDreamBooth from that feed plus TorchSharp-cpu, and renders one image
# from the tiny fixture pipeline. On Debian 12 this also proves the native-loading fix travels with the package.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
# A private package cache: the smoke test must neither see stale copies of this package nor pollute the user's cache.
export NUGET_PACKAGES="$work/packages"
version=$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' "$repo/Directory.Build.props" | head -n1)

echo "== pack AttnDreamBooth $version"
dotnet pack "$repo/src/AttnDreamBooth/AttnDreamBooth.csproj" -c Release -o "$work/feed" -v q -nologo
ls -l "$work/feed"
test -f "$work/feed/AttnDreamBooth.$version.nupkg"
test -f "$work/feed/AttnDreamBooth.$version.snupkg"
contents=$(unzip -l "$work/feed/AttnDreamBooth.$version.nupkg")
for entry in buildTransitive/AttnDreamBooth.targets build/AttnDreamBooth.targets tasks/netstandard2.0/AttnDreamBooth.Build.dll \
             lib/net10.0/AttnDreamBooth.dll lib/net10.0/AttnDreamBooth.xml README.md; do
  grep -q " $entry\$" <<<"$contents" || { echo "package lacks $entry"; exit 1; }
done
nuspec=$(unzip -p "$work/feed/AttnDreamBooth.$version.nupkg" AttnDreamBooth.nuspec)
grep -q '<license type="expression">MIT</license>' <<<"$nuspec" || { echo "nuspec lacks the MIT licence expression"; exit 1; }
grep -q '<repository ' <<<"$nuspec" || { echo "nuspec lacks repository metadata"; exit 1; }
grep -q 'id="TorchSharp" version="0.107.0"' <<<"$nuspec" || { echo "nuspec must depend on TorchSharp (no libtorch flavour)"; exit 1; }
if grep -qiE 'id="(TorchSharp-cpu|libtorch|AttnDreamBooth.Build)' <<<"$nuspec"; then echo "nuspec must not depend on a libtorch flavour or the build task"; exit 1; fi
echo "package layout and nuspec: OK"

echo "== fresh console app"
mkdir -p "$work/app"
cd "$work/app"
cat > nuget.config <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="local" value="$work/feed" />
    <add key="nuget.org" value="https://api.nuget.org/v3/index.json" />
  </packageSources>
</configuration>
XML
dotnet new console -n SmokeApp -o . --framework net10.0 >/dev/null
dotnet add package AttnDreamBooth --version "$version" >/dev/null
dotnet add package TorchSharp-cpu --version 0.107.0 >/dev/null
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
