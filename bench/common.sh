# Sourced by the benchmark scripts that run the PyTorch peer (bench/run.sh, bench/train.sh):
# the peer's packages and a description of the machine and the build for the report.

# Checks that the peer script exists and installs the peer's Debian packages when missing.
# They are installed here only, never by `make deps`: PyTorch is a benchmark peer, not a
# dependency.
bench_need_peer() {
    local peer=$1
    [ -f "$peer" ] || { log "peer script not found: $peer (set POLITUNE_SHARED)"; exit 1; }
    local need=() p sudo=
    for p in python3-torch libopenblas0-pthread; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
    [ ${#need[@]} -gt 0 ] || return 0
    log "installing the peer's Debian packages: ${need[*]}"
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}"
}

# Sets CPU, NCPU, BLASV (the OpenBLAS package version) and COMMIT (noting uncommitted changes
# to src/ and bench/).
bench_describe() {
    CPU=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)
    NCPU=$(nproc)
    BLASV=$(dpkg-query -W -f '${Version}' libopenblas0-pthread 2>/dev/null || echo '?')
    COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo '?')
    git diff --quiet HEAD -- src bench 2>/dev/null || COMMIT="$COMMIT (with uncommitted changes)"
}

# The OpenBLAS core type for this CPU, from the flags in /proc/cpuinfo (or the file given):
# SKYLAKEX only where avx512f is listed (on an AVX2-only CPU it kills the process), HASWELL
# where avx2 and fma are (the kernels OpenBLAS picks for Haswell and Zen; Debian's PyTorch
# would otherwise fall back to a generic core inside its process), and nothing otherwise, for
# OpenBLAS to choose. Machines differ from session to session: detect, never hard-code.
# tests/test_bench.c checks it.
bench_coretype() {
    local flags
    flags=" $(grep -m1 '^flags' "${1:-/proc/cpuinfo}" 2>/dev/null | cut -d: -f2) "
    case "$flags" in
    *" avx512f "*) echo SKYLAKEX ;;
    *" avx2 "*) case "$flags" in *" fma "*) echo HASWELL ;; *) echo ;; esac ;;
    *) echo ;;
    esac
}

# Runs a command with OPENBLAS_CORETYPE=$CORETYPE, or with the variable unset when CORETYPE is
# empty (OpenBLAS chooses).
with_coretype() {
    if [ -n "${CORETYPE:-}" ]; then OPENBLAS_CORETYPE=$CORETYPE "$@"; else env -u OPENBLAS_CORETYPE "$@"; fi
}
