#!/bin/sh
# tests/cli.sh — the quasar command end to end: help and version, dispatch,
# `quasar quantize` on small HDF5 files made with h5import (hdf5-tools), its
# output file (checked with h5dump when present), --json, and the error paths
# (exit codes, messages, an existing output left intact).
# Run by `make check` with $QUASAR (the built command) and $QS_TEST_TMP.
# Prints "ok N - description"; stops at the first failure, showing the command
# and its output.

set -u
: "${QUASAR:?set QUASAR to the quasar command}"
TMP=${QS_TEST_TMP:-/tmp}/cli.$$
rm -rf "$TMP"
mkdir -p "$TMP" || exit 1
trap 'rm -rf "$TMP"' EXIT
OUT=$TMP/stdout
ERR=$TMP/stderr
n=0
LAST=

ok() { n=$((n + 1)); echo "ok $n - $1"; }

fail() {
    echo "not ok $((n + 1)) - $1"
    echo "# command: $LAST"
    echo "# stdout:"; sed 's/^/#   /' "$OUT" 2>/dev/null
    echo "# stderr:"; sed 's/^/#   /' "$ERR" 2>/dev/null
    exit 1
}

# q RC DESCRIPTION ARGS...: runs quasar with ARGS and expects exit status RC.
q() {
    want=$1; desc=$2; shift 2
    LAST="quasar $*"
    "$QUASAR" "$@" >"$OUT" 2>"$ERR"
    rc=$?
    [ "$rc" -eq "$want" ] || fail "$desc (exit $rc, expected $want)"
}
# out_has / err_has STRING DESCRIPTION: fixed-string search in the last output.
out_has() { grep -F -q -- "$1" "$OUT" || fail "$2: stdout lacks '$1'"; }
err_has() { grep -F -q -- "$1" "$ERR" || fail "$2: stderr lacks '$1'"; }
err_prefixed() { grep -q '^quasar: ' "$ERR" || fail "$1: stderr message not prefixed by 'quasar: '"; }

# ---- help, version, dispatch ------------------------------------------------------
q 0 "--help" --help
out_has "quantize" "--help lists quantize"; out_has "Usage: quasar" "--help"
ok "quasar --help lists the commands"

q 0 "--version" --version
grep -q '^quasar [0-9][0-9.]*' "$OUT" || fail "--version prints 'quasar VERSION'"
VERSION=$(sed 's/^quasar //' "$OUT")
ok "quasar --version prints $VERSION"

q 0 "help quantize" help quantize
out_has "--scale-type" "help quantize"; out_has "--zero-point" "help quantize"
q 0 "quantize --help" quantize --help
out_has "Usage: quasar quantize" "quantize --help"
ok "quasar help quantize and quasar quantize --help"

q 2 "unknown command" frobnicate
err_has "quasar: unknown command 'frobnicate'" "unknown command"; err_has "quantize" "unknown command lists commands"
q 2 "no command"
err_has "quasar: no command given" "no command"
q 2 "help of an unknown command" help frobnicate
err_has "unknown command 'frobnicate'" "help frobnicate"
q 2 "unknown global option" --frobnicate
err_prefixed "unknown global option"
ok "unknown commands and options exit 2 and list the commands"

q 2 "quantize without arguments" quantize
err_prefixed "quantize without arguments"; err_has "IN.h5 and DATASET" "quantize without arguments"
q 2 "quantize without -o" quantize a.h5 /x
err_has "-o OUT.h5" "quantize without -o"
q 2 "unknown quantize option" quantize a.h5 /x -o b.h5 --frobnicate
err_has "unknown option '--frobnicate'" "unknown quantize option"
q 2 "option without value" quantize a.h5 /x -o b.h5 --bits
err_has "--bits needs a value" "option without value"
q 2 "--zero-point without --scale" quantize a.h5 /x -o b.h5 --zero-point 1
q 2 "--threads 0" quantize a.h5 /x -o b.h5 --threads 0
err_has "--threads" "--threads 0"
q 2 "-o twice" quantize a.h5 /x -o b.h5 -o c.h5
err_has "quasar: -o/--output given twice" "-o twice"
q 2 "hex scale" quantize a.h5 /x -o b.h5 --scale 0x10
err_has "quasar: --scale: expected a number" "hex scale"
q 2 "zero point with an exponent" quantize a.h5 /x -o b.h5 --scale 1 --zero-point 1e3
err_has "quasar: --zero-point: expected an integer" "zero point with an exponent"
ok "quantize usage errors exit 2"

