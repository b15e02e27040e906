#!/usr/bin/env bash
# Sets up the Python test oracles (tools/oracles/requirements.txt, and llama-cpp-python built
# from source) in a virtual environment: $POLITUNE_ORACLE_VENV, default
# $HOME/.cache/politune/oracle-venv, the place tests/main.c's pt_test_python() looks.
# Idempotent: a second run with everything installed returns at once. A failure leaves the
# suite runnable: the tests that need a missing oracle print why and count as skipped.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${POLITUNE_ORACLE_VENV:-$HOME/.cache/politune/oracle-venv}
py=$venv/bin/python
stamp=$venv/.politune-oracles
want=$(cat "$here/requirements.txt" "$0" | sha256sum | cut -c1-16)

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$py" -c 'import torch, transformers, peft, trl, gguf, llama_cpp' 2>/dev/null; then
    echo "oracles: ready in $venv"
    exit 0
fi
t0=$(date +%s)
echo "oracles: installing into $venv (torch, transformers, peft, trl, gguf, llama-cpp-python)"
[ -x "$py" ] || python3 -m venv "$venv" || { echo "oracles: cannot create the venv $venv (python3 -m venv failed); oracle tests will be skipped"; exit 0; }
"$py" -m pip install -q --disable-pip-version-check -r "$here/requirements.txt" ||
    { echo "oracles: pip install -r $here/requirements.txt failed; oracle tests will be skipped"; exit 0; }
# llama-cpp-python compiles llama.cpp: CPU only, native instructions, no downloads at run time.
CMAKE_ARGS="-DGGML_NATIVE=ON -DGGML_CUDA=OFF -DLLAMA_CURL=OFF" CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
    "$py" -m pip install -q --disable-pip-version-check llama-cpp-python==0.3.36 ||
    { echo "oracles: building llama-cpp-python failed; the llama.cpp tests will be skipped"; exit 0; }
echo "$want" > "$stamp"
echo "oracles: installed in $(( $(date +%s) - t0 )) s"
