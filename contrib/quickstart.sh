#!/usr/bin/env bash
# Build bitnetd and run the main job once:
#   - build (installing the Debian build dependencies if needed),
#   - use MODEL=/path/to/ggml-model-i2_s.gguf, or make a small model with bitnet-mkmodel,
#   - stream a completion of PROMPT (default below) through the engine.
# Environment: MODEL, PROMPT, N (tokens to generate, default 64), THREADS.
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
./bench/bitnet-generate -m "$model" -p "$prompt" -n "${N:-64}" ${THREADS:+--threads "$THREADS"}
echo