q 2 "bad spec key" quantize a.h5 /x -o b.h5 --quant bitz=4
err_has "quasar: --quant: unknown key 'bitz' (expected one of: grid, bits, scheme, gran, range, round, overflow, scale, div)" "bad spec key"
q 2 "bad spec value" quantize a.h5 /x -o b.h5 --quant int4,round=nearest
err_has "key 'round'" "bad spec value"; err_has "nearest-even" "bad spec value"
q 2 "bad flag value" quantize a.h5 /x -o b.h5 --bits 40
err_has "--bits" "bad flag value"; err_has "1..32" "bad flag value"
q 2 "invalid quantizer after flags" quantize a.h5 /x -o b.h5 --quant scheme=symmetric-narrow --bits 1
err_prefixed "invalid quantizer after flags"
q 2 "--scale with a range method" quantize a.h5 /x -o b.h5 --scale 0.5 --range mse
err_has "--scale" "--scale with a range method"
ok "bad spec strings and flags exit 2 naming the key and the choices"

# ---- input files --------------------------------------------------------------
if ! command -v h5import >/dev/null 2>&1; then
    echo "# h5import (hdf5-tools) not found: skipping the tests that need HDF5 input files"
    exit 77
fi

# mk FILE DATASET "DIMS" "VALUES" [CLASS SIZE]: appends a dataset to FILE (created if absent).
mk() {
    file=$1; dset=$2; dims=$3; vals=$4; class=${5:-FP}; size=${6:-32}
    rank=$(echo "$dims" | wc -w)
    inclass=TEXTFP; [ "$class" = IN ] && inclass=TEXTIN
    echo "$vals" >"$TMP/mk.txt"
    cat >"$TMP/mk.cfg" <<EOF
PATH $dset
INPUT-CLASS $inclass
INPUT-SIZE $( [ "$class" = IN ] && echo 32 || echo 64 )
RANK $rank
DIMENSION-SIZES $dims
OUTPUT-CLASS $class
OUTPUT-SIZE $size
EOF
    LAST="h5import $TMP/mk.txt -c $TMP/mk.cfg -o $file"
    h5import "$TMP/mk.txt" -c "$TMP/mk.cfg" -o "$file" >"$OUT" 2>"$ERR" || fail "h5import of $dset into $file"
}

IN=$TMP/in.h5
mk "$IN" /vec "5" "-1 0.375 0.625 2 -3"
mk "$IN" /asym "4" "-1 0.25 1 200"
mk "$IN" /mat "2 3" "1 -2 3 0.5 -0.25 0.75"
mk "$IN" /exact "2" "0.25 0.5"
mk "$IN" /nan "2 2" "1 nan 3 inf"
mk "$IN" /f64 "3" "0.5 -0.5 1" FP 64
mk "$IN" /ints "3" "1 -2 3" IN 32
mk "$IN" /empty "0" ""
mk "$IN" /params/scale2 "2" "1 0.5"
mk "$IN" /params/scale3 "3" "1 0.5 2"
mk "$IN" /params/zp2 "2" "0 0" IN 32
# a larger tensor: 4 x 64 values with a little structure
awk 'BEGIN { for (i = 0; i < 256; i++) printf "%g ", sin(i * 0.37) * (1 + (i % 7)); print "" }' >"$TMP/big.txt"
mk "$IN" /big "4 64" "$(cat "$TMP/big.txt")"
SCALES=$TMP/scales.h5
mk "$SCALES" /s "2" "0.5 0.25"
ok "input files made with h5import"

