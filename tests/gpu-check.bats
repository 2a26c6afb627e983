#!/usr/bin/env bats
# tools/gpu-check.sh without a GPU (NVIDIA_SMI names no program, so this holds on a GPU machine
# too): it says what it skipped and why, writes the summary, and exits 77, never 0, so a script
# cannot take "nothing validated" for a pass.
# run.sh: release build only (nothing here runs the programs of $GT_BIN)
load helper

ROOT="$BATS_TEST_DIRNAME/.."

@test "tools/gpu-check.sh without a GPU: every stage SKIP with the reason, a summary, exit 77" {
    NVIDIA_SMI=/nonexistent/nvidia-smi run "$ROOT/tools/gpu-check.sh" --out "$T/gc"
    [ "$status" -eq 77 ] || { echo "exit $status: $output"; return 1; }
    for s in build parity memcheck racecheck initcheck bench; do
        echo "$output" | grep -qE "^$s +SKIP no GPU$" || { echo "no SKIP line for $s: $output"; return 1; }
    done
    [[ "$output" == *"GPU:     none (/nonexistent/nvidia-smi not found or lists no GPU)"* ]]
    [[ "$output" == *"result:  SKIP (exit 77): no GPU, nothing validated"* ]]
    diff <(echo "$output") "$T/gc/summary.txt"
}

@test "tools/gpu-check.sh: --help describes the stages and exit codes; an unknown option is exit 2" {
    run "$ROOT/tools/gpu-check.sh" --help
    [ "$status" -eq 0 ]
    [[ "$output" == *"77 no GPU"* ]] && [[ "$output" == *"compute-sanitizer"* ]]
    run "$ROOT/tools/gpu-check.sh" --bogus
    [ "$status" -eq 2 ] && [[ "$output" == *"unknown option --bogus"* ]]
}
