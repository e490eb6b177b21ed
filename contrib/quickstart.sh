#!/usr/bin/env bash
# The main job, end to end, with one command:
#   build (installing the Debian build dependencies if needed) ->
#   MODEL=/path/to/ggml-model-i2_s.gguf, or a small model made by bitnet-mkmodel ->
#   bitnetd on a private socket -> bitnetctl run streams a completion -> daemon stopped.
# Environment: MODEL, PROMPT, N (tokens to generate, default 64), THREADS, CHAT=1 (apply
# the model's chat format; the default is a raw completion).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
"$src/contrib/install-deps.sh"
cd "$src"
if [ ! -x configure ] || [ configure.ac -nt configure ]; then autoreconf -fi >/dev/null; fi
mkdir -p build
cd build
[ -f Makefile ] || "$src/configure" -q
make -s -j2
prompt=${PROMPT:-"The capital of France is"}
model=${MODEL:-}
if [ -z "$model" ]; then
    model="$src/build/models/small.gguf"
    vocab=()
    for d in "${BITNET_TEST_DATA:-}" "$src/../shared/data"; do
        [ -n "$d" ] && [ -f "$d/llama3/tokenizer.json" ] && { vocab=(--vocab "$d/llama3/tokenizer.json"); break; }
    done
    mkdir -p models
    [ -f "$model" ] || ./contrib/bitnet-mkmodel --preset small "${vocab[@]}" --seed 1 --out "$model"
    echo "quickstart: no MODEL given; using the generated model $model (random weights: the text is noise)" >&2
fi
[ -f "$model" ] || { echo "quickstart: MODEL=$model: no such file" >&2; exit 1; }

run_dir=$(mktemp -d "${TMPDIR:-/tmp}/bitnetd-quickstart.XXXXXX")
sock="$run_dir/bitnetd.sock"
ctl=(./client/bitnetctl --socket "$sock")
./daemon/bitnetd --socket "$sock" --instance "quickstart$$" --model "quickstart=$model" \
    ${THREADS:+--threads "$THREADS"} --log-level warn &
daemon=$!
cleanup() {
    "${ctl[@]}" unload quickstart >/dev/null 2>&1 || true # frees its shared memory
    "${ctl[@]}" stop >/dev/null 2>&1 || kill "$daemon" 2>/dev/null || true
    wait "$daemon" 2>/dev/null || true
    rm -rf "$run_dir"
}
trap cleanup EXIT
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
"${ctl[@]}" load quickstart
raw=(--raw)
[ "${CHAT:-0}" = 1 ] && raw=()
"${ctl[@]}" run quickstart "$prompt" "${raw[@]}" -n "${N:-64}" --temperature 0
echo