H5DUMP=
command -v h5dump >/dev/null 2>&1 && H5DUMP=h5dump
# values FILE DATASET: the data of a dataset as "a,b,c" (needs h5dump)
values() { "$H5DUMP" -d "$2" -y -w 0 "$1" | sed -n '/DATA {/,/^ *}/p' | sed '1d;$d' | tr -d ' \n'; }
# dims FILE DATASET: "( 2, 3 )"
dims() { "$H5DUMP" -H -d "$2" "$1" | sed -n 's/.*SIMPLE { \(([^)]*)\).*/\1/p'; }
# check_values FILE DATASET EXPECTED DESCRIPTION
check_values() {
    [ -n "$H5DUMP" ] || return 0
    got=$(values "$1" "$2")
    [ "$got" = "$3" ] || fail "$4: $2 is '$got', expected '$3'"
}
check_dims() {
    [ -n "$H5DUMP" ] || return 0
    got=$(dims "$1" "$2")
    [ "$got" = "$3" ] || fail "$4: $2 has shape '$got', expected '$3'"
}
# json KEY: the raw value of KEY in the last --json output
json() { sed -n "s/.*\"$1\": \([^,}]*\).*/\1/p" "$OUT"; }

# ---- quantize ---------------------------------------------------------------------
R=$TMP/r.h5
q 0 "quantize per tensor" quantize "$IN" /big -o "$R" --quant int8
[ -f "$R" ] || fail "quantize per tensor: no output file"
out_has "input" "summary"; out_has "SQNR" "summary"; out_has "clipped" "summary"; out_has "mse" "summary"
check_dims "$R" /dequantized "( 4, 64 )" "quantize per tensor"
check_dims "$R" /codes "( 4, 64 )" "quantize per tensor"
check_dims "$R" /scale "( 1 )" "quantize per tensor"
check_dims "$R" /zero_point "( 1 )" "quantize per tensor"
if [ -n "$H5DUMP" ]; then
    h5dump -H "$R" >"$OUT" 2>"$ERR" || fail "h5dump of the output"
    for name in mse sqnr_db clipped_fraction quant source quasar_version; do
        out_has "ATTRIBUTE \"$name\"" "output attributes"
    done
    out_has "H5T_IEEE_F32LE" "dequantized is float32"; out_has "H5T_STD_I32LE" "codes are int32"
    h5dump -a /source "$R" >"$OUT" 2>"$ERR" || fail "h5dump -a /source"
    out_has "$IN:/big" "source attribute"
    h5dump -a /quasar_version "$R" >"$OUT" 2>"$ERR" || fail "h5dump -a /quasar_version"
    out_has "\"$VERSION\"" "quasar_version attribute"
    h5dump -a /quant "$R" >"$OUT" 2>"$ERR" || fail "h5dump -a /quant"
    out_has "grid=uniform,bits=8,scheme=symmetric,gran=tensor,range=minmax,round=nearest-even,overflow=saturate,scale=float,div=divide" "quant attribute"
fi
ok "quantize writes /dequantized, /codes, /scale, /zero_point and the attributes"

q 0 "per channel" quantize "$IN" /big -o "$R" --quant int4,gran=channel,range=mse
check_dims "$R" /scale "( 4 )" "per channel"; check_dims "$R" /zero_point "( 4 )" "per channel"
check_dims "$R" /codes "( 4, 64 )" "per channel"
q 0 "per group" quantize "$IN" /big -o "$R" --quant int4 --granularity group:-1:16 --scheme asymmetric
check_dims "$R" /scale "( 4, 4 )" "per group"; check_dims "$R" /zero_point "( 4, 4 )" "per group"
q 0 "per channel on axis 1" quantize "$IN" /big -o "$R" --granularity channel:-1 --range percentile:99
check_dims "$R" /scale "( 64 )" "per channel on axis 1"
ok "per-channel and per-group parameters have the qparams shape"

for range in minmax percentile mse sqnr kl aciq aciq:gauss; do
    q 0 "range $range" quantize "$IN" /big -o "$R" --bits 6 --range "$range" --json
done
ok "every range method runs from the command line"

