#!/usr/bin/env bash
# PokeWatch version: pyproject.toml's [project] version and the Bento's `version` label in
# bentofile.yaml move together, and a release is an annotated tag vX.Y.Z on the commit that
# sets them. Nothing is pushed.
#
#   scripts/version.sh current                  print the version (X.Y.Z)
#   scripts/version.sh bump major|minor|patch   next version: commit + annotated tag
#   scripts/version.sh set X.Y.Z                that version: commit + annotated tag
#   scripts/version.sh changelog [vX.Y.Z]       Markdown list of the commits since the
#                                               version tag before it (default: HEAD)
#
# `bump` and `set` refuse a dirty work tree, a version that is not X.Y.Z, the current
# version, and a tag that already exists. Push with: git push --follow-tags
set -euo pipefail

ROOT=$(git rev-parse --show-toplevel)
PYPROJECT="$ROOT/pyproject.toml"
BENTOFILE="$ROOT/bentofile.yaml"
SEMVER='^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$'

die() {
  echo "version.sh: $*" >&2
  exit 1
}

current() {
  # The first `version = "..."` line is [project]'s (the table comes first).
  local version
  version=$(sed -n 's/^version = "\([^"]*\)"$/\1/p' "$PYPROJECT" | head -n 1)
  [[ -n "$version" ]] || die "no version = \"...\" line in $PYPROJECT"
  echo "$version"
}

set_version() {
  local new=$1 old
  [[ "$new" =~ $SEMVER ]] || die "'$new' is not a version X.Y.Z"
  old=$(current)
  [[ "$new" != "$old" ]] || die "the version is already $new"
  [[ -z "$(git -C "$ROOT" status --porcelain)" ]] ||
    die "the work tree has uncommitted changes; commit or stash them first"
  ! git -C "$ROOT" rev-parse -q --verify "refs/tags/v$new" >/dev/null ||
    die "tag v$new already exists"
  grep -q '^  version: ' "$BENTOFILE" || die "no labels.version in $BENTOFILE"

  sed -i "0,/^version = \"$old\"\$/s//version = \"$new\"/" "$PYPROJECT"
  sed -i "s/^  version: \"[^\"]*\"/  version: \"$new\"/" "$BENTOFILE"
  [[ "$(current)" == "$new" ]] || die "could not update $PYPROJECT"
  grep -q "^  version: \"$new\"" "$BENTOFILE" || die "could not update $BENTOFILE"

  git -C "$ROOT" commit --quiet -m "Release v$new" -- "$PYPROJECT" "$BENTOFILE"
  git -C "$ROOT" tag -a "v$new" -m "PokeWatch v$new"
  echo "v$new"
}

bump() {
  local part=$1 major minor patch
  IFS=. read -r major minor patch <<<"$(current)"
  case "$part" in
    major) set_version "$((major + 1)).0.0" ;;
    minor) set_version "$major.$((minor + 1)).0" ;;
    patch) set_version "$major.$minor.$((patch + 1))" ;;
    *) die "bump needs major, minor or patch, not '$part'" ;;
  esac
}

changelog() {
  local until=${1:-HEAD} previous range
  git -C "$ROOT" rev-parse -q --verify "$until^{commit}" >/dev/null || die "no such ref '$until'"
  # The nearest version tag strictly before `until` (none: the whole history).
  previous=$(git -C "$ROOT" describe --tags --abbrev=0 --match 'v[0-9]*.[0-9]*.[0-9]*' \
    "$until^" 2>/dev/null || true)
  range=${previous:+$previous..}$until
  echo "## Changes${previous:+ since $previous}"
  echo
  git -C "$ROOT" log --no-merges --format='- %s (%h)' "$range"
}

case "${1:-}" in
  current) current ;;
  changelog) changelog "${2:-}" ;;
  bump) bump "${2:-}" ;;
  set) set_version "${2:-}" ;;
  *)
    sed -n '6,10s/^# //p' "$0" >&2
    exit 2
    ;;
esac
