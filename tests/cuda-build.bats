#!/usr/bin/env bats
# What the real CUDA build (make CUDA=1) puts in the programs: machine code (SASS) for every
# architecture the Makefile lists, and the PTX of the newest one, which the driver JIT-compiles
# for a GPU newer than all of them; without PTX such a GPU cannot run a single kernel. The second
# test reads build/release-cuda1 (what make check builds when nvcc is installed) with cuobjdump,
# and skips, saying why, where either is missing.
# run.sh: release build only (nothing here runs the programs of $GT_BIN)
load helper

ROOT="$BATS_TEST_DIRNAME/.."
CUDA_BIN="$ROOT/build/release-cuda1/bin"

default_nvarch() { make -s -C "$ROOT" -qp CUDA=1 NVCC=/bin/true 2>/dev/null | sed -n 's/^NVARCH = //p'; }

@test "the default NVARCH: sm_80, sm_89, sm_90 machine code and compute_90 PTX" {
    a=$(default_nvarch)
    [ -n "$a" ] || { echo "make -qp CUDA=1 shows no NVARCH"; return 1; }
    for sm in 80 89 90; do
        [[ "$a" == *"arch=compute_$sm,code=sm_$sm"* ]] || { echo "no sm_$sm in: $a"; return 1; }
    done
    [[ "$a" == *"arch=compute_90,code=compute_90"* ]] || { echo "no compute_90 PTX in: $a"; return 1; }
}

@test "make CUDA=1: gan-step embeds every listed architecture's machine code and the newest's PTX" {
    [ -x "$CUDA_BIN/gan-step" ] || skip "no CUDA=1 build in build/release-cuda1 (make CUDA=1 BIN=build/release-cuda1/bin all)"
    cuobjdump=$(command -v cuobjdump || echo "${CUDA_HOME:-/usr/local/cuda}/bin/cuobjdump")
    [ -x "$cuobjdump" ] || skip "cuobjdump not installed (the CUDA toolkit's cuda-cuobjdump package)"
    stamp=$(cat "$ROOT/build/release-cuda1/.nvarch" 2>/dev/null)
    [ "$stamp" = "$(default_nvarch)" ] || skip "build/release-cuda1 was built with NVARCH=$stamp, not the default"
    run "$cuobjdump" --list-elf "$CUDA_BIN/gan-step"
    [ "$status" -eq 0 ]
    for sm in 80 89 90; do
        [[ "$output" == *".sm_$sm.cubin"* ]] || { echo "no sm_$sm machine code: $output"; return 1; }
    done
    run "$cuobjdump" --list-ptx "$CUDA_BIN/gan-step"
    [ "$status" -eq 0 ]
    [[ "$output" == *".sm_90.ptx"* ]] || { echo "no compute_90 PTX: $output"; return 1; }
}