# exact codes with a fixed scale: -1/0.25 = -4, 0.375/0.25 = 1.5 (tie), 0.625/0.25 = 2.5 (tie), 2 -> 8 and -3 -> -12 clip
q 0 "fixed scale" quantize "$IN" /vec -o "$R" --bits 4 --scale 0.25 --json
check_values "$R" /codes "-4,2,2,7,-8" "fixed scale, nearest-even"
check_values "$R" /dequantized "-1,0.5,0.5,1.75,-2" "fixed scale, nearest-even"
check_values "$R" /scale "0.25" "fixed scale"
[ "$(json clipped_fraction)" = "0.4" ] || fail "fixed scale: clipped_fraction $(json clipped_fraction), expected 0.4"
[ "$(json elements)" = "5" ] || fail "fixed scale: elements $(json elements), expected 5"
[ "$(json scale_min)" = "0.25" ] || fail "fixed scale: scale_min"
# errors 0, 1/8, 1/8, 1/4, 1: exact in binary, so mse and max error are exact too
[ "$(json mse)" = "0.21875" ] || fail "fixed scale: mse $(json mse), expected 0.21875"
[ "$(json max_abs_error)" = "1" ] || fail "fixed scale: max_abs_error $(json max_abs_error), expected 1"
q 0 "fixed scale, flags after --quant" quantize "$IN" /vec -o "$R" --quant int4,round=floor --round nearest-away --scale 0.25 --json
check_values "$R" /codes "-4,2,3,7,-8" "fixed scale, nearest-away"
out_has '"quant": "grid=uniform,bits=4,scheme=symmetric,gran=tensor,range=minmax,round=nearest-away,' "flags apply after --quant"
q 0 "fixed scale and zero point" quantize "$IN" /asym -o "$R" --quant uint8 --scheme asymmetric --scale 0.5 --zero-point 3
check_values "$R" /codes "1,3,5,255" "fixed scale and zero point"
check_values "$R" /zero_point "3" "fixed scale and zero point"
q 0 "wrap" quantize "$IN" /vec -o "$R" --bits 4 --scale 0.25 --overflow wrap
check_values "$R" /codes "-4,2,2,-8,4" "overflow=wrap"
ok "fixed --scale/--zero-point gives the exact codes"

q 0 "per-channel scales from a dataset" quantize "$IN" /mat -o "$R" --granularity channel:0 --scale "$SCALES:/s"
check_values "$R" /codes "2,-4,6,2,-1,3" "per-channel scales"
check_values "$R" /scale "0.5,0.25" "per-channel scales"
q 0 "scales inside IN.h5" quantize "$IN" /mat -o "$R" --granularity channel --scale :/params/scale2 --zero-point :/params/zp2
check_values "$R" /codes "1,-2,3,1,0,2" "scales inside IN.h5"
q 1 "scale count mismatch" quantize "$IN" /mat -o "$R" --granularity channel --scale :/params/scale3
err_prefixed "scale count mismatch"; err_has "params/scale3" "scale count mismatch"; err_has "[3]" "scale count mismatch"
err_has "[2, 3]" "scale count mismatch"; err_has "[2]" "scale count mismatch"
mk "$IN" /params/scale2x1 "2 1" "1 0.5"
q 1 "scale dataset of the wrong shape" quantize "$IN" /mat -o "$R" --granularity channel --scale :/params/scale2x1
err_has "[2, 1]" "scale dataset of the wrong shape"
q 1 "missing scale dataset" quantize "$IN" /mat -o "$R" --scale :/nope
err_has "nope" "missing scale dataset"
q 2 "non-positive scale" quantize "$IN" /mat -o "$R" --scale -1
err_has "--scale" "non-positive scale"
q 2 "non-numeric scale" quantize "$IN" /mat -o "$R" --scale abc
err_has "--scale" "non-numeric scale"
q 1 "zero point with a symmetric scheme" quantize "$IN" /mat -o "$R" --scale 0.5 --zero-point 2
err_has "--zero-point" "zero point with a symmetric scheme"
ok "--scale/--zero-point datasets: per channel, inside IN.h5, count mismatches named"

q 0 "any numeric input type" quantize "$IN" /f64 -o "$R" --scale 0.5 --json
check_values "$R" /codes "1,-1,2" "float64 input"
q 0 "integer input" quantize "$IN" /ints -o "$R" --scale 1 --json
check_values "$R" /codes "1,-2,3" "int32 input"
check_values "$R" /dequantized "1,-2,3" "int32 input"
ok "float64 and int32 inputs are read as float32"

