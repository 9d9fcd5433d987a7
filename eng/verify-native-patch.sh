#!/usr/bin/env bash
# Proves the package's native-loading targets work for a consuming app, in every output layout:
#   portable build      bin/<cfg>/net10.0/runtimes/linux-x64/native/libLibTorchSharp.so
#   RID-specific build  bin/<cfg>/net10.0/linux-x64/libLibTorchSharp.so
#   portable publish    <publish dir>/runtimes/linux-x64/native/libLibTorchSharp.so
#   RID-specific publish <publish dir>/libLibTorchSharp.so
# For each: the GLIBCXX_3.4.32 requirement is weak (readelf -V) and the app runs torch.ones(2).sum().
# Also: the build prints its message once and an incremental rebuild changes nothing; the NuGet cache copy is
# never modified; the opt-out property leaves the output copy as shipped.
# A throw-away console app in a temp folder imports the repo's targets and task as a package consumer gets them
# (task loaded in-process). Build servers are disabled so nothing keeps the repo's task assembly loaded afterwards.
# Usage: eng/verify-native-patch.sh [Release|Debug]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
config=${1:-Release}
version=GLIBCXX_3.4.32
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
command -v readelf >/dev/null || { echo "readelf (binutils) is required" >&2; exit 2; }

start=$SECONDS
work=$(mktemp -d "${TMPDIR:-/tmp}/adb-native-patch.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { printf '[%3ds] %s\n' $((SECONDS - start)) "$*"; }

# Flags of the Vernaux entry for $version: "WEAK" or "none".
flags_of() {
  readelf -V "$1" | awk -v v="$version" '$0 ~ "Name: " v " " { for (i = 1; i <= NF; i++) if ($i == "Flags:") { print $(i+1); exit } }'
}
expect_flags() { # file expected-flags
  [[ -f "$1" ]] || fail "missing $1"
  local got; got=$(flags_of "$1")
  [[ "$got" == "$2" ]] || fail "$1: $version flags are '$got', expected '$2'"
  step "ok: $version is $2 in ${1#"$work"/}"
}
expect_runs() { # command...
  local out; out=$("$@" 2>&1) || fail "'$*' failed: $out"
  [[ "$out" == "2" ]] || fail "'$*' printed '$out', expected 2"
  step "ok: app ran torch.ones(2).sum() = 2 ($*)"
}

step "building the MSBuild task"
dotnet build "$repo/src/AttnDreamBooth.Build/AttnDreamBooth.Build.csproj" -c "$config" -v q -nologo --disable-build-servers >/dev/null
task="$repo/src/AttnDreamBooth.Build/bin/$config/netstandard2.0/AttnDreamBooth.Build.dll"
[[ -f "$task" ]] || fail "task assembly not found at $task"

packages=${NUGET_PACKAGES:-$HOME/.nuget/packages}
cached="$packages/torchsharp/0.107.0/runtimes/linux-x64/native/libLibTorchSharp.so"
cache_sum_before=""
[[ -f "$cached" ]] && cache_sum_before=$(sha256sum "$cached" | cut -d' ' -f1)

make_app() { # dir
  mkdir -p "$1"
  cat >"$1/app.csproj" <<EOF
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <OutputType>Exe</OutputType>
    <TargetFramework>net10.0</TargetFramework>
    <Nullable>enable</Nullable>
    <ImplicitUsings>enable</ImplicitUsings>
    <AttnDreamBoothBuildTasksAssembly>$task</AttnDreamBoothBuildTasksAssembly>
  </PropertyGroup>
  <ItemGroup>
    <PackageReference Include="TorchSharp-cpu" Version="0.107.0" />
  </ItemGroup>
  <Import Project="$repo/src/AttnDreamBooth/build/AttnDreamBooth.targets" />
</Project>
EOF
  cat >"$1/Program.cs" <<'EOF'
using TorchSharp;
using var t = torch.ones(2);
Console.WriteLine(t.sum().item<float>());
EOF
}

app="$work/app"
make_app "$app"
out="$app/bin/$config/net10.0"

step "portable build"
log=$(dotnet build "$app" -c "$config" -nologo --disable-build-servers 2>&1) || fail "build failed: $log"
grep -q "AttnDreamBooth: marked the $version requirement of '$out/runtimes/linux-x64/native/libLibTorchSharp.so' weak" <<<"$log" \
  || fail "the build did not print the patch message: $log"
expect_flags "$out/runtimes/linux-x64/native/libLibTorchSharp.so" WEAK
expect_runs dotnet "$out/app.dll"

step "incremental rebuild (must be a no-op for the native copy)"
sum=$(sha256sum "$out/runtimes/linux-x64/native/libLibTorchSharp.so")
stamp=$(stat -c %Y "$out/runtimes/linux-x64/native/libLibTorchSharp.so")
log=$(dotnet build "$app" -c "$config" -nologo --disable-build-servers 2>&1) || fail "rebuild failed: $log"
grep -q "AttnDreamBooth: marked" <<<"$log" && fail "the incremental rebuild patched again: $log"
[[ "$(sha256sum "$out/runtimes/linux-x64/native/libLibTorchSharp.so")" == "$sum" ]] || fail "the rebuild changed the patched copy"
[[ "$(stat -c %Y "$out/runtimes/linux-x64/native/libLibTorchSharp.so")" == "$stamp" ]] || fail "the rebuild rewrote the patched copy"
step "ok: rebuild left the patched copy as it was"

step "portable publish"
log=$(dotnet publish "$app" -c "$config" -o "$work/publish-portable" -nologo --disable-build-servers 2>&1) || fail "portable publish failed: $log"
grep -q "AttnDreamBooth: marked the $version requirement of '$work/publish-portable/runtimes/linux-x64/native/libLibTorchSharp.so' weak" <<<"$log" \
  || fail "portable publish did not print the patch message: $log"
expect_flags "$work/publish-portable/runtimes/linux-x64/native/libLibTorchSharp.so" WEAK
expect_runs dotnet "$work/publish-portable/app.dll"

step "RID-specific build (-r linux-x64)"
log=$(dotnet build "$app" -c "$config" -r linux-x64 -nologo --disable-build-servers 2>&1) || fail "RID build failed: $log"
grep -q "AttnDreamBooth: marked the $version requirement of '$out/linux-x64/libLibTorchSharp.so' weak" <<<"$log" \
  || fail "the RID-specific build did not print the patch message: $log"
expect_flags "$out/linux-x64/libLibTorchSharp.so" WEAK
expect_runs "$out/linux-x64/app"

step "publish (-r linux-x64)"
log=$(dotnet publish "$app" -c "$config" -r linux-x64 -o "$work/publish" -nologo --disable-build-servers 2>&1) || fail "publish failed: $log"
grep -q "AttnDreamBooth: marked the $version requirement of '$work/publish/libLibTorchSharp.so' weak" <<<"$log" \
  || fail "publish did not print the patch message: $log"
expect_flags "$work/publish/libLibTorchSharp.so" WEAK
expect_runs "$work/publish/app"

step "opt-out (AttnDreamBoothPatchNativeLibraries=false)"
# Same project into a fresh output folder: the compile is up to date, the copy step starts from the package again.
optout="$work/optout"
log=$(dotnet build "$app" -c "$config" -o "$optout" -p:AttnDreamBoothPatchNativeLibraries=false -nologo --disable-build-servers 2>&1) \
  || fail "opt-out build failed: $log"
grep -q "AttnDreamBooth: marked" <<<"$log" && fail "the opt-out build patched: $log"
expect_flags "$optout/runtimes/linux-x64/native/libLibTorchSharp.so" none
if run=$(dotnet "$optout/app.dll" 2>&1); then
  step "note: the unpatched copy also loads here (this libstdc++ has $version)"
else
  grep -q "$version" <<<"$run" && step "note: the unpatched copy fails here as expected ($version not found)" \
    || step "note: the unpatched copy does not load here: $(head -n 1 <<<"$run")"
fi

step "NuGet cache copy"
[[ -f "$cached" ]] || fail "expected the package cache copy at $cached"
[[ -n "$cache_sum_before" && "$(sha256sum "$cached" | cut -d' ' -f1)" == "$cache_sum_before" ]] || fail "the NuGet cache copy changed"
expect_flags "$cached" none

step "all native-patch checks passed"
