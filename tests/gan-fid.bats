#!/usr/bin/env bats
# gan-fid: the distance in pixel space on known images (checked against NumPy/SciPy), uint8 and
# float inputs, statistics files, stdin, progress, and one clean error line for every bad input.
# (Statistics, KID and network features against NumPy/SciPy/torch: tests/ref/test_fid_numpy.py;
# Inception against torch: tests/ref/test_inception_torch.py.)
load helper

# images FILE N SEED [SHAPE] [KIND]: N random images, uint8 (default) or float32 in [-1, 1]
images() {
    $PY -c "
import numpy as np, sys
r = np.random.default_rng(int(sys.argv[3])); shape = tuple(int(v) for v in sys.argv[4].split('x'))
a = r.integers(0, 256, (int(sys.argv[2]),) + shape).astype(np.uint8)
if sys.argv[5] == 'f4': a = (a.astype(np.float32) / np.float32(255)) * np.float32(2) - np.float32(1)
np.save(sys.argv[1], a)" "$1" "$2" "$3" "${4:-1x6x6}" "${5:-u1}"
}

# fd_ref A B [LA LB]: pytorch-fid's formula on flattened pixels mapped to [-1, 1] (uint8:
# 2 u/255 - 1); with label files LA and LB, 'K FD' for each class K with at least 2 images in
# both sets, on that class's pixels
fd_ref() {
    $PY -c "
import numpy as np, scipy.linalg as la, sys
def load(p):
    a = np.load(p)
    if a.dtype == np.uint8: a = (a.astype(np.float32) / np.float32(255)) * np.float32(2) - np.float32(1)
    return a.reshape(len(a), -1).astype(np.float64)
def fd(a, b):
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    c, _ = la.sqrtm(s1 @ s2, disp=False)
    return ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(s1 + s2 - 2 * c.real)
x, y = load(sys.argv[1]), load(sys.argv[2])
if len(sys.argv) == 3:
    print(fd(x, y))
else:
    lx, ly = np.load(sys.argv[3]).reshape(-1), np.load(sys.argv[4]).reshape(-1)
    for k in sorted(set(lx) & set(ly)):
        a, b = x[lx == k], y[ly == k]
        if len(a) >= 2 and len(b) >= 2: print(k, fd(a, b))" "$@"
}

# labels FILE N SEED K [DTYPE]: N random classes in [0, K)
labels() {
    $PY -c "
import numpy as np, sys
r = np.random.default_rng(int(sys.argv[3]))
np.save(sys.argv[1], r.integers(0, int(sys.argv[4]), int(sys.argv[2])).astype(sys.argv[5]))" "$1" "$2" "$3" "$4" "${5:-int64}"
}

# close A B TOL: |A - B| <= TOL |B|
close() {
    $PY -c "import sys; a, b, t = map(float, sys.argv[1:]); sys.exit(0 if abs(a - b) <= t * abs(b) else 1)" "$@" ||
        { echo "$1 differs from $2 by more than $3 relative"; return 1; }
}

@test "gan-fid --help lists every option and an example" {
    run gan-fid --help
    [ "$status" -eq 0 ]
    for o in --features --weights --save-stats --merge-stats --save-features --kid --kid-subsets \
             --kid-subset-size --seed --batch --threads --device --labels --metrics --pr-k --dc-k --is --is-splits --resize -q; do
        [[ "$output" == *"$o"* ]] || { echo "help lacks $o"; return 1; }
    done
    [[ "$output" == *example* ]]
}