# ---- --json -----------------------------------------------------------------------
q 0 "--json" quantize "$IN" /big -o "$R" --quant int4,gran=channel --json
[ "$(wc -l <"$OUT")" -eq 1 ] || fail "--json prints one line"
for key in input output quant elements nonfinite mse sqnr_db max_abs_error clipped_fraction scale_min scale_max seconds; do
    grep -q "\"$key\": " "$OUT" || fail "--json lacks key $key"
done
[ "$(json elements)" = "256" ] || fail "--json: elements $(json elements), expected 256"
if command -v python3 >/dev/null 2>&1; then
    cp "$OUT" "$TMP/json"
    python3 -m json.tool "$TMP/json" >"$OUT" 2>"$ERR" || fail "--json output is not valid JSON"
fi
ok "--json prints one valid JSON object with the registry keys"

# JSON text is UTF-8: a file name in another encoding must not make it invalid
if command -v python3 >/dev/null 2>&1; then
    BAD=$(printf '%s/bad\377name.h5' "$TMP")
    cp "$IN" "$BAD" || fail "cp to a non-UTF-8 name"
    q 0 "--json with a non-UTF-8 file name" quantize "$BAD" /vec -o "$R" --scale 1 --json
    cp "$OUT" "$TMP/json"
    python3 -c 'import json, sys; d = json.load(open(sys.argv[1], encoding="utf-8")); assert d["input"].endswith("bad\ufffdname.h5:/vec")' \
        "$TMP/json" >"$OUT" 2>"$ERR" || fail "--json with a non-UTF-8 file name: not valid UTF-8 JSON"
    ok "--json stays valid UTF-8 with a file name that is not"
fi

q 0 "--json exact" quantize "$IN" /exact -o "$R" --scale 0.25 --json
[ "$(json sqnr_db)" = "null" ] || fail "--json: infinite sqnr_db should be null, got $(json sqnr_db)"
[ "$(json mse)" = "0" ] || fail "--json: mse should be 0, got $(json mse)"
ok "--json writes a non-finite metric as null"

# ---- NaN and Inf ------------------------------------------------------------------
q 1 "NaN with a range method" quantize "$IN" /nan -o "$R"
err_prefixed "NaN with a range method"; err_has "$IN" "NaN with a range method"; err_has "/nan" "NaN with a range method"
err_has "element 1" "NaN with a range method"
q 0 "NaN with a fixed scale" quantize "$IN" /nan -o "$R" --bits 4 --scale 0.5 --json
[ "$(json nonfinite)" = "2" ] || fail "nonfinite $(json nonfinite), expected 2"
check_values "$R" /codes "2,0,6,7" "NaN -> zero point, Inf -> qmax"
ok "NaN/Inf: an error with a range method, the documented rule with --scale"

# ---- runtime errors ---------------------------------------------------------------
q 1 "missing file" quantize "$TMP/nope.h5" /x -o "$R"
err_prefixed "missing file"; err_has "$TMP/nope.h5" "missing file"
q 1 "wrong dataset" quantize "$IN" /nope -o "$R"
err_prefixed "wrong dataset"; err_has "/nope" "wrong dataset"
q 1 "empty dataset" quantize "$IN" /empty -o "$R"
err_has "/empty" "empty dataset"
q 1 "channel axis out of range" quantize "$IN" /mat -o "$R" --quant gran=channel:3
err_prefixed "channel axis out of range"; err_has "/mat" "channel axis out of range"
q 1 "not an HDF5 file" quantize "$TMP/big.txt" /x -o "$R"
err_has "big.txt" "not an HDF5 file"
q 1 "output folder missing" quantize "$IN" /vec -o "$TMP/no/such/dir/o.h5" --scale 1
err_has "$TMP/no/such/dir" "output folder missing"
q 1 "pow2 scale beyond float32" quantize "$IN" /vec -o "$R" --scale 3e38 --scale-type pow2
err_has "beyond the float32 range" "pow2 scale beyond float32"
ok "runtime errors exit 1 naming the file and dataset"

