#!/usr/bin/env bash
# Does a change keep training bitwise? `configs/finetune.py:tiny` (fresh init) for 12 steps
# on 1 and on 8 simulated CPU devices, at each revision, on the same capped corpora; prints
# the sha256 of each run's final params (digest.py). A refactor must leave each device
# count's digest unchanged (1 and 8 devices differ from each other: reduction order).
#   experiments/refactor_check/run.sh OUT REV [REV ...]     # REV: a commit, or . (this checkout)
#   experiments/refactor_check/run.sh /tmp/check 2966bbe .
# CORPORA=DIR reuses a build_corpora output (else OUT/corpora, built by this checkout with
# small caps: ~1 min); STEPS=N changes the 12.
set -euo pipefail
OUT=${1:?usage: run.sh OUT REV [REV ...]}; shift
[ $# -ge 1 ] || { echo 'usage: run.sh OUT REV [REV ...]' >&2; exit 2; }
ROOT=$(git rev-parse --show-toplevel)
PY=${PYTHON:-$ROOT/.venv/bin/python}
STEPS=${STEPS:-12}
export JAX_PLATFORMS=cpu
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
CORPORA=${CORPORA:-$OUT/corpora}
if [ ! -f "$CORPORA/.built" ]; then
  (cd "$ROOT" && $PY -m gemini_embed.data.build_corpora --out="$CORPORA" --install=false \
      --max_rows=2000 --max_dev=50 --max_man_pages=40 > "$OUT/corpora.log" 2>&1)
  touch "$CORPORA/.built"
fi
runs=(); trees=()
# The revisions' worktrees go when the script ends, however it ends (none stays registered).
trap 'for t in "${trees[@]}"; do git -C "$ROOT" worktree remove --force "$t"; done' EXIT
for rev in "$@"; do
  if [ "$rev" = . ]; then src=$ROOT; tag=checkout; else
    tag=$(git -C "$ROOT" rev-parse --short "$rev"); src=$OUT/src-$tag
    [ -d "$src" ] || git -C "$ROOT" worktree add --detach -q "$src" "$rev"
    trees+=("$src")
  fi
  for n in 1 8; do
    w=$OUT/runs/$tag-d$n; rm -rf "$w"; mkdir -p "$OUT/runs"
    # `python -m` from the revision's tree imports that revision's package (cwd first on sys.path)
    (cd "$src" && XLA_FLAGS=--xla_force_host_platform_device_count=$n $PY -m gemini_embed.train \
        --config=configs/finetune.py:tiny,init_from= --config.total_steps="$STEPS" \
        --config.data.root="$CORPORA" --workdir="$w" > "$w.log" 2>&1) \
      || { echo "$tag on $n devices failed: $w.log" >&2; tail -5 "$w.log" >&2; exit 1; }
    runs+=("$w")
  done
done
$PY "$ROOT/experiments/refactor_check/digest.py" "${runs[@]}" 2>/dev/null
