#!/usr/bin/env bash
# Build (or copy) every model listed in models/manifest.toml into .cache/models, offline, from
# the PyPI packages installed in .cache/venv by scripts/bootstrap.sh. Idempotent: a model whose
# file already matches the manifest's sha256 is left alone (a size+mtime stamp avoids re-hashing),
# so a second run takes well under a second. Exits non-zero with one line per problem.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${BRAINLOOP_MODELS:-$ROOT/.cache/models}
PY=$ROOT/.cache/venv/bin/python
MANIFEST=$ROOT/models/manifest.toml
mkdir -p "$OUT/.stamps"
log() { printf 'build-models: %s\n' "$*" >&2; }

want_sha() { # name -> sha256 from the manifest
  awk -v n="$1" '/^\[\[model\]\]/{m=0} $1=="name"{gsub(/"/,"",$3); m=($3==n)} m&&$1=="sha256"{gsub(/"/,"",$3); print $3}' "$MANIFEST"
}
stamp_of() { stat -c '%s %Y' "$1"; }
is_current() { # name file
  local name=$1 f=$OUT/$2 sha st
  [ -f "$f" ] || return 1
  sha=$(want_sha "$name")
  st="$sha $(stamp_of "$f")"
  if [ "$(cat "$OUT/.stamps/$name" 2>/dev/null)" = "$st" ]; then return 0; fi
  if [ "$(sha256sum "$f" | cut -d' ' -f1)" = "$sha" ]; then echo "$st" > "$OUT/.stamps/$name"; return 0; fi
  return 1
}
check() { # name file: after building, the file must match the manifest
  local name=$1 f=$OUT/$2 sha got
  sha=$(want_sha "$name")
  got=$(sha256sum "$f" | cut -d' ' -f1)
  if [ "$got" != "$sha" ]; then
    log "error: $f has sha256 $got but models/manifest.toml expects $sha (builder or package version changed?)"
    exit 1
  fi
  echo "$sha $(stamp_of "$f")" > "$OUT/.stamps/$name"
  log "built $name -> $f"
}
need_py() {
  [ -x "$PY" ] || { log "error: $PY missing: run scripts/bootstrap.sh first"; exit 1; }
}
SITE() { "$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'; }

if ! is_current vision vision.onnx; then
  need_py
  "$PY" scripts/models/build_vision.py "$OUT/vision.onnx.tmp" >&2
  mv "$OUT/vision.onnx.tmp" "$OUT/vision.onnx"
  check vision vision.onnx
fi
if ! is_current language language.onnx || ! is_current language-tokenizer language.tokenizer.json; then
  need_py
  "$PY" scripts/models/build_language.py "$OUT/language.onnx.tmp" "$OUT/language.tokenizer.json.tmp" >&2
  mv "$OUT/language.onnx.tmp" "$OUT/language.onnx"
  mv "$OUT/language.tokenizer.json.tmp" "$OUT/language.tokenizer.json"
  check language language.onnx
  check language-tokenizer language.tokenizer.json
fi
if ! is_current audition silero_vad.onnx; then
  need_py
  cp "$(SITE)/silero_vad/data/silero_vad.onnx" "$OUT/silero_vad.onnx.tmp"
  mv "$OUT/silero_vad.onnx.tmp" "$OUT/silero_vad.onnx"
  check audition silero_vad.onnx
fi
log "ok ($OUT)"