# OUT.h5 is renamed into place: it must never replace a pipe (or a device:
# as root, -o /dev/null used to replace /dev/null with a regular file) or a folder
mkfifo "$TMP/fifo.h5" || fail "mkfifo"
q 1 "output is a pipe" quantize "$IN" /vec -o "$TMP/fifo.h5" --scale 1
err_prefixed "output is a pipe"; err_has "$TMP/fifo.h5" "output is a pipe"; err_has "not a regular file" "output is a pipe"
[ -p "$TMP/fifo.h5" ] || fail "output is a pipe: the pipe was replaced"
mkdir "$TMP/dir.h5" || fail "mkdir"
q 1 "output is a folder" quantize "$IN" /vec -o "$TMP/dir.h5" --scale 1
err_has "Is a directory" "output is a folder"
[ -d "$TMP/dir.h5" ] || fail "output is a folder: the folder was replaced"
ok "an output that is a pipe or a folder is refused and left alone"

# results that cannot be printed are an error, not a silent success
if [ -w /dev/full ]; then
    LAST="quasar quantize $IN /vec -o $R --scale 1 --json >/dev/full"
    "$QUASAR" quantize "$IN" /vec -o "$R" --scale 1 --json >/dev/full 2>"$ERR"
    rc=$?
    [ "$rc" -eq 1 ] || fail "stdout on a full disk (exit $rc, expected 1)"
    err_has "quasar: cannot write to standard output" "stdout on a full disk"
    ok "a failed write to stdout exits 1"
fi