@test "FD(pixels) of uint8 images equals pytorch-fid's formula; float images in [-1, 1] give the same" {
    images "$T/a.npy" 200 1
    images "$T/b.npy" 150 2
    images "$T/bf.npy" 150 2 1x6x6 f4
    run gan-fid -q --features pixels "$T/a.npy" "$T/b.npy"
    assert_success
    [[ "$output" == "FD(pixels) "* ]]
    [[ "$output" != *FID* ]]
    ours=${output#FD(pixels) }
    close "$ours" "$(fd_ref "$T/a.npy" "$T/b.npy")" 1e-6
    run gan-fid -q --features pixels "$T/a.npy" "$T/bf.npy"
    assert_success
    close "${output#FD(pixels) }" "$ours" 1e-9
}

@test "a set against itself scores 0; the order of the sets does not matter" {
    images "$T/a.npy" 100 3 3x4x4
    images "$T/b.npy" 120 4 3x4x4
    run gan-fid -q --features pixels "$T/a.npy" "$T/a.npy"
    assert_success
    $PY -c "import sys; v = float(sys.argv[1].split()[1]); sys.exit(0 if abs(v) < 1e-9 else 1)" "$output"
    ab=$(gan-fid -q --features pixels "$T/a.npy" "$T/b.npy")
    ba=$(gan-fid -q --features pixels "$T/b.npy" "$T/a.npy")
    close "${ab#* }" "${ba#* }" 1e-12
}

@test "--save-stats then the file scores like the images; stdin; --batch does not matter" {
    images "$T/a.npy" 300 5
    images "$T/b.npy" 100 6
    gan-fid -q --features pixels --save-stats "$T/a.npz" "$T/a.npy"
    direct=$(gan-fid -q --features pixels "$T/a.npy" "$T/b.npy")
    run gan-fid -q "$T/a.npz" "$T/b.npy" --features pixels
    assert_success
    close "${output#* }" "${direct#* }" 1e-10
    run gan-fid -q --features pixels - "$T/b.npy" < "$T/a.npy"
    assert_success
    close "${output#* }" "${direct#* }" 1e-12
    run gan-fid -q --features pixels --batch 7 "$T/a.npy" "$T/b.npy"
    close "${output#* }" "${direct#* }" 1e-12
    # two statistics files need no feature network
    gan-fid -q --features pixels --save-stats "$T/b.npz" "$T/b.npy"
    run gan-fid -q "$T/a.npz" "$T/b.npz"
    assert_success
    close "${output#FD(pixels) }" "${direct#* }" 1e-10
}

@test "progress on stderr unless -q; a warning when N is under the feature dimension" {
    images "$T/a.npy" 20 7
    images "$T/b.npy" 50 8
    run gan-fid --features pixels "$T/a.npy" "$T/b.npy"
    assert_success
    [[ "$output" == *"20/20 images"* ]]
    [[ "$output" == *"warning: $T/a.npy: 20 samples for 36 features"* ]]
    run gan-fid -q --features pixels "$T/a.npy" "$T/b.npy"
    [ "${#lines[@]}" -eq 1 ]
}

@test "error: mismatched feature dimensions" {
    images "$T/a.npy" 10 1 1x6x6
    images "$T/b.npy" 10 2 1x5x5
    run gan-fid -q --features pixels "$T/a.npy" "$T/b.npy"
    assert_one_line_error 1
    [[ "$output" == *"images are 1x5x5, the other set's 1x6x6"* ]]
    $PY -c "import numpy as np; np.savez('$T/s64.npz', mu=np.zeros(64), sigma=np.eye(64)); np.savez('$T/s32.npz', mu=np.zeros(32), sigma=np.eye(32))"
    run gan-fid -q "$T/s64.npz" "$T/s32.npz"
    assert_one_line_error 1
    [[ "$output" == *"has 64 features but"*"has 32"* ]]
}

@test "error: a statistics file without sigma, and other broken statistics" {
    $PY -c "import numpy as np; np.savez('$T/nosigma.npz', mu=np.zeros(4)); np.savez('$T/ok.npz', mu=np.zeros(4), sigma=np.eye(4))
np.savez('$T/asym.npz', mu=np.zeros(2), sigma=np.array([[1., 0.5], [0.1, 1.]]))
np.savez('$T/nan.npz', mu=np.array([0., np.nan]), sigma=np.eye(2))
np.savez('$T/n1.npz', mu=np.zeros(2), sigma=np.eye(2), n=np.int64(1))"
    run gan-fid -q "$T/nosigma.npz" "$T/ok.npz"
    assert_one_line_error 1
    [[ "$output" == *"statistics without 'sigma' (the file holds: mu)"* ]]
    run gan-fid -q "$T/ok.npz" "$T/asym.npz"
    assert_one_line_error 1
    [[ "$output" == *"not symmetric"* ]]
    run gan-fid -q "$T/nan.npz" "$T/nan.npz"
    assert_one_line_error 1
    [[ "$output" == *"NaN"* ]]
    run gan-fid -q "$T/n1.npz" "$T/n1.npz"
    assert_one_line_error 1
    [[ "$output" == *"at least 2 samples"* ]]
}

@test "error: fewer than 2 images" {
    images "$T/one.npy" 1 1
    images "$T/b.npy" 10 2
    run gan-fid -q --features pixels "$T/one.npy" "$T/b.npy"
    assert_one_line_error 1
    [[ "$output" == *"1 image: statistics need at least 2"* ]]
    $PY -c "import numpy as np; np.save('$T/none.npy', np.zeros((0, 1, 6, 6), np.float32))"
    run gan-fid -q --features pixels "$T/b.npy" "$T/none.npy"
    assert_one_line_error 1
    [[ "$output" == *"0 images"* ]]
}

@test "error: NaN or infinity in images; no statistics file is left behind" {
    $PY -c "import numpy as np; a = np.zeros((5, 1, 4, 4), np.float32); a[3, 0, 1, 2] = np.nan; np.save('$T/nan.npy', a)
a[3, 0, 1, 2] = np.inf; np.save('$T/inf.npy', a)"
    run gan-fid -q --features pixels --save-stats "$T/s.npz" "$T/nan.npy"
    assert_one_line_error 1
    [[ "$output" == *"image 3 holds NaN values"* ]]
    [ ! -e "$T/s.npz" ]
    [ -z "$(ls "$T" | grep '\.tmp\.')" ]
    run gan-fid -q --features pixels "$T/inf.npy" "$T/inf.npy"
    assert_one_line_error 1
    [[ "$output" == *"infinite"* ]]
}

@test "without Inception weights: says how to get them and offers the alternatives" {
    images "$T/a.npy" 10 1
    images "$T/b.npy" 10 2
    run env -u GAN_FID_WEIGHTS gan-fid -q "$T/a.npy" "$T/b.npy"
    assert_one_line_error 1
    [[ "$output" == *"--weights FILE or set GAN_FID_WEIGHTS"* ]]
    [[ "$output" == *"tools/fid-weights.py"* ]]
    [[ "$output" == *"--features pixels"* ]]
    run gan-fid -q --weights "$T/missing.safetensors" "$T/a.npy" "$T/b.npy"
    assert_one_line_error 1
}

@test "usage errors: set counts, --kid with statistics, unknown options, a terminal" {
    images "$T/a.npy" 10 1
    gan-fid -q --features pixels --save-stats "$T/a.npz" "$T/a.npy"
    run gan-fid -q "$T/a.npy"
    assert_one_line_error 2
    run gan-fid -q "$T/a.npy" "$T/a.npy" "$T/a.npy"
    assert_one_line_error 2
    run gan-fid -q --kid --features pixels "$T/a.npz" "$T/a.npy"
    assert_one_line_error 2
    [[ "$output" == *"--kid needs the features of both sets"* ]]
    run gan-fid -q --save-stats "$T/x.npz" "$T/a.npy" "$T/a.npy"
    assert_one_line_error 2
    run gan-fid -q --frobnicate "$T/a.npy" "$T/a.npy"
    assert_one_line_error 2
    run gan-fid -q --features pixels --kid-subsets 0 "$T/a.npy" "$T/a.npy"
    assert_one_line_error 2
    run gan-fid -q --features pixels - - < "$T/a.npy"
    assert_one_line_error 2
}

@test "--metrics: what is printed, in a fixed order; --kid adds KID; 1 and 2 threads agree" {
    images "$T/a.npy" 30 1 1x3x3
    images "$T/b.npy" 25 2 1x3x3
    run gan-fid -q --features pixels "$T/a.npy" "$T/b.npy"
    [ "$status" -eq 0 ] && [ "${#lines[@]}" -eq 1 ] && [[ "${lines[0]}" == "FD(pixels) "* ]]
    gan-fid -q --features pixels --metrics dc,pr,fid,kid --kid-subset-size 10 "$T/a.npy" "$T/b.npy" > "$T/all"
    cut -d' ' -f1 "$T/all" | tr '\n' ' ' > "$T/names"
    [ "$(cat "$T/names")" = "FD(pixels) KD(pixels) precision(pixels) recall(pixels) density(pixels) coverage(pixels) " ]
    gan-fid -q --features pixels --metrics pr,dc --threads 1 "$T/a.npy" "$T/b.npy" > "$T/t1"
    gan-fid -q --features pixels --metrics pr,dc --threads 2 "$T/a.npy" "$T/b.npy" > "$T/t2"
    cmp "$T/t1" "$T/t2"
    grep -v '^FD\|^KD' "$T/all" | cmp - "$T/t1"
    # each line is NAME VALUE; fractions in [0, 1]
    awk 'NF != 2 || ($1 ~ /^(precision|recall|coverage)/ && ($2 < 0 || $2 > 1)) { exit 1 }' "$T/t1"
    run gan-fid -q --features pixels --metrics kid --kid-subset-size 10 "$T/a.npy" "$T/b.npy"
    [ "$status" -eq 0 ] && [ "${#lines[@]}" -eq 1 ] && [[ "${lines[0]}" == "KD(pixels) "*" std "* ]]
    run gan-fid -q --features pixels --metrics fid --kid --kid-subset-size 10 "$T/a.npy" "$T/b.npy"
    [ "$status" -eq 0 ] && [ "${#lines[@]}" -eq 2 ]
}

@test "--metrics errors: unknown names, statistics, too few samples for k, one set" {
    images "$T/a.npy" 10 1 1x3x3
    gan-fid -q --features pixels --save-stats "$T/a.npz" "$T/a.npy"
    run gan-fid -q --features pixels --metrics fid,prd "$T/a.npy" "$T/a.npy"
    assert_one_line_error 2
    [[ "$output" == *"unknown metric 'prd'"* ]]
    run gan-fid -q --features pixels --metrics "" "$T/a.npy" "$T/a.npy"
    assert_one_line_error 2
    run gan-fid -q --features pixels --metrics pr "$T/a.npz" "$T/a.npy"
    assert_one_line_error 2
    [[ "$output" == *"pr need the features of both sets"* ]]
    run gan-fid -q --features pixels --metrics dc --dc-k 10 "$T/a.npy" "$T/a.npy"
    assert_one_line_error 1
    [[ "$output" == *"10 real samples: the 10-th nearest neighbour needs at least 11"* ]]
    run gan-fid -q --features pixels --pr-k 0 "$T/a.npy" "$T/a.npy"
    assert_one_line_error 2
    run gan-fid -q --features pixels --metrics pr --save-stats "$T/x.npz" "$T/a.npy"
    assert_one_line_error 2
    [ ! -e "$T/x.npz" ]
    # the Inception Score (its values: tests/ref/test_inception_torch.py)
    run env -u GAN_FID_WEIGHTS gan-fid -q --is "$T/a.npy"
    assert_one_line_error 1
    [[ "$output" == *"the Inception Score needs the Inception weights"* ]]
    run gan-fid -q --is --features pixels "$T/a.npy"
    assert_one_line_error 2
    [[ "$output" == *"needs Inception features, not --features pixels"* ]]
    run gan-fid -q --features pixels --metrics fid "$T/a.npy"
    assert_one_line_error 2
    run gan-fid -q --is-splits 0 "$T/a.npy"
    assert_one_line_error 2
    run gan-fid -q --is --weights "$T/a.npy" "$T/a.npy" "$T/a.npy" "$T/a.npy"
    assert_one_line_error 2
    # --resize (its values: tests/ref/test_fid_numpy.py against PIL, test_inception_torch.py)
    run gan-fid -q --resize bicubic --features pixels "$T/a.npy" "$T/a.npy"
    assert_one_line_error 2
    [[ "$output" == *"bilinear (pytorch-fid's, the default) or clean"* ]]
    run gan-fid -q --resize clean --features pixels "$T/a.npy" "$T/a.npy"
    assert_one_line_error 2
    run gan-fid -q --resize bilinear --features pixels "$T/a.npy" "$T/a.npy"
    [ "$status" -eq 0 ] && [[ "$output" == "FD(pixels) "* ]]
}

@test "error: inputs that are not sets" {
    $PY -c "import numpy as np; np.save('$T/3d.npy', np.zeros((4, 5, 6), np.float32)); np.save('$T/i8.npy', np.zeros((4, 1, 2, 2), np.int64))"
    echo "hello" > "$T/text.txt"
    : > "$T/empty"
    images "$T/a.npy" 10 1
    run gan-fid -q --features pixels "$T/3d.npy" "$T/a.npy"
    assert_one_line_error 1
    [[ "$output" == *"a 4x5x6 array: expected images"* ]]
    run gan-fid -q --features pixels "$T/i8.npy" "$T/a.npy"
    assert_one_line_error 1
    [[ "$output" == *"int64 images"* ]]
    run gan-fid -q --features pixels "$T/text.txt" "$T/a.npy"
    assert_one_line_error 1
    run gan-fid -q --features pixels "$T/empty" "$T/a.npy"
    assert_one_line_error 1
    run gan-fid -q --features pixels "$T/nothere.npy" "$T/a.npy"
    assert_one_line_error 1
    mkdir "$T/dir"
    run gan-fid -q --features pixels "$T/dir" "$T/a.npy"
    assert_one_line_error 1
    [[ "$output" == *"Is a directory"* ]]
}

@test "--merge-stats writes the pooled statistics; --save-features writes N x D float32" {
    images "$T/a.npy" 40 1 1x3x3
    images "$T/b.npy" 25 2 1x3x3
    gan-fid -q --features pixels --save-stats "$T/a.npz" "$T/a.npy"
    gan-fid -q --features pixels --merge-stats "$T/ab.npz" "$T/a.npz" "$T/b.npy"
    gan-fid -q --features pixels --save-features "$T/f.npy" "$T/b.npy"
    run $PY -c "
import numpy as np
a, b = np.load('$T/a.npy'), np.load('$T/b.npy')
x = np.concatenate([a, b]).reshape(65, -1).astype(np.float32) / np.float32(255) * np.float32(2) - np.float32(1)
z = np.load('$T/ab.npz')
assert int(z['n']) == 65 and z['features'].tobytes() == b'pixels'
assert np.abs(z['mu'] - x.astype(np.float64).mean(0)).max() < 1e-13
assert np.abs(z['sigma'] - np.cov(x.astype(np.float64), rowvar=False)).max() < 1e-13
f = np.load('$T/f.npy')
assert f.dtype == np.float32 and f.shape == (25, 9)
assert np.array_equal(f, b.reshape(25, -1).astype(np.float32) / np.float32(255) * np.float32(2) - np.float32(1))
print('ok')"
    assert_success
    assert_output ok
    # statistics of different features do not mix
    $PY -c "import numpy as np; np.save('$T/feat.npy', np.random.default_rng(0).standard_normal((30, 9)).astype(np.float32))"
    run gan-fid -q --merge-stats "$T/bad.npz" "$T/a.npz" "$T/feat.npy"
    assert_one_line_error 1
    [[ "$output" == *"pixels features but"*"features"* ]]
    [ ! -e "$T/bad.npz" ]
}

@test "bounded memory: 40000 images (125 MB) take no more memory than 4000" {
    $PY -c "
import numpy as np
r = np.random.default_rng(0)
for n, name in ((4000, 'small'), (40000, 'big')):
    with open('$T/' + name + '.npy', 'wb') as f:
        np.lib.format.write_array_header_1_0(f, {'descr': '<f4', 'fortran_order': False, 'shape': (n, 1, 28, 28)})
        for i in range(n // 4000):
            f.write(r.uniform(-1, 1, (4000, 1, 28, 28)).astype(np.float32).tobytes())"
    images "$T/b.npy" 100 2 1x28x28
    for n in small big; do
        run /usr/bin/time -f "maxrss %M" gan-fid -q --features pixels "$T/$n.npy" "$T/b.npy"
        assert_success
        [[ "${lines[0]}" == "FD(pixels) "* ]]
        eval "rss_$n=$(echo "$output" | sed -n 's/^maxrss //p')"
    done
    # the input is read in batches; only the statistics (14 MB a set at 784 features) stay
    [ $((rss_big - rss_small)) -lt 20000 ] || { echo "max RSS $rss_big kB for 40000 images, $rss_small kB for 4000"; return 1; }
}

@test "--labels: per-class FD(pixels) equals pytorch-fid's formula on each class; the overall line is unchanged" {
    images "$T/a.npy" 300 1 1x4x4
    images "$T/b.npy" 260 2 1x4x4
    labels "$T/la.npy" 300 3 4
    labels "$T/lb.npy" 260 4 4 uint8
    plain=$(gan-fid -q --features pixels "$T/a.npy" "$T/b.npy")
    run gan-fid -q --features pixels --labels "$T/la.npy,$T/lb.npy" "$T/a.npy" "$T/b.npy"
    assert_success
    [ "${#lines[@]}" -eq 5 ]
    [ "${lines[0]}" = "$plain" ]
    ref=$(fd_ref "$T/a.npy" "$T/b.npy" "$T/la.npy" "$T/lb.npy")
    [ "$(echo "$ref" | wc -l)" -eq 4 ]
    i=1
    while read -r k fd; do
        [[ "${lines[$i]}" == "FD(pixels)[class=$k] "* ]] || { echo "line $i: ${lines[$i]}, expected class $k"; return 1; }
        close "${lines[$i]#* }" "$fd" 1e-6
        i=$((i + 1))
    done <<< "$ref"
    # the per-class statistics are not the overall ones: one class against all of B is another number
    [ "${lines[1]#* }" != "${lines[0]#* }" ]
    # N x 1 labels, and labels that make one class of everything: that class's line is the overall distance
    $PY -c "import numpy as np; np.save('$T/one_a.npy', np.full((300, 1), 5, np.int64)); np.save('$T/one_b.npy', np.full(260, 5, np.uint8))"
    run gan-fid -q --features pixels --labels "$T/one_a.npy,$T/one_b.npy" "$T/a.npy" "$T/b.npy"
    assert_success
    [ "${#lines[@]}" -eq 2 ]
    [[ "${lines[1]}" == "FD(pixels)[class=5] "* ]]
    close "${lines[1]#* }" "${plain#* }" 1e-12
    # with --kid: the overall lines first, unchanged, then the per-class FD lines, then per-class KD
    run gan-fid -q --features pixels --kid --kid-subsets 3 --labels "$T/la.npy,$T/lb.npy" "$T/a.npy" "$T/b.npy"
    assert_success
    [ "${#lines[@]}" -eq 10 ]
    [ "${lines[0]}" = "$plain" ]
    [[ "${lines[1]}" == "KD(pixels) "*" std "* ]]
    [[ "${lines[2]}" == "FD(pixels)[class=0] "* ]]
    [[ "${lines[6]}" == "KD(pixels)[class=0] "*" std "* ]]
}

@test "--labels: a class with fewer than 2 images in a set prints nan and says why on stderr" {
    images "$T/a.npy" 40 1 1x4x4
    images "$T/b.npy" 30 2 1x4x4
    # A: classes 0 (20), 2 (19), 9 (1); B: classes 0 (15), 1 (15)
    $PY -c "import numpy as np; a = np.array([0] * 20 + [2] * 19 + [9]); np.save('$T/la.npy', a); np.save('$T/lb.npy', np.array([0, 1] * 15, np.uint8))"
    run gan-fid -q --features pixels --labels "$T/la.npy,$T/lb.npy" "$T/a.npy" "$T/b.npy"
    assert_success
    [ "${#lines[@]}" -eq 5 ]
    [[ "${lines[1]}" == "FD(pixels)[class=0] "[0-9]* ]]
    [ "${lines[2]}" = "FD(pixels)[class=1] nan" ]
    [ "${lines[3]}" = "FD(pixels)[class=2] nan" ]
    [ "${lines[4]}" = "FD(pixels)[class=9] nan" ]
    run bash -c "gan-fid --features pixels --labels '$T/la.npy,$T/lb.npy' '$T/a.npy' '$T/b.npy' 2>&1 >/dev/null | grep class"
    assert_output --partial "class 1: 0 images in $T/a.npy, 15 in $T/b.npy: a distance needs at least 2 in each; printing nan"
    assert_output --partial "class 9: 1 image in $T/a.npy, 0 in $T/b.npy"
    assert_output --partial "per-class sets are smaller than the 16 features (the smallest: 15 images of class 0 in $T/b.npy)"
    # a script reads every line the same way
    run bash -c "gan-fid -q --features pixels --labels '$T/la.npy,$T/lb.npy' '$T/a.npy' '$T/b.npy' | $PY -c 'import sys; print(len([float(l.split()[1]) for l in sys.stdin]))'"
    assert_output 5
}

@test "--labels --kid: per-class KID equals --kid on each class's rows alone; nan where a class is too small" {
    images "$T/a.npy" 60 1 1x3x3
    images "$T/b.npy" 50 2 1x3x3
    $PY -c "
import numpy as np
la = np.repeat([0, 2, 5], 20); lb = np.array([0] * 20 + [2] * 29 + [7])
np.save('$T/la.npy', la); np.save('$T/lb.npy', lb)
a, b = np.load('$T/a.npy'), np.load('$T/b.npy')
for k in (0, 2):
    np.save('$T/a%d.npy' % k, a[la == k]); np.save('$T/b%d.npy' % k, b[lb == k])"
    run gan-fid -q --features pixels --kid --kid-subsets 5 --kid-subset-size 15 --seed 3 --labels "$T/la.npy,$T/lb.npy" \
        "$T/a.npy" "$T/b.npy"
    assert_success
    # FD, KD, 4 FD[class] lines (0 2 5 7), then 4 KD[class] lines
    [ "${#lines[@]}" -eq 10 ]
    [[ "${lines[1]}" == "KD(pixels) "*" std "* ]]
    [[ "${lines[2]}" == "FD(pixels)[class=0] "* ]]
    for k in 0 2; do
        want=$(gan-fid -q --features pixels --metrics kid --kid-subsets 5 --kid-subset-size 15 --seed 3 "$T/a$k.npy" "$T/b$k.npy")
        [ "$(printf '%s\n' "${lines[@]}" | grep -F "KD(pixels)[class=$k] ")" = "${want/KD(pixels)/KD(pixels)[class=$k]}" ]
    done
    [ "${lines[8]}" = "KD(pixels)[class=5] nan std nan" ]
    [ "${lines[9]}" = "KD(pixels)[class=7] nan std nan" ]
    # without fid in --metrics: only the KID lines
    run gan-fid -q --features pixels --metrics kid --kid-subsets 5 --labels "$T/la.npy,$T/lb.npy" "$T/a.npy" "$T/b.npy"
    assert_success
    [ "${#lines[@]}" -eq 5 ] && [[ "${lines[4]}" == "KD(pixels)[class=7] nan std nan" ]]
}

@test "--labels errors: counts, negative or non-integer labels, statistics inputs, the option's form" {
    images "$T/a.npy" 20 1
    images "$T/b.npy" 20 2
    labels "$T/l20.npy" 20 1 3
    labels "$T/l19.npy" 19 1 3
    run gan-fid -q --features pixels --labels "$T/l20.npy,$T/l19.npy" "$T/a.npy" "$T/b.npy"
    assert_one_line_error 1
    [[ "$output" == *"l19.npy: 19 labels for the 20 images of $T/b.npy: want one label per image"* ]]
    $PY -c "import numpy as np; a = np.zeros(20, np.int64); a[7] = -2; np.save('$T/neg.npy', a); np.save('$T/f.npy', np.zeros(20, np.float32)); np.save('$T/2d.npy', np.zeros((20, 2), np.int64))"
    run gan-fid -q --features pixels --labels "$T/neg.npy,$T/l20.npy" "$T/a.npy" "$T/b.npy"
    assert_one_line_error 1
    [[ "$output" == *"neg.npy: label -2 of image 7 is negative"* ]]
    run gan-fid -q --features pixels --labels "$T/f.npy,$T/l20.npy" "$T/a.npy" "$T/b.npy"
    assert_one_line_error 1
    [[ "$output" == *"labels must be int64 or uint8"* ]]
    run gan-fid -q --features pixels --labels "$T/2d.npy,$T/l20.npy" "$T/a.npy" "$T/b.npy"
    assert_one_line_error 1
    run gan-fid -q --features pixels --labels "$T/nothere.npy,$T/l20.npy" "$T/a.npy" "$T/b.npy"
    assert_one_line_error 1
    gan-fid -q --features pixels --save-stats "$T/a.npz" "$T/a.npy"
    run gan-fid -q --features pixels --labels "$T/l20.npy,$T/l20.npy" "$T/a.npz" "$T/b.npy"
    assert_one_line_error 2
    [[ "$output" == *"--labels: $T/a.npz holds statistics, which carry no labels"* ]]
    run gan-fid -q --features pixels --labels "$T/l20.npy,$T/l20.npy" "$T/b.npy" "$T/a.npz"
    assert_one_line_error 2
    for arg in "$T/l20.npy" "$T/l20.npy," ",$T/l20.npy" "$T/l20.npy,$T/l20.npy,$T/l20.npy"; do
        run gan-fid -q --features pixels --labels "$arg" "$T/a.npy" "$T/b.npy"
        assert_one_line_error 2 || { echo "for --labels $arg"; return 1; }
    done
    run gan-fid -q --features pixels --labels "$T/l20.npy,$T/l20.npy" --save-stats "$T/s.npz" "$T/a.npy"
    assert_one_line_error 2
    [ ! -e "$T/s.npz" ]
}
