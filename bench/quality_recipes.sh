#!/usr/bin/env bash
# quality_recipes.sh: GAN recipes compared at an equal time budget on Fashion-MNIST. Each
# recipe (the list below) is a gan-init command line and a gan-step command line; gan-step runs
# for BUDGET seconds (then SIGINT: it finishes its step and writes the checkpoint), and
# bench/quality.sh scores the result (FD in the classifier's features and in pixels, against
# the test images) and draws its grid. Writes OUT/quality.md (a markdown table) and, for
# recipe NAME, OUT/NAME/{model-0.st,model.st,log.tsv,grid.png}.
#
#   bash bench/quality_recipes.sh [NAME...]          # the named recipes, or all of them
#   BUDGET=300 OUT=build/quality bash bench/quality_recipes.sh
#
# Environment: BUDGET (seconds of gan-step per recipe, default 300), CLOCK (what BUDGET counts:
# wall, elapsed time, the default; or cpu, the process's CPU time over all its threads, which a
# shared machine's load does not shrink), JOBS (recipes trained at once, default 1; with
# CLOCK=cpu THREADS=1 JOBS=2 a 2-core machine trains two recipes at a time, each on one core),
# OUT (default build/quality), THREADS (gan-step's, 0: all cores), DEVICE (gan-step's, default auto),
# N_SAMPLES and SEED (quality.sh's). A first row scores the last 10000 training images, which
# the classifier did not see (bench/quality_classifier.py): the floor a perfect generator would
# reach at this sample size.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
export PATH="$here/../bin:$PATH"
BUDGET=${BUDGET:-300}
OUT=${OUT:-build/quality}
THREADS=${THREADS:-0}
DEVICE=${DEVICE:-auto}
CLOCK=${CLOCK:-wall}
JOBS=${JOBS:-1}
DATA=${GAN_QUALITY_DATA:-/usr/share/datasets/fashion-mnist}

# The recipes, one a line: NAME | TRAINING IMAGES | GAN-INIT OPTIONS | GAN-STEP OPTIONS.
# TRAINING IMAGES is how many of the 60000 training images (the first ones) the recipe sees.
# gan-init gets --like and -o; gan-step gets --data, --steps, --log, -i and -o. In gan-init's
# options, nets:NAME stands for --G and --D from examples/nets/NAME.G and NAME.D.
RECIPES='
mlp       | 60000 | --arch mlp --seed 1   |
dcgan     | 60000 | --arch dcgan --seed 1 |
sngan         | 60000 | --arch sngan --seed 1 |
sngan-2k      | 2000  | --arch sngan --seed 1 |
sngan-2k-aug  | 2000  | --arch sngan --seed 1 --augment color,translation,cutout |
small-dcgan   | 60000 | nets:small-dcgan --init dcgan --ema 0.99 --seed 1 |
small-dcgan-2k | 2000 | nets:small-dcgan --init dcgan --ema 0.99 --seed 1 |
small-dcgan-2k-aug | 2000 | nets:small-dcgan --init dcgan --ema 0.99 --seed 1 --augment color,translation,cutout |
# ---- new recipes go here, one line each ----
'

die() { echo "quality_recipes.sh: $*" >&2; exit 1; }
trim() { local s=$1; s=${s#"${s%%[![:space:]]*}"}; echo "${s%"${s##*[![:space:]]}"}"; }
case "$BUDGET" in ''|*[!0-9]*|0) die "BUDGET=$BUDGET: want a whole number of seconds > 0" ;; esac
case "$CLOCK" in wall|cpu) ;; *) die "CLOCK=$CLOCK: want wall or cpu" ;; esac
case "$JOBS" in ''|*[!0-9]*|0) die "JOBS=$JOBS: want a whole number > 0" ;; esac
command -v gan-step > /dev/null || die "gan-step not found: run make first"

# The recipes asked for (all when none is named), checked before anything runs.
declare -A known=()
names=()
while IFS='|' read -r name n init step; do
    name=$(trim "$name")
    case "$name" in ''|'#'*) continue ;; esac
    known[$name]="$(trim "$n")|$(trim "$init")|$(trim "$step")"
    names+=("$name")