# a failed run never harms an existing output and leaves no temporary file
q 0 "first output" quantize "$IN" /big -o "$R" --quant int8
cp "$R" "$TMP/r.copy"
q 1 "failing run over an existing output" quantize "$IN" /nan -o "$R"
cmp -s "$R" "$TMP/r.copy" || fail "a failed run changed the existing output"
q 1 "failing run over an existing output (late failure)" quantize "$IN" /mat -o "$R" --quant gran=channel:3
cmp -s "$R" "$TMP/r.copy" || fail "a failed run changed the existing output"
for f in "$TMP"/r.h5.tmp* "$TMP"/*.tmp-*; do
    [ -e "$f" ] && fail "temporary file left behind: $f"
done
ok "a failed run leaves an existing OUT.h5 byte-identical and no temporary file"

# A full disk at every point of the writing: a 64 KiB file system filled to a
# different level each time, in a private mount namespace (skipped where the
# system allows none). Each run either succeeds with the right codes or fails
# (exit 1, "No space left on device") leaving the old OUT.h5 as it was; it
# never crashes (HDF5 1.10 crashed at exit after a failed flush) and never
# commits a file that lost a write.
if [ -n "$H5DUMP" ] && command -v unshare >/dev/null 2>&1; then
    q 0 "reference for the full disk" quantize "$IN" /big -o "$TMP/ref.h5" --quant int4,gran=channel
    values "$TMP/ref.h5" /codes >"$TMP/ref.codes"
    cat >"$TMP/full.sh" <<'EOF'
mkdir -p "$SMALL" && mount -t tmpfs -o size=64k tmpfs "$SMALL" 2>/dev/null || exit 77
for k in 0 4 8 12 16 20 24 28 32 36 40 44 48 52 56 60; do
    rm -f "$SMALL"/*
    head -c $((k * 1024)) /dev/zero >"$SMALL/filler" 2>/dev/null
    echo existing >"$SMALL/o.h5" || continue
    "$QUASAR" quantize "$IN" /big -o "$SMALL/o.h5" --quant int4,gran=channel >"$TMP/full.out" 2>"$TMP/full.err"
    rc=$?
    if [ $rc -eq 0 ]; then
        "$H5DUMP" -d /codes -y -w 0 "$SMALL/o.h5" | sed -n '/DATA {/,/^ *}/p' | sed '1d;$d' | tr -d ' \n' >"$TMP/full.codes"
        cmp -s "$TMP/full.codes" "$TMP/ref.codes" || { echo "filled $k KiB: exit 0 but the codes differ"; exit 1; }
    elif [ $rc -eq 1 ]; then
        grep -q "^quasar: .*No space left on device" "$TMP/full.err" || { echo "filled $k KiB:"; cat "$TMP/full.err"; exit 1; }
        [ "$(cat "$SMALL/o.h5")" = existing ] || { echo "filled $k KiB: OUT.h5 changed"; exit 1; }
    else
        echo "filled $k KiB: exit $rc"; cat "$TMP/full.err"; exit 1
    fi
    ls "$SMALL" | grep -q 'tmp-' && { echo "filled $k KiB: temporary file left"; exit 1; }
done
exit 0
EOF
    LAST="unshare -m sh $TMP/full.sh"
    if [ "$(id -u)" = 0 ]; then NS=-m; else NS=-rm; fi
    SMALL="$TMP/small" QUASAR="$QUASAR" IN="$IN" TMP="$TMP" H5DUMP="$H5DUMP" \
        unshare $NS sh "$TMP/full.sh" >"$OUT" 2>"$ERR"
    rc=$?
    if [ "$rc" -eq 0 ]; then
        ok "a full disk at any point: exit 1 with the reason and the old OUT.h5 intact, or the right file"
    elif [ "$rc" -eq 77 ] || grep -q -i 'unshare' "$ERR"; then
        echo "# no private mount namespace here: skipping the full-disk test"
    else
        fail "a full disk (exit $rc)"
    fi
fi

cp "$IN" "$TMP/self.h5"
q 0 "output replaces its own input" quantize "$TMP/self.h5" /vec -o "$TMP/self.h5" --bits 4 --scale 0.25
check_values "$TMP/self.h5" /codes "-4,2,2,7,-8" "output replaces its own input"
ok "the output may replace the input file"

# threads do not change results
q 0 "1 thread" quantize "$IN" /big -o "$TMP/t1.h5" --quant int4,gran=channel,round=stochastic:3 --threads 1
q 0 "3 threads" quantize "$IN" /big -o "$TMP/t3.h5" --quant int4,gran=channel,round=stochastic:3 --threads 3
if [ -n "$H5DUMP" ]; then
    [ "$(values "$TMP/t1.h5" /codes)" = "$(values "$TMP/t3.h5" /codes)" ] || fail "codes differ between 1 and 3 threads"
fi
ok "--threads does not change the codes"

# ---- info ---------------------------------------------------------------------------
q 0 "help info" help info
out_has "Usage: quasar info MODEL.h5" "help info"; out_has "--json" "help info"
q 2 "info without a model" info
err_has "info: expected a model file" "info without a model"
q 2 "info with two files" info a.h5 b.h5
err_has "unexpected argument 'b.h5'" "info with two files"
q 2 "unknown info option" info a.h5 --frobnicate
err_has "unknown option '--frobnicate'" "unknown info option"
q 1 "info on a missing file" info "$TMP/nope.h5"
err_prefixed "info on a missing file"; err_has "cannot open model '$TMP/nope.h5'" "info on a missing file"
q 1 "info on an HDF5 file that is not a model" info "$IN"
err_has "is not a quasar model: the root group has no attribute 'format'" "info on a non-model"
head -c 1000 "$IN" >"$TMP/cut.h5"
q 1 "info on a truncated file" info "$TMP/cut.h5"
err_has "truncated or corrupt" "info on a truncated file"
ok "quasar info: usage and bad files (exit 2 and 1, the file named)"

# the default models, once models/ holds them: every layer listed, totals, --json keys
for m in "${srcdir:-.}"/models/*.h5; do
    [ -f "$m" ] || continue
    q 0 "info $m" info "$m"
    out_has "parameters" "info $m"; out_has "MACs" "info $m"; out_has "conv2d" "info $m"
    q 0 "info --json $m" info "$m" --json
    [ -n "$(json params)" ] && [ -n "$(json macs)" ] && [ -n "$(json model_bytes)" ] || fail "info --json $m: params, macs, model_bytes"
    out_has '"layers": [{"index": 0' "info --json $m"
    ok "quasar info $(basename "$m") and --json"
done

echo "1..$n"
exit 0
