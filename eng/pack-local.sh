#!/usr/bin/env bash
# Packs AttnDreamBooth (and AttnDreamBooth.Shapes) from this clone into a local folder feed and prints the lines an
# app adds to use it. Until the package is on a public feed, this is the install path.
#
#   bash eng/pack-local.sh [--out DIR] [--version VERSION]
#
# --out      the feed folder (default: artifacts/local-feed in this clone)
# --version  the package version (default: <Version in Directory.Build.props>-local.<UTC timestamp>). Every pack gets a
#            new version by default because NuGet caches a package by id and version: re-packing changed code under the
#            same version would leave apps restoring the old copy from ~/.nuget/packages.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
feed="$repo/artifacts/local-feed"
version=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out) feed=$2; shift 2 ;;
    --version) version=$2; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "pack-local.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done
if [ -z "$version" ]; then
  base=$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' "$repo/Directory.Build.props" | head -n1)
  version="$base-local.$(date -u +%Y%m%d%H%M%S)"
fi
mkdir -p "$feed"
feed=$(cd "$feed" && pwd)
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

for project in AttnDreamBooth AttnDreamBooth.Shapes; do
  echo "packing $project $version" >&2
  # Quiet unless it fails: the output below is what the user needs to read.
  if ! log=$(dotnet pack "$repo/src/$project/$project.csproj" -c Release -o "$feed" -p:Version="$version" -nologo -v q 2>&1); then
    echo "$log" >&2
    exit 1
  fi
done

cat <<EOF
Packed AttnDreamBooth $version and AttnDreamBooth.Shapes $version into $feed

In your app's folder (run 'dotnet new nugetconfig' first if it has no nuget.config):
  dotnet nuget add source "$feed" --name attndreambooth-local --configfile nuget.config
  dotnet add package AttnDreamBooth --version $version
EOF