done <<< "$RECIPES"
[ $# -eq 0 ] || names=("$@")
for name in "${names[@]}"; do
    [ -n "${known[$name]+x}" ] || die "no recipe named $name (known: ${!known[*]})"
done

mkdir -p "$OUT"
data() {  # data N [OFFSET]: N training images (from OFFSET, default 0) as uint8, made once
    local f="$OUT/train-${2:-0}-$1.npy"
    [ -f "$f" ] || idx2tensor --u8 --offset "${2:-0}" --limit "$1" \
        "$DATA/train-images-idx3-ubyte.gz" -o "$f" || die "cannot read the training images in $DATA"
    echo "$f"
}
meta() { tensor-info "$2" | awk -v k="$1" '$1 == k && $2 == "=" { print $3; exit }'; }
real=$(data 10000 50000)
for name in "${names[@]}"; do data "${known[$name]%%|*}" > /dev/null; done  # made once, before any job

# run_budget PID_FILE CMD...: runs CMD in the background and sends it SIGINT once it has used
# BUDGET seconds of CLOCK (wall: elapsed time; cpu: user + system time of the process, read from
# /proc every 0.2 s); prints the CPU seconds it had used when last read. Returns CMD's status.
tck=$(getconf CLK_TCK)
run_budget() {
    "$@" &
    local pid=$! t0 cpu=0 used rc=0
    t0=$(date +%s.%N)
    while kill -0 "$pid" 2> /dev/null; do
        used=$(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2> /dev/null) || break
        [ -n "$used" ] && cpu=$used
        if [ "$CLOCK" = cpu ]; then
            [ "$cpu" -lt $((BUDGET * tck)) ] || { kill -INT "$pid" 2> /dev/null; break; }
        else
            awk -v t0="$t0" -v t1="$(date +%s.%N)" -v b="$BUDGET" 'BEGIN { exit !(t1 - t0 >= b) }' &&
                { kill -INT "$pid" 2> /dev/null; break; }
        fi
        sleep 0.2
    done
    wait "$pid" || rc=$?
    awk -v c="$cpu" -v t="$tck" 'BEGIN { printf "%.0f\n", c / t }'
    return "$rc"
}

# train NAME: one recipe's gan-init and budgeted gan-step; writes OUT/NAME/row (the table's
# fields) or fails with a message.
train() {
    local name=$1 n init step d train args=() w rc=0 t0 t1 cpu steps batch ncrit rate
    IFS='|' read -r n init step <<< "${known[$name]}"
    d="$OUT/$name"
    train=$(data "$n")
    mkdir -p "$d"
    rm -f "$d/model.st" "$d/log.tsv" "$d/row"
    # shellcheck disable=SC2086  # the options are words
    for w in $init; do
        case "$w" in
        nets:*) args+=(--G "$(cat "$here/../examples/nets/${w#nets:}.G")" --D "$(cat "$here/../examples/nets/${w#nets:}.D")") ;;
        *) args+=("$w") ;;
        esac
    done
    gan-init "${args[@]}" --like "$train" -o "$d/model-0.st"
    echo "quality_recipes.sh: $name: gan-step for $BUDGET s ($CLOCK clock)" >&2
    t0=$(date +%s.%N)
    # shellcheck disable=SC2086
    cpu=$(run_budget gan-step -q --threads "$THREADS" --device "$DEVICE" \
        --data "$train" --steps 100000000 --log "$d/log.tsv" --log-every 100 $step \
        -i "$d/model-0.st" -o "$d/model.st") || rc=$?
    t1=$(date +%s.%N)
    [ "$rc" -eq 0 ] || [ "$rc" -eq 130 ] || die "$name: gan-step failed (exit $rc)"
    [ -f "$d/model.st" ] || die "$name: gan-step wrote no checkpoint (BUDGET too short for its start?)"
    steps=$(meta step "$d/model.st")
    batch=$(meta batch "$d/model.st")
    ncrit=$(meta n_critic "$d/model.st")
    rate=$(awk -v s="$steps" -v b="$batch" -v k="$ncrit" -v t0="$t0" -v t1="$t1" \
        'BEGIN { printf "%.0f", s * b * k / (t1 - t0) }')
    echo "$name|$n|$steps|$rate|$cpu|$d" > "$d/row"
}

# JOBS recipes at a time (each in the background; a failure ends the script after the others).
pids=()
for name in "${names[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
    train "$name" &
    pids+=($!)
done
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=1; done
[ "$failed" -eq 0 ] || die "a recipe failed (its message is above)"
rows=()
for name in "${names[@]}"; do rows+=("$(cat "$OUT/$name/row")"); done

echo "quality_recipes.sh: scoring" >&2
scores=$(bash "$here/quality.sh" "$real" "${rows[@]##*|}")

{
    echo "Quality at an equal budget of $BUDGET s of gan-step per recipe, $CLOCK clock ($(date -u +%Y-%m-%d),"
    echo "$(nproc) cores, $JOBS recipe(s) at a time, gan-step --threads $THREADS, load $(uptime | sed 's/.*load average: //'); device $DEVICE)."
    echo "FD against the 10000 Fashion-MNIST test images, of ${N_SAMPLES:-10000} samples; lower is better."
    echo
    echo "| recipe | training images | steps | images/s | CPU s | FD classifier | FD pixels | grid |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
    line=$(sed -n 1p <<< "$scores")
    printf '| %s | | | | | %s | %s | %s |\n' "real: held-out training images 50000-59999" \
        "$(cut -f2 <<< "$line" | cut -d' ' -f2)" "$(cut -f3 <<< "$line" | cut -d' ' -f2)" "$(cut -f4 <<< "$line")"
    i=2
    for r in "${rows[@]}"; do
        IFS='|' read -r name n steps rate cpu d <<< "$r"
        line=$(sed -n "${i}p" <<< "$scores")
        printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$name" "$n" "$steps" "$rate" "$cpu" \
            "$(cut -f2 <<< "$line" | cut -d' ' -f2)" "$(cut -f3 <<< "$line" | cut -d' ' -f2)" "$(cut -f4 <<< "$line")"
        i=$((i + 1))
    done
} > "$OUT/quality.md.tmp"
mv "$OUT/quality.md.tmp" "$OUT/quality.md"
cat "$OUT/quality.md"
