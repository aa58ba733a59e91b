#!/usr/bin/env bash
# Apply main's branch protection with the GitHub CLI (docs/ci_cd.md, "Branch protection"):
# the required checks by their job names (test.yml's `pytest`, quality.yml's
# `lint-and-types`), branches up to date before merging, one approving review (stale
# approvals dismissed), linear history, no force pushes or deletions, rules for admins
# too. Release tags must be signed: a tag ruleset requires signatures on `v*`.
#
#   scripts/branch_protection.sh [owner/repo]      # default: the repository gh sees here
#   DRY_RUN=1 scripts/branch_protection.sh         # print the requests, send nothing
set -euo pipefail

repo="${1:-$(gh repo view --json nameWithOwner --jq .nameWithOwner)}"
branch="${BRANCH:-main}"

protection=$(cat <<'JSON'
{
  "required_status_checks": {"strict": true, "contexts": ["pytest", "lint-and-types"]},
  "enforce_admins": true,
  "required_pull_request_reviews": {
    "required_approving_review_count": 1,
    "dismiss_stale_reviews": true
  },
  "restrictions": null,
  "required_linear_history": true,
  "allow_force_pushes": false,
  "allow_deletions": false,
  "required_conversation_resolution": true
}
JSON
)

tag_ruleset=$(cat <<'JSON'
{
  "name": "signed release tags",
  "target": "tag",
  "enforcement": "active",
  "conditions": {"ref_name": {"include": ["refs/tags/v*"], "exclude": []}},
  "rules": [{"type": "required_signatures"}, {"type": "non_fast_forward"}, {"type": "deletion"}]
}
JSON
)

send() {
  local method=$1 path=$2 body=$3
  if [[ -n "${DRY_RUN:-}" ]]; then
    printf '%s %s\n%s\n' "$method" "$path" "$body"
    return
  fi
  gh api --method "$method" -H "Accept: application/vnd.github+json" "$path" --input - <<<"$body"
}

send PUT "repos/$repo/branches/$branch/protection" "$protection"
send POST "repos/$repo/rulesets" "$tag_ruleset"
echo "protected $repo:$branch; signed tags required for v*" >&2
