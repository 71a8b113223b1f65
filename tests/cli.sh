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
err_has "quasar: --quant: unknown key 'bitz' (expected one of: grid, bits, scheme, gran, range, round, overflow, scale, div, block)" "bad spec key"
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

# ---- info --stats (sim/stats.c, docs/statistics.md) -----------------------------------
q 0 "help info --stats" help info
out_has "--stats" "help info"; out_has "--hist-out FILE.h5" "help info"; out_has "--no-fold" "help info"
q 2 "--data without --stats" info a.h5 --data fmnist:train
err_has "info: --data applies only with --stats" "--data without --stats"
q 2 "--no-fold without --stats" info a.h5 --no-fold
err_has "--no-fold applies only with --stats" "--no-fold without --stats"
q 2 "--images 0" info a.h5 --stats --images 0
err_has "--images" "--images 0"
q 2 "--threads 0" info a.h5 --stats --threads 0
err_has "--threads" "--threads 0"
q 2 "--outlier-k abc" info a.h5 --stats --outlier-k abc
err_has "--outlier-k" "--outlier-k abc"
ok "info --stats usage errors exit 2"

STATS_MODEL="${srcdir:-.}/models/fmnist-dwsep.h5"
if [ -f "$STATS_MODEL" ]; then
    # 6 float32 images 1x28x28 with pixels in [0, 1] (0 and 1 included) and int32 labels
    awk 'BEGIN { for (i = 0; i < 6; i++) for (k = 0; k < 784; k++) printf "%g ", ((i * 31 + k * 7) % 256) / 255; print "" }' >"$TMP/simg.txt"
    SDATA=$TMP/sdata.h5
    mk "$SDATA" /images "6 1 28 28" "$(cat "$TMP/simg.txt")"
    mk "$SDATA" /labels "6" "0 1 2 3 4 5" IN 32
    mk "$TMP/sbad.h5" /images "2 1 4 4" "$(awk 'BEGIN { for (k = 0; k < 32; k++) printf "0.5 "; print "" }')"
    mk "$TMP/sbad.h5" /labels "2" "0 1" IN 32

    q 0 "info --stats" info "$STATS_MODEL" --stats --data "$SDATA" --images 4 --threads 1
    out_has "parameters" "info --stats keeps the model table"
    out_has "the BN-folded graph (7 batchnorms folded)" "info --stats"
    out_has "activations over 4 images of $SDATA" "info --stats"
    out_has "ch.spread" "info --stats"; out_has "kurtosis" "info --stats"
    grep -q '^  stem  *16x1x3x3 ' "$OUT" || fail "info --stats: a weights row for stem"
    # the input row: (0 - 0.286) / 0.353 and (1 - 0.286) / 0.353
    grep -q '^   0  input  *-0\.8102  *2\.023 ' "$OUT" || fail "info --stats: the input's min and max"
    sed -n '/^activations$/,$p' "$OUT" | grep -q ' stem\.bn ' && fail "info --stats: no batchnorm rows after folding"
    q 0 "info --stats --no-fold" info "$STATS_MODEL" --stats --no-fold --data "$SDATA" --images 4
    out_has "the model as stored (--no-fold)" "--no-fold"
    sed -n '/^activations$/,$p' "$OUT" | grep -q '^  *2  stem\.bn  ' || fail "--no-fold: the batchnorm's activations"
    ok "quasar info --stats: weight and activation tables, folded or not"

    q 0 "info --stats --json, 1 thread" info "$STATS_MODEL" --stats --json --data "$SDATA" --images 5 --threads 1 --seed 3
    out_has '"stats": {"graph": "folded", "folded": 7' "--json stats"
    out_has '"weights": {"stem": {"shape": [16, 1, 3, 3], "count": 144' "--json stats weights"
    out_has '"acts": {"input": {"shape": [1, 28, 28], "count": 3920' "--json stats acts"
    out_has '"images": 5, "seed": 3' "--json stats images and seed"
    sed 's/"threads": [0-9]*//; s/"seconds": [^,]*//' "$OUT" >"$TMP/s1.json"
    q 0 "info --stats --json, 2 threads" info "$STATS_MODEL" --stats --json --data "$SDATA" --images 5 --threads 2 --seed 3
    sed 's/"threads": [0-9]*//; s/"seconds": [^,]*//' "$OUT" >"$TMP/s2.json"
    cmp -s "$TMP/s1.json" "$TMP/s2.json" || fail "info --stats: 1 and 2 threads give different figures"
    q 0 "info --stats --json, another seed" info "$STATS_MODEL" --stats --json --data "$SDATA" --images 5 --threads 2 --seed 4
    sed 's/"threads": [0-9]*//; s/"seconds": [^,]*//' "$OUT" >"$TMP/s3.json"
    cmp -s "$TMP/s1.json" "$TMP/s3.json" && fail "info --stats: another seed, another subset"
    ok "quasar info --stats --json: keys per layer, the same for 1 and 2 threads"

    q 0 "info --stats --hist-out" info "$STATS_MODEL" --stats --data "$SDATA" --images 6 --bins 32 --hist-out "$TMP/hist.h5"
    out_has "histograms (32 bins) written to $TMP/hist.h5" "--hist-out"
    [ -f "$TMP/hist.h5" ] || fail "--hist-out: no file"
    check_dims "$TMP/hist.h5" /weights/b1.dw/hist "( 32 )" "--hist-out"
    check_dims "$TMP/hist.h5" /weights/b1.dw/edges "( 33 )" "--hist-out"
    check_dims "$TMP/hist.h5" /weights/b3.pw/channel_max "( 128 )" "--hist-out"
    check_dims "$TMP/hist.h5" /acts/fc/channel_min "( 10 )" "--hist-out"
    if [ -n "$H5DUMP" ]; then
        # every value of the 6 images is in the input's histogram
        total=$(values "$TMP/hist.h5" /acts/input/hist | tr ',' '\n' | awk '{ s += $1 } END { print s }')
        [ "$total" = 4704 ] || fail "--hist-out: the input histogram holds $total values, expected 6 x 784"
    fi
    q 1 "--hist-out into a missing folder" info "$STATS_MODEL" --stats --data "$SDATA" --images 2 --hist-out "$TMP/no/such/h.h5"
    err_prefixed "--hist-out into a missing folder"; err_has "$TMP/no/such/h.h5" "--hist-out into a missing folder"
    ok "quasar info --stats --hist-out writes the HDF5 histograms"

    q 1 "info --stats on images of the wrong shape" info "$STATS_MODEL" --stats --data "$TMP/sbad.h5"
    err_has "has 1x4x4 images but model 'fmnist-dwsep' takes 1x28x28" "wrong image shape"
    q 1 "info --stats on a missing dataset" info "$STATS_MODEL" --stats --data "$TMP/none.h5"
    err_prefixed "missing dataset"
    ok "quasar info --stats: bad datasets exit 1 with the reason"
else
    echo "# $STATS_MODEL not found: skipping the info --stats runs"
fi

# ---- sensitivity (sim/sensitivity.c, docs/sensitivity.md) -----------------------------
q 0 "help sensitivity" help sensitivity
out_has "Usage: quasar sensitivity MODEL.h5" "help sensitivity"; out_has "all but" "help sensitivity"
out_has "--calib-images N" "help sensitivity"
q 0 "--help lists sensitivity" --help
out_has "sensitivity" "--help lists sensitivity"
q 2 "sensitivity without a model" sensitivity
err_has "sensitivity: expected MODEL.h5" "sensitivity without a model"
q 2 "sensitivity with two models" sensitivity a.h5 b.h5
err_has "unexpected argument 'b.h5'" "sensitivity with two models"
q 2 "unknown sensitivity option" sensitivity a.h5 --frobnicate
err_has "sensitivity: unknown option '--frobnicate'" "unknown sensitivity option"
q 2 "sensitivity --limit 0" sensitivity a.h5 --limit 0
err_has "--limit" "sensitivity --limit 0"
q 2 "sensitivity --threads 0" sensitivity a.h5 --threads 0
err_has "--threads" "sensitivity --threads 0"
q 2 "sensitivity --preset twice" sensitivity a.h5 --preset w4a4 --preset w8a8
err_has "--preset given twice" "sensitivity --preset twice"
q 1 "sensitivity on a missing model" sensitivity "$TMP/nope.h5" --data "$TMP/nope-data.h5"
err_prefixed "sensitivity on a missing model"
ok "quasar sensitivity: help and usage errors"

SENS_MODEL="${srcdir:-.}/models/fmnist-dwsep.h5"
if [ -f "$SENS_MODEL" ]; then
    # 24 float32 images 1x28x28 with pixels in [0, 1] and labels 0..9: evaluation and calibration data
    awk 'BEGIN { for (i = 0; i < 24; i++) for (k = 0; k < 784; k++) printf "%g ", ((i * 37 + k * (i % 5 + 3)) % 256) / 255; print "" }' >"$TMP/senimg.txt"
    SENDATA=$TMP/sendata.h5
    mk "$SENDATA" /images "24 1 28 28" "$(cat "$TMP/senimg.txt")"
    mk "$SENDATA" /labels "24" "$(awk 'BEGIN { for (i = 0; i < 24; i++) printf "%d ", i % 10; print "" }')" IN 32
    mk "$TMP/senbad.h5" /images "2 1 4 4" "$(awk 'BEGIN { for (k = 0; k < 32; k++) printf "0.5 "; print "" }')"
    mk "$TMP/senbad.h5" /labels "2" "0 1" IN 32
    SENS="$SENS_MODEL --data $SENDATA --calib-data $SENDATA --calib-images 24 --preset w4a4"

    q 0 "sensitivity" sensitivity $SENS --threads 1 --limit 20
    out_has "data        $SENDATA (the first 20 of 24 images)" "sensitivity"
    out_has "calibration $SENDATA, 24 images (seed 1)" "sensitivity"
    out_has "float       top-1 " "sensitivity"; out_has "quantized   top-1 " "sensitivity"
    out_has "units       10, 21 fake-quant runs of 20 images" "sensitivity"
    out_has "only this unit quantized" "sensitivity"; out_has "all but this unit" "sensitivity"
    grep -q '^ *[0-9]*  stem  *conv2d  *w+a  *stem\.relu6  *|' "$OUT" || fail "sensitivity: the stem row"
    grep -q '^ *[0-9]*  input  *input  *a  *input  *|' "$OUT" || fail "sensitivity: the input row"
    grep -q '^ *[0-9]*  gap  *gap  *a  *gap  *|' "$OUT" || fail "sensitivity: the gap row"
    [ "$(grep -c '^ *[0-9][0-9]*  [a-z0-9.]*  .* | ' "$OUT")" = 10 ] || fail "sensitivity: 10 unit rows"
    grep -q '^   1  ' "$OUT" && grep -q '^  10  ' "$OUT" || fail "sensitivity: ranks 1 to 10"
    ok "quasar sensitivity: a table of the 10 units of fmnist-dwsep"

    q 0 "sensitivity --json, 1 thread" sensitivity $SENS --json --threads 1 --batch 7
    out_has '"units": [{"rank": 1, "name": ' "sensitivity --json"
    out_has '"runs": 21' "sensitivity --json"
    [ -n "$(json float_top1)" ] && [ -n "$(json logit_sqnr_db)" ] && [ -n "$(json only_drop)" ] || fail "sensitivity --json keys"
    out_has '"name": "input", "op": "input", "point": "input", "unit": "a", "weights": false, "bias": false, "acts": true' "sensitivity --json"
    out_has '"name": "stem", "op": "conv2d", "point": "stem.relu6", "unit": "w+a", "weights": true, "bias": true' "sensitivity --json"
    sed 's/"threads": [0-9]*//; s/"seconds": [^,]*//' "$OUT" >"$TMP/sen1.json"
    q 0 "sensitivity --json, 2 threads" sensitivity $SENS --json --threads 2 --batch 24
    sed 's/"threads": [0-9]*//; s/"seconds": [^,]*//' "$OUT" >"$TMP/sen2.json"
    cmp -s "$TMP/sen1.json" "$TMP/sen2.json" || fail "sensitivity: 1 and 2 threads (and other batches) differ"
    ok "quasar sensitivity --json: the same for 1 and 2 threads"

    q 0 "sensitivity with a float layer" sensitivity $SENS --layer fc:float --limit 8
    grep -q '^ *[0-9]*  fc  *linear  *float  *fc  *|' "$OUT" || fail "sensitivity: fc:float gives a float unit"
    out_has "units       10, 19 fake-quant runs of 8 images" "sensitivity with a float layer"
    ok "quasar sensitivity: a unit left in float is listed, not run"

    # a quantized-model file: its calibration as it is, the same units and figures
    q 0 "quantize-model for sensitivity" quantize-model "$SENS_MODEL" -o "$TMP/senq.h5" --calib-data "$SENDATA" --calib-images 24 --preset w4a4
    q 0 "sensitivity QMODEL --json" sensitivity "$TMP/senq.h5" --data "$SENDATA" --json --threads 2
    sed -n 's/.*"units": //p' "$OUT" >"$TMP/senq.units"
    sed -n 's/.*"units": //p' "$TMP/sen1.json" >"$TMP/sen1.units"
    [ -s "$TMP/senq.units" ] && cmp -s "$TMP/senq.units" "$TMP/sen1.units" || fail "sensitivity: a quantized model gives other figures than its float model with the same options"
    q 1 "sensitivity QMODEL with quantization options" sensitivity "$TMP/senq.h5" --data "$SENDATA" --preset w8a8
    err_has "is a quantized model" "sensitivity QMODEL with quantization options"
    ok "quasar sensitivity on a quantized-model file"

    q 1 "sensitivity on images of the wrong shape" sensitivity "$SENS_MODEL" --data "$TMP/senbad.h5" --calib-data "$SENDATA" --calib-images 8
    err_has "sensitivity: dataset '$TMP/senbad.h5' has 1x4x4 images but model 'fmnist-dwsep' takes 1x28x28" "wrong image shape"
    q 1 "sensitivity with a bad override" sensitivity "$SENS_MODEL" --data "$SENDATA" --layer conv9:float
    err_has "'conv9' is not a layer of the model" "sensitivity with a bad override"
    ok "quasar sensitivity: bad data and configuration exit 1 with the reason"
else
    echo "# $SENS_MODEL not found: skipping the sensitivity runs"
fi

# ---- grids (docs/spec.md, "Grids") -------------------------------------------------------
G=$TMP/g.h5
q 0 "quantize --grid ls-2 per channel" quantize "$IN" /big -o "$G" --grid ls-2 --granularity channel
out_has "grid=ls-2,bits=2,scheme=symmetric,gran=channel:0" "quantize --grid ls-2"
check_dims "$G" /levels "( 4, 4 )" "quantize --grid ls-2"
check_dims "$G" /scale "( 4 )" "quantize --grid ls-2"
q 0 "quantize --grid mxfp4" quantize "$IN" /big -o "$G" --quant grid=mxfp4,block=-1:16:up --json
grep -q '"quant": "grid=mxfp4,bits=4,[^"]*,block=-1:16:up"' "$OUT" || fail "quantize --grid mxfp4: the block in the spec"
q 0 "quantize --grid fp8-e4m3 --scale-type none" quantize "$IN" /big -o "$G" --grid fp8-e4m3 --scale-type none
q 2 "a fixed-width grid with other bits" quantize "$IN" /big -o "$G" --grid ls-2 --bits 4
err_has "grid=ls-2 is a 2-bit grid, so bits=4 conflicts with it" "a fixed-width grid with other bits"
q 2 "a block grid per channel" quantize "$IN" /big -o "$G" --grid mxfp4 --granularity channel
err_has "so gran must be tensor" "a block grid per channel"
q 2 "an unknown grid" quantize "$IN" /big -o "$G" --grid fp5
err_has "key 'grid': unknown value 'fp5', expected one of: uniform, ls-1, ls-2" "an unknown grid"
q 1 "--scale with a codebook grid" quantize "$IN" /big -o "$TMP/g2.h5" --grid kmeans-3 --scale 0.1
err_has "--scale: grid=kmeans sets its own levels" "--scale with a codebook grid"
[ -e "$TMP/g2.h5" ] && fail "--scale with a codebook grid: an output was written"
ok "quasar quantize on the non-uniform grids, and their conflicts"

# ---- quantize-model and quantized-model files (sim/qmodel.c, docs/model-format.md) ------
q 0 "help quantize-model" help quantize-model
out_has "Usage: quasar quantize-model MODEL.h5 -o QMODEL.h5" "help quantize-model"
out_has "--calib-images" "help quantize-model"; out_has "--layers" "help quantize-model"
q 0 "--help lists quantize-model" --help
out_has "quantize-model" "--help lists quantize-model"
q 2 "quantize-model without arguments" quantize-model
err_has "quasar: quantize-model: expected MODEL.h5" "quantize-model without arguments"
q 2 "quantize-model without -o" quantize-model a.h5
err_has "quantize-model: expected -o QMODEL.h5" "quantize-model without -o"
q 2 "quantize-model with two models" quantize-model a.h5 b.h5 -o c.h5
err_has "unexpected argument 'b.h5'" "quantize-model with two models"
q 2 "quantize-model -o twice" quantize-model a.h5 -o b.h5 -o c.h5
err_has "-o/--output given twice" "quantize-model -o twice"
q 2 "unknown quantize-model option" quantize-model a.h5 -o b.h5 --frobnicate
err_has "quantize-model: unknown option '--frobnicate'" "unknown quantize-model option"
q 2 "quantize-model onto its input" quantize-model a.h5 -o a.h5
err_has "the output 'a.h5' is the input model" "quantize-model onto its input"
q 2 "quantize-model with a bad preset" quantize-model a.h5 -o b.h5 --preset w99a8
err_has "--preset: unknown preset 'w99a8'" "quantize-model with a bad preset"
q 2 "quantize-model with a bad spec" quantize-model a.h5 -o b.h5 --weights bitz=4
err_has "unknown key 'bitz'" "quantize-model with a bad spec"
q 2 "quantize-model --threads 0" quantize-model a.h5 -o b.h5 --threads 0
err_has "--threads" "quantize-model --threads 0"
q 1 "quantize-model on a missing model" quantize-model "$TMP/nope.h5" -o "$TMP/nope-q.h5"
err_has "cannot open model '$TMP/nope.h5'" "quantize-model on a missing model"
[ -e "$TMP/nope-q.h5" ] && fail "quantize-model on a missing model: an output was written"
ok "quasar quantize-model: help, usage errors (exit 2) and a missing model (exit 1)"

QM_MODEL="${srcdir:-.}/models/fmnist-dwsep.h5"
if [ -f "$QM_MODEL" ]; then
    # 32 float32 images 1x28x28 (pixels in [0, 1]) and labels: calibration and evaluation data
    awk 'BEGIN { for (i = 0; i < 32; i++) for (k = 0; k < 784; k++) printf "%g ", ((i * 53 + k * (i % 7 + 2)) % 256) / 255; print "" }' >"$TMP/qmimg.txt"
    QMDATA=$TMP/qmdata.h5
    mk "$QMDATA" /images "32 1 28 28" "$(cat "$TMP/qmimg.txt")"
    mk "$QMDATA" /labels "32" "$(awk 'BEGIN { for (i = 0; i < 32; i++) printf "%d ", (i * 3) % 10; print "" }')" IN 32
    QOPTS="--preset w4a8 --layer first:w8a8 --acts range=percentile:99.9 --calib-data $QMDATA --calib-images 20"
    QM=$TMP/qm.h5

    q 0 "quantize-model" quantize-model "$QM_MODEL" -o "$QM" $QOPTS --threads 2
    [ -f "$QM" ] || fail "quantize-model: no output file"
    out_has "model       fmnist-dwsep ($QM_MODEL)" "quantize-model"
    out_has "folded      7 batchnorms" "quantize-model"
    out_has "layer first: weights=bits=8" "quantize-model"
    out_has "calibration $QMDATA, 20 images in batches of 20 (seed 1), 2 threads" "quantize-model"
    out_has "weights     8 of 8 conv/linear layers quantized; lowest SQNR" "quantize-model"
    out_has "biases      8 quantized to integers at s_w*s_x" "quantize-model"
    out_has "activations 10 quantization points calibrated" "quantize-model"
    out_has "output      $QM (" "quantize-model"
    ls "$TMP" | grep -q '^qm\.h5\.tmp-' && fail "quantize-model: a temporary file was left"
    ok "quasar quantize-model writes a quantized model and a summary"

    if [ -n "$H5DUMP" ]; then
        check_dims "$QM" /nodes/0001_stem/quant/weights/codes "( 16, 1, 3, 3 )" "quantized model layout"
        check_dims "$QM" /nodes/0001_stem/quant/bias/codes "( 16 )" "quantized model layout"
        check_dims "$QM" /nodes/0002_stem.relu6/quant/acts/scale "( 1 )" "quantized model layout"
        "$H5DUMP" -H -d /nodes/0003_b1.dw/quant/weights/codes "$QM" | grep -q H5T_STD_I8LE || fail "4-bit codes stored as int8"
        "$H5DUMP" -a /format_version "$QM" | grep -q '(0): 2' || fail "format_version 2"
        "$H5DUMP" -a /quant/calib_images "$QM" | grep -q '(0): 20' || fail "/quant calib_images"
        "$H5DUMP" -a /nodes/0016_flatten/quant/acts/shares "$QM" | grep -q '"gap"' || fail "flatten shares gap's grid"
        ok "the quantized model's layout (h5dump)"
    fi

    q 0 "info on a quantized model" info "$QM"
    out_has "fmnist-dwsep ($QM)" "info on a quantized model"
    grep -q 'batchnorm' "$OUT" && fail "info on a quantized model: the folded graph has no batchnorm"
    ok "quasar info reads a quantized model as its folded float model"

    # eval QMODEL is eval MODEL with the same options, bit for bit (but for the file name and speed)
    qm_strip() { sed 's/"model": "[^"]*", //; s/"img_s": [^,]*, //; s/"seconds": [^,]*, //; s/"threads": [0-9]*, //' "$OUT"; }
    q 0 "eval QMODEL" eval "$QM" --data "$QMDATA" --json --threads 1
    [ "$(json images)" = 32 ] || fail "eval QMODEL: 32 images"
    [ -n "$(json agreement)" ] && [ -n "$(json logit_sqnr_db)" ] || fail "eval QMODEL: agreement and logit SQNR"
    qm_strip >"$TMP/qm-eval1.json"
    q 0 "eval MODEL with the same options" eval "$QM_MODEL" --data "$QMDATA" --json --threads 2 $QOPTS
    qm_strip >"$TMP/qm-eval2.json"
    cmp -s "$TMP/qm-eval1.json" "$TMP/qm-eval2.json" || fail "eval QMODEL and eval MODEL with the same options differ"
    q 0 "eval QMODEL --layers" eval "$QM" --data "$QMDATA" --layers --limit 8
    out_has "calibration $QMDATA, 20 images (seed 1)" "eval QMODEL --layers"
    grep -q '^b1\.dw  *conv2d  *4-bit sym channel minmax' "$OUT" || fail "eval QMODEL --layers: b1.dw's 4-bit weights"
    ok "quasar eval QMODEL gives the figures of eval MODEL with the same options"

    q 1 "eval QMODEL with quantization options" eval "$QM" --data "$QMDATA" --weights bits=4
    err_has "is a quantized model: its calibrated quantizers are used as they are" "eval QMODEL --weights"
    q 1 "quantize-model on a quantized model" quantize-model "$QM" -o "$TMP/qm2.h5" --calib-data "$QMDATA"
    err_has "'$QM' is already a quantized model" "quantize-model on a quantized model"
    [ -e "$TMP/qm2.h5" ] && fail "quantize-model on a quantized model: an output was written"
    cp "$QM_MODEL" "$TMP/float.h5"
    ln -s float.h5 "$TMP/float-link.h5"
    q 2 "quantize-model onto its input through a link" quantize-model "$TMP/float-link.h5" -o "$TMP/float.h5"
    err_has "is the input model" "quantize-model onto its input through a link"
    cmp -s "$QM_MODEL" "$TMP/float.h5" || fail "quantize-model changed its input"
    ok "quantize-model and eval refuse what would mix a float and a quantized model"

    # non-uniform grids through a quantized-model file: the same figures as quantizing on the fly
    GOPTS="--weights grid=kmeans-3 --acts grid=fp8-e4m3 --calib-data $QMDATA --calib-images 20"
    q 0 "quantize-model on kmeans-3 weights and fp8 activations" quantize-model "$QM_MODEL" -o "$TMP/qg.h5" $GOPTS
    check_dims "$TMP/qg.h5" /nodes/0001_stem/quant/weights/levels "( 16, 8 )" "codebook levels in the file"
    q 0 "eval the grid QMODEL" eval "$TMP/qg.h5" --data "$QMDATA" --json --threads 1
    qm_strip >"$TMP/qg-eval1.json"
    q 0 "eval MODEL on the same grids" eval "$QM_MODEL" --data "$QMDATA" --json --threads 2 $GOPTS
    qm_strip >"$TMP/qg-eval2.json"
    cmp -s "$TMP/qg-eval1.json" "$TMP/qg-eval2.json" || fail "grid QMODEL and MODEL on the same grids differ"
    q 0 "eval --layers names the grids" eval "$TMP/qg.h5" --data "$QMDATA" --layers --limit 8
    grep -q '^b1\.dw  *conv2d  *kmeans-3 channel minmax' "$OUT" || fail "eval --layers: the kmeans-3 weights"
    q 1 "the integer engine on ls-2 weights" eval "$QM_MODEL" --data "$QMDATA" --engine int --weights grid=ls-2 \
        --calib-data "$QMDATA" --calib-images 20
    err_has "weights on grid ls-2: the integer engine runs sign-basis grids of one basis" "int engine on ls-2"
    q 0 "the integer engine on ls-t weights" eval "$QM_MODEL" --data "$QMDATA" --engine int --weights grid=ls-t \
        --calib-data "$QMDATA" --calib-images 20 --json
    [ -n "$(json top1)" ] || fail "int engine on ls-t: top1"
    ok "grids through quantized-model files, and the integer engine's sign-basis path"

    # a failed run leaves the existing output as it was, and no temporary file
    cp "$QM" "$TMP/qm-keep.h5"
    q 1 "quantize-model with an unknown layer" quantize-model "$QM_MODEL" -o "$QM" --layer conv9:float --calib-data "$QMDATA"
    err_has "'conv9' is not a layer of the model" "quantize-model with an unknown layer"
    q 1 "quantize-model with bad calibration data" quantize-model "$QM_MODEL" -o "$QM" --calib-data "$TMP/nope-data.h5"
    err_prefixed "quantize-model with bad calibration data"
    cmp -s "$QM" "$TMP/qm-keep.h5" || fail "a failed quantize-model changed the existing output"
    q 1 "quantize-model into a missing folder" quantize-model "$QM_MODEL" -o "$TMP/no/such/q.h5" --calib-data "$QMDATA" --calib-images 4
    err_has "$TMP/no/such/q.h5" "quantize-model into a missing folder"
    ls "$TMP" | grep -q '\.tmp-' && fail "a failed quantize-model left a temporary file"
    # a successful one replaces it
    q 0 "quantize-model over an existing output" quantize-model "$QM_MODEL" -o "$QM" --preset w8a8 --calib-data "$QMDATA" --calib-images 8
    cmp -s "$QM" "$TMP/qm-keep.h5" && fail "quantize-model did not replace the existing output"
    q 0 "eval the replaced output" eval "$QM" --data "$QMDATA" --limit 4
    out_has "calibration $QMDATA, 8 images (seed 1)" "eval the replaced output"
    ok "quantize-model: a failed run keeps the existing output, a successful one replaces it"

    # a quantized model whose content is wrong: the node and the problem
    head -c 3000 "$QM" >"$TMP/qm-cut.h5"
    q 1 "eval a truncated quantized model" eval "$TMP/qm-cut.h5" --data "$QMDATA"
    err_has "truncated or corrupt" "eval a truncated quantized model"
    ok "eval of a truncated quantized model exits 1 with the reason"

    q 0 "quantize-model --json, 1 thread" quantize-model "$QM_MODEL" -o "$TMP/qj1.h5" $QOPTS --json --threads 1
    [ "$(json layers_quantized)" = 8 ] && [ "$(json points_calibrated)" = 10 ] && [ "$(json biases_quantized)" = 8 ] ||
        fail "quantize-model --json: layers_quantized, points_calibrated, biases_quantized"
    [ "$(json folded_batchnorms)" = 7 ] && [ "$(json calibration_images)" = 20 ] || fail "quantize-model --json: folded, images"
    out_has '"layers": [{"name": "input", "op": "input", "acts": "grid=uniform,bits=8,scheme=asymmetric' "quantize-model --json"
    q 0 "quantize-model, 3 threads" quantize-model "$QM_MODEL" -o "$TMP/qj3.h5" $QOPTS --threads 3 --layers
    out_has "w-SQNR" "quantize-model --layers"
    grep -q '^fc  *linear  *4-bit sym channel minmax' "$OUT" || fail "quantize-model --layers: the fc row"
    if [ -n "$H5DUMP" ]; then
        "$H5DUMP" "$TMP/qj1.h5" | sed 1d >"$TMP/qj1.txt"
        "$H5DUMP" "$TMP/qj3.h5" | sed 1d >"$TMP/qj3.txt"
        cmp -s "$TMP/qj1.txt" "$TMP/qj3.txt" || fail "quantize-model: 1 and 3 threads write different models"
    fi
    ok "quantize-model --json and --layers; the same file for 1 and 3 threads"

    FMNIST=${QUASAR_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
    if [ -f "$FMNIST/train-images-idx3-ubyte.gz" ] && [ -f "$FMNIST/t10k-images-idx3-ubyte.gz" ]; then
        q 0 "quantize-model on Fashion-MNIST" quantize-model "$QM_MODEL" -o "$TMP/qf.h5" --calib-images 200 --threads 2
        out_has "calibration fashion-mnist:train, 200 images" "quantize-model on Fashion-MNIST"
        q 0 "eval QMODEL on Fashion-MNIST" eval "$TMP/qf.h5" --limit 300 --json --threads 2
        qm_strip >"$TMP/qf1.json"
        q 0 "eval MODEL on Fashion-MNIST" eval "$QM_MODEL" --calib-images 200 --limit 300 --json --threads 2
        qm_strip >"$TMP/qf2.json"
        cmp -s "$TMP/qf1.json" "$TMP/qf2.json" || fail "Fashion-MNIST: eval QMODEL and eval MODEL differ"
        ok "quantize-model then eval on Fashion-MNIST: the same top-1 and agreement as eval MODEL"
    else
        echo "# Fashion-MNIST not installed: skipping the quantize-model run on it"
    fi
else
    echo "# $QM_MODEL not found: skipping the quantize-model runs"
fi

# ---- compress (sim/prune.c, docs/compression.md) ------------------------------------------------
q 0 "help compress" help compress
out_has "Usage: quasar compress MODEL.h5 -o OUT.h5 --prune METHOD" "help compress"
q 2 "compress without --prune" compress a.h5 -o b.h5
err_has "compress: expected --prune METHOD" "compress without --prune"
q 2 "compress magnitude without a ratio" compress a.h5 -o b.h5 --prune magnitude
err_has "--prune magnitude needs --ratio R" "compress magnitude without a ratio"
q 2 "compress nm with a ratio" compress a.h5 -o b.h5 --prune nm:2:4 --ratio 0.5
err_has "--ratio does not apply to --prune nm:2:4" "compress nm with a ratio"
q 2 "compress with a bad method" compress a.h5 -o b.h5 --prune nm:4:4
err_has "expected nm:N:M with 1 <= N < M <= 16" "compress with a bad method"
q 2 "compress with ratio 1" compress a.h5 -o b.h5 --prune global --ratio 1
err_has "--ratio" "compress with ratio 1"
q 2 "compress onto its input" compress a.h5 -o a.h5 --prune global --ratio 0.5
err_has "is the input model" "compress onto its input"
ok "quasar compress: help and usage errors"
CP_MODEL="${srcdir:-.}/models/fmnist-dwsep.h5"
if [ -f "$CP_MODEL" ]; then
    q 0 "compress nm:2:4" compress "$CP_MODEL" -o "$TMP/cp-nm.h5" --prune nm:2:4 --json
    [ "$(json macs)" = 818600 ] || fail "compress nm:2:4: dense MACs unchanged"
    [ "$(json macs_nonzero)" -lt 818600 ] || fail "compress nm:2:4: fewer non-zero MACs"
    q 0 "info on the 2:4 model" info "$TMP/cp-nm.h5"
    out_has "sparsity" "info on the 2:4 model"
    q 0 "compress channel-l2 with re-estimation" compress "$CP_MODEL" -o "$TMP/cp-ch.h5" --prune channel-l2 --ratio 0.5 \
        --bn-reestimate --calib-data "$QMDATA" --calib-images 20
    out_has "stem           16 -> 8 channels" "compress channel-l2"
    out_has "fc             kept whole: its channels are the network output" "compress channel-l2"
    out_has "batchnorm   7 re-estimated" "compress channel-l2"
    q 0 "eval the channel-pruned model" eval "$TMP/cp-ch.h5" --data "$QMDATA" --json
    [ "$(json images)" = 32 ] || fail "eval the channel-pruned model"
    q 0 "info on the channel-pruned model" info "$TMP/cp-ch.h5" --json
    out_has '"params": 3454, "macs": 258772,' "info on the channel-pruned model: its parameters and MACs"
    q 0 "compress --refit" compress "$CP_MODEL" -o "$TMP/cp-rf.h5" --prune channel-act --ratio 0.3 --refit \
        --calib-data "$QMDATA" --calib-images 16
    out_has "b3.pw          128 -> 90 channels" "compress --refit"
    q 0 "compress --lowrank" compress "$CP_MODEL" -o "$TMP/cp-lr.h5" --lowrank channel --rank-ratio 0.5
    out_has "low-rank    channel split, rank ratio 0.5:" "compress --lowrank"
    out_has "kept whole: a depthwise convolution" "compress --lowrank"
    q 0 "info on the factorized model" info "$TMP/cp-lr.h5"
    out_has "b3.pw.lr1" "info on the factorized model"
    q 2 "compress --lowrank without a rank" compress "$CP_MODEL" -o "$TMP/cp-lr2.h5" --lowrank spatial
    err_has "--lowrank needs one of --rank-ratio R or --energy E" "compress --lowrank without a rank"
    q 2 "compress --target-macs with nm" compress "$CP_MODEL" -o "$TMP/cp-t.h5" --prune nm:2:4 --target-macs 0.5
    err_has "--target-macs goes with --prune magnitude, channel-l1 or channel-l2" "compress --target-macs with nm"
    ok "quasar compress: 2:4 masks, channel pruning with re-estimation and refit, low-rank, and the models evaluate"
fi

# ---- dfq (sim/dfq.c): data-free quantization transforms -----------------------------------------
q 0 "help dfq" help dfq
out_has "Usage: quasar dfq MODEL.h5 -o OUT.h5" "help dfq"; out_has "--relu6 replace|skip" "help dfq"
q 2 "dfq without arguments" dfq
err_has "quasar: dfq: expected MODEL.h5" "dfq without arguments"
q 2 "dfq without -o" dfq a.h5
err_has "dfq: expected -o OUT.h5" "dfq without -o"
q 2 "dfq onto its input" dfq a.h5 -o a.h5
err_has "the output 'a.h5' is the input model" "dfq onto its input"
q 2 "dfq with a bad method" dfq a.h5 -o b.h5 --method cle+foo
err_has "unknown step 'foo'" "dfq with a bad method"
q 2 "dfq --bc without bc" dfq a.h5 -o b.h5 --bc empirical
err_has "which --method cle+absorb does not do (add +bc)" "dfq --bc without bc"
q 2 "dfq --acts" dfq a.h5 -o b.h5 --method bc --acts bits=4
err_has "--acts has no effect here" "dfq --acts"
q 2 "dfq analytic with images" dfq a.h5 -o b.h5 --method bc --calib-images 10
err_has "are for --bc empirical" "dfq analytic with images"
q 1 "dfq on a missing model" dfq "$TMP/nope.h5" -o "$TMP/dfq-nope.h5"
err_prefixed "dfq on a missing model"
ok "quasar dfq: help and usage errors"

DFQ_MODEL="${srcdir:-.}/models/fmnist-dwsep.h5"
if [ -f "$DFQ_MODEL" ]; then
    q 0 "dfq" dfq "$DFQ_MODEL" -o "$TMP/dfq.h5" --method cle+absorb+bc --weights bits=4,gran=tensor --threads 1
    out_has "equalized   7 pairs in " "dfq"; out_has "7 relu6 replaced by relu" "dfq"
    out_has "corrected   7 layers against weights grid=uniform,bits=4" "dfq"
    grep -q '^  b3.pw  *fc  *b3.pw.relu6 (relu6 -> relu)  *128 ' "$OUT" || fail "dfq: the b3.pw -> fc pair"
    q 0 "info of the dfq output" info "$TMP/dfq.h5"
    grep -q 'b2.dw.relu6  *relu  ' "$OUT" || fail "dfq output: relu6 replaced"
    q 0 "dfq --json, 2 threads" dfq "$DFQ_MODEL" -o "$TMP/dfq2.h5" --method cle+absorb+bc --weights bits=4,gran=tensor --threads 2 --json
    out_has '"pairs": 7' "dfq --json"; out_has '"converged": true' "dfq --json"
    cmp -s "$TMP/dfq.h5" "$TMP/dfq2.h5" || h5diff -q "$TMP/dfq.h5" "$TMP/dfq2.h5" 2>/dev/null || fail "dfq: 1 and 2 threads differ"
    q 1 "dfq with relu6=skip" dfq "$DFQ_MODEL" -o "$TMP/dfq3.h5" --method cle --relu6 skip
    err_has "has no pair of layers to equalize" "dfq with relu6=skip"
    [ ! -e "$TMP/dfq3.h5" ] || fail "dfq: a failed run leaves no output"
    ok "quasar dfq: equalization, absorption and bias correction of fmnist-dwsep"
fi

# ---- eval with quantization options (cli/qopts.c, docs/quantization.md) ----------------------
q 2 "eval --preset twice" eval a.h5 --preset w8a8 --preset w4a8
err_has "--preset given twice" "eval --preset twice"
q 2 "eval bad preset" eval a.h5 --preset w8
err_has "unknown preset 'w8'" "eval bad preset"
q 2 "eval bad weights spec" eval a.h5 --weights bitz=4
err_has "--weights: unknown key 'bitz'" "eval bad weights spec"
q 2 "eval bad override" eval a.h5 --layer conv1
err_has "expected NAME:weights=SPEC" "eval bad override"
q 2 "eval bad engine" eval a.h5 --engine fast
err_has "expected float, fake or int" "eval bad engine"
q 2 "eval bad acc" eval a.h5 --engine int --acc int99
err_has "--acc" "eval bad acc"
q 2 "eval bad requant" eval a.h5 --engine int --requant fixed-point,rounding=triple
err_has "--requant" "eval bad requant"
q 2 "eval bad acc override" eval a.h5 --engine int --layer fc:acc=int16,overflow=maybe
err_has "fc" "eval bad acc override"
q 0 "help eval" help eval
out_has "--engine E" "help eval"; out_has "NAME:acc=SPEC" "help eval"; out_has "--acc-trace" "help eval"
out_has "--preset P" "help eval"; out_has "--calib-images N" "help eval"; out_has "NAME:weights=SPEC" "help eval"
ok "eval: quantization options are checked before any work (exit 2)"

# ---- golden test vectors (cli/cmd_golden.c, docs/golden.md): usage errors before any work ----------
q 0 "--help lists golden" --help
out_has "golden" "--help lists golden"
q 0 "help golden" help golden
out_has "Usage: quasar golden" "help golden"; out_has "--all" "help golden"; out_has "NAME.acc.hex" "help golden"
out_has "--preset P" "help golden"; out_has "NAME:acc=SPEC" "help golden"
q 0 "golden --help" golden --help
out_has "Usage: quasar golden" "golden --help"
q 2 "golden without -o" golden a.h5 --layer stem
err_has "golden: expected -o DIR" "golden without -o"
q 2 "golden without layers" golden a.h5 -o "$TMP/g"
err_has "choose layers with --layer NAME (repeatable) or --all" "golden without layers"
q 2 "golden --all and --layer" golden a.h5 -o "$TMP/g" --all --layer stem
err_has "--all and --layer stem" "golden --all and --layer"
q 2 "golden --image -1" golden a.h5 -o "$TMP/g" --all --image -1
err_has "--image" "golden --image -1"
q 2 "golden --image x" golden a.h5 -o "$TMP/g" --all --image x
err_has "--image" "golden --image x"
q 2 "golden without a model" golden -o "$TMP/g" --all
err_has "golden: expected MODEL.h5" "golden without a model"
q 2 "golden bad acc" golden a.h5 -o "$TMP/g" --all --acc int99
err_has "--acc" "golden bad acc"
q 2 "golden bad override" golden a.h5 -o "$TMP/g" --all --layer fc:bitz=4
err_has "fc" "golden bad override"
q 2 "golden unknown option" golden a.h5 -o "$TMP/g" --all --frobnicate
err_has "golden: unknown option '--frobnicate'" "golden unknown option"
[ -e "$TMP/g" ] && fail "golden usage errors: a folder was created"
ok "quasar golden: help, usage errors (exit 2) before any work"

EV_MODEL="${srcdir:-.}/models/fmnist-dwsep.h5"
if [ -f "$EV_MODEL" ] && [ -n "${QMDATA:-}" ] && [ -f "$QMDATA" ]; then
    q 0 "eval --preset w4a8 --layers" eval "$EV_MODEL" --data "$QMDATA" --calib-data "$QMDATA" --preset w4a8 \
        --layer first:w8a8 --layer fc:acts=float --layers
    out_has "engine      fake-quant" "eval quantized"; out_has "7 batchnorms folded" "eval quantized"
    out_has "layer first: weights=bits=8" "eval quantized: the override"; out_has "agreement" "eval quantized"
    grep -q '^stem  *conv2d  *8-bit sym channel minmax' "$OUT" || fail "eval --layers: stem at 8 bits"
    grep -q '^b1.pw  *conv2d  *4-bit sym channel minmax' "$OUT" || fail "eval --layers: b1.pw at 4 bits"
    grep -q '^fc  *linear  *4-bit sym channel minmax .* float' "$OUT" || fail "eval --layers: fc's output in float"
    q 0 "eval --preset --json" eval "$EV_MODEL" --data "$QMDATA" --calib-data "$QMDATA" --json --preset w8a8
    for k in top1 top5 float_top1 agreement logit_sqnr_db img_s '"layers": [' '"weight_sqnr_db"' '"act_sqnr_db"' \
             '"act_clipped_fraction"' '"calibration_data"'; do
        out_has "$k" "eval --json quantized"
    done
    q 2 "eval --layers without quantization" eval "$EV_MODEL" --layers
    err_has "--layers is for a quantized evaluation" "eval --layers"
    q 1 "eval unknown layer" eval "$EV_MODEL" --data "$QMDATA" --calib-data "$QMDATA" --layer conv9:w8a8
    err_has "'conv9' is not a layer of the model" "eval unknown layer"; err_has "stem, b1.dw" "eval unknown layer"
    ok "eval with quantization options: summary, per-layer table, JSON keys, unknown layers"

    q 0 "eval --engine int --layers" eval "$EV_MODEL" --data "$QMDATA" --calib-data "$QMDATA" --engine int \
        --acc int16,overflow=saturate --layer fc:acc=int32 --layers
    out_has "engine      int" "eval int"; out_has ", fake-quant 0." "eval int"
    out_has "acc acc=int16,overflow=saturate" "eval int"; out_has "overflow    " "eval int"
    grep -q '^stem  *conv2d  *9 int16 sat ' "$OUT" || fail "eval int --layers: stem row with K = 9"
    grep -q '^fc  *linear  *128 int32 sat  *100.0%' "$OUT" || fail "eval int --layers: fc's own accumulator, fast"
    q 0 "eval --engine int --json" eval "$EV_MODEL" --data "$QMDATA" --calib-data "$QMDATA" --engine int --json \
        --acc exact --requant gemmlowp
    for k in fake_top1 fake_agreement fake_logit_sqnr_db overflow_fraction code_mismatch_fraction \
             acc_needed_bits acc_width_a2q '"layers": ['; do
        out_has "$k" "eval int --json"
    done
    q 1 "eval int unknown layer" eval "$EV_MODEL" --data "$QMDATA" --calib-data "$QMDATA" --engine int \
        --layer conv9:acc=int16
    err_has "no node 'conv9'" "eval int unknown layer"
    ok "eval --engine int: summary, per-layer accumulator table, JSON metrics, unknown layer"

    G=$TMP/golden
    q 0 "golden --layer stem --layer fc" golden "$EV_MODEL" --data "$QMDATA" --calib-data "$QMDATA" --layer stem \
        --layer fc -o "$G" --image 3
    out_has "image       3 of $QMDATA (32 images)" "golden"
    out_has "wrote       $G/golden.h5 and 12 text files" "golden"
    ROW='^stem  *conv2d  *9  *1x28x28 u8  *16x1x3x3 s8  *16x28x28 s32  *16x28x28 u8  *0  *'
    grep -q "$ROW"'stem\.{input,weight,bias,acc,output}\.hex stem\.txt$' "$OUT" || fail "golden: the stem row"
    grep -q '^fc  *linear  *128  *128 u8  *10x128 s8  *10 s32  *10 u8 ' "$OUT" || fail "golden: the fc row"
    # lines LAYER.FILE COUNT DIGITS: COUNT lines of exactly DIGITS lowercase hex digits
    lines() {
        [ -f "$G/$1" ] || fail "golden: no $1"
        [ "$(wc -l <"$G/$1")" -eq "$2" ] || fail "golden: $1 has $(wc -l <"$G/$1") lines, expected $2"
        grep -qv "^[0-9a-f]\{$3\}\$" "$G/$1" && fail "golden: $1 has lines that are not $3 lowercase hex digits"
        :
    }
    lines stem.input.hex 784 2; lines stem.weight.hex 144 2; lines stem.bias.hex 16 8
    lines stem.acc.hex 12544 8; lines stem.output.hex 12544 2
    lines fc.input.hex 128 2; lines fc.weight.hex 1280 2; lines fc.bias.hex 10 8; lines fc.acc.hex 10 8
    lines fc.output.hex 10 2
    [ -f "$G/golden.h5" ] && [ -f "$G/stem.txt" ] && [ -f "$G/fc.txt" ] || fail "golden: golden.h5, stem.txt, fc.txt"
    [ "$(ls "$G" | wc -l)" -eq 13 ] || fail "golden: $(ls "$G" | wc -l) files in $G, expected 13"
    grep -q 'stem.acc.hex     12544 values = O 16 x OH 28 x OW 28; signed 32-bit' "$G/stem.txt" || fail "golden: stem.txt"
    grep -q 'K = 128 terms per dot product' "$G/fc.txt" || fail "golden: fc.txt"
    if [ -n "$H5DUMP" ]; then
        "$H5DUMP" -H "$G/golden.h5" >"$TMP/g.txt" 2>&1 || fail "golden: h5dump golden.h5"
        for d in 'DATASET "acc"' 'H5T_STD_I64LE' '( 16, 28, 28 )' '( 16, 1, 3, 3 )' '( 10, 128 )' 'DATASET "weight_scale"'; do
            grep -qF "$d" "$TMP/g.txt" || fail "golden.h5 lacks $d"
        done
        "$H5DUMP" -a /stem/K "$G/golden.h5" | grep -q '(0): 9' || fail "golden.h5: /stem K"
        "$H5DUMP" -a /image_index "$G/golden.h5" | grep -q '(0): 3' || fail "golden.h5: image_index"
    fi
    ok "golden --layer stem --layer fc: the summary, 12 text files with the shapes' line counts, golden.h5"

    G=$TMP/golden16
    q 0 "golden --all, int16 saturate" golden "$EV_MODEL" --data "$QMDATA" --calib-data "$QMDATA" --all \
        --acc int16,overflow=saturate --layer fc:acc=int32 --layer first:acts=scheme=asymmetric-signed -o "$G"
    out_has "wrote       $G/golden.h5 and 48 text files" "golden --all"
    grep -q '^b3.pw  *conv2d  *40 .* 128x7x7 s16 ' "$OUT" || fail "golden --all: the b3.pw row at 16 bits"
    lines stem.acc.hex 12544 4; lines b1.dw.weight.hex 144 2; lines b3.pw.acc.hex 6272 4; lines fc.acc.hex 10 8
    lines b2.pw.input.hex 6272 2
    grep -q '^[89a-f]' "$G/b3.pw.acc.hex" || fail "golden --all: no negative int16 accumulator in b3.pw"
    ok "golden --all with an int16 saturating accumulator: 4-digit accumulators, negative values"

    q 2 "golden --image out of range" golden "$EV_MODEL" --data "$QMDATA" --calib-data "$QMDATA" --all -o "$TMP/g" \
        --image 32
    err_has "--image 32: $QMDATA has 32 images (0..31)" "golden --image out of range"
    q 1 "golden unknown layer" golden "$EV_MODEL" --data "$QMDATA" --calib-data "$QMDATA" --layer conv9 -o "$TMP/g"
    err_has "'conv9' is not a layer of the model" "golden unknown layer"; err_has "stem, b1.dw, b1.pw" "golden unknown layer"
    q 1 "golden a gap" golden "$EV_MODEL" --data "$QMDATA" --calib-data "$QMDATA" --layer gap -o "$TMP/g"
    err_has "node 'gap' (gap) is not a conv2d or linear layer" "golden a gap"
    q 1 "golden float accumulator" golden "$EV_MODEL" --data "$QMDATA" --calib-data "$QMDATA" --layer fc --acc fp16 \
        -o "$TMP/g"
    err_has "float accumulator" "golden float accumulator"
    q 1 "golden onednn" golden "$EV_MODEL" --data "$QMDATA" --calib-data "$QMDATA" --layer fc --requant onednn -o "$TMP/g"
    err_has "bias=float" "golden onednn"
    [ -e "$TMP/g" ] && fail "golden errors: a folder was created"
    q 1 "golden into a file's folder" golden "$EV_MODEL" --data "$QMDATA" --calib-data "$QMDATA" --layer fc \
        -o "$TMP/qmimg.txt/sub"
    err_has "cannot create the folder '$TMP/qmimg.txt/sub'" "golden into a file's folder"
    ok "golden: --image out of range (exit 2), unknown layer, a gap, float accumulators, bias=float, no folder (exit 1)"
fi

# ---- hardware cost (cli/cmd_cost.c, docs/targets.md) --------------------------------------------------
q 0 "targets" targets
for t in asic-45nm bitfusion cpu-avx512-vnni dsp-hvx gpu-ampere; do out_has "$t" "targets lists $t"; done
q 0 "targets --csv" targets --csv
[ "$(wc -l <"$OUT")" -eq 6 ] || fail "targets --csv: a header and 5 rows"
q 0 "targets NAME" targets cpu-avx512-vnni
out_has "avx512bw-pairwise" "targets NAME"; out_has "(optional)" "targets NAME"; out_has "requant=onednn" "targets NAME"
q 0 "targets NAME --json" targets bitfusion --json
out_has '"rate": "bitbrick"' "targets --json"
q 1 "targets unknown" targets nope
err_has "unknown target 'nope'" "targets unknown"; err_prefixed "targets unknown"
printf 'target: bad\nkind: asic\ndescription: x\ntechnology:\n  node: 45 nm\n  voltage: -1 V\n  source: x\n' >"$TMP/bad.yaml"
q 1 "targets bad file" targets "$TMP/bad.yaml"
err_has "$TMP/bad.yaml:6" "targets bad file: file:line"; err_has "voltage" "targets bad file: the key"
ok "quasar targets: list, --csv, one target, --json, unknown name and a bad file (exit 1, file:line)"

q 0 "targets all" targets all
for t in asic-45nm bitfusion cpu-avx512-vnni dsp-hvx gpu-ampere; do out_has "$t" "targets all lists $t"; done
q 0 "targets a,b" targets dsp-hvx,bitfusion
[ "$(grep -c '^target      ' "$OUT")" -eq 2 ] || fail "targets a,b: each target in turn"
out_has "hvx-int16" "targets a,b: the first"; out_has "fusion-units" "targets a,b: the second"
q 0 "targets a,b --csv" targets dsp-hvx,bitfusion --csv
[ "$(grep -c '^target,unit,' "$OUT")" -eq 1 ] || fail "targets a,b --csv: one header"
[ "$(wc -l <"$OUT")" -eq 4 ] || fail "targets a,b --csv: a header and 3 unit rows"
for bad in , dsp-hvx, ,dsp-hvx dsp-hvx,,bitfusion; do
    q 2 "targets '$bad'" targets "$bad"
    err_has "targets: empty target name in '$bad'" "targets '$bad'"
done
# every text cell of the CSV outputs is quoted: names with commas (a target, a unit, a memory level)
cat >"$TMP/comma.yaml" <<'EOF_YAML'
target: "tiny, with a comma"
kind: accelerator
description: "a test target, with commas"
technology:
  node: 45 nm
  voltage: 0.9 V
  source: test
compute:
  clock: 1 GHz
  utilization: 1.0
  local: 1 KiB
  source: test
power:
  static: 1 mW
  source: test
requant: requant=fixed-point
units:
  - name: "mac,8"
    weights: [int8]
    acts: [int8]
    macs_per_cycle: 64
    mac_energy: 0.5 pJ
    acc: acc=int32
    source: test
memory:
  - name: "sram,a"
    capacity: 64 KiB
    bandwidth: 32 B/cycle
    energy: 2 pJ/B
    source: test
  - name: dram
    bandwidth: 10 GB/s
    energy: 100 pJ/B
    offchip: true
    source: test
EOF_YAML
# csv_check FILE ROWS COLUMN VALUE DESCRIPTION: FILE parses as CSV (python3's csv module, when
# present) into a header and ROWS rows of the header's width, and COLUMN holds VALUE in the first row.
csv_check() {
    if command -v python3 >/dev/null 2>&1; then
        python3 - "$@" <<'EOF_PY' || fail "$5"
import csv, sys
path, rows, col, value, desc = sys.argv[1:6]
with open(path, newline="") as f:
    r = list(csv.reader(f))
head, body = r[0], r[1:]
bad = [i for i, row in enumerate(body) if len(row) != len(head)]
if len(body) != int(rows) or bad or body[0][head.index(col)] != value:
    sys.exit("%s: %d rows (expected %s), rows of another width: %s, %s = %r" % (desc, len(body), rows, bad[:3], col, body[0][head.index(col)] if body else None))
EOF_PY
    else
        grep -F -q -- "\"$4\"" "$1" || fail "$5: '$4' not quoted"
    fi
}
q 0 "targets FILE --csv, commas" targets "$TMP/comma.yaml" --csv
csv_check "$OUT" 1 unit "mac,8" "targets FILE --csv: quoted unit"
csv_check "$OUT" 1 target "tiny, with a comma" "targets FILE --csv: quoted target"
q 0 "targets --csv, commas" targets --csv
cp "$OUT" "$TMP/targets.csv"
csv_check "$TMP/targets.csv" 5 target asic-45nm "targets --csv: parses"
ok "quasar targets: all, a list shown in turn, empty names (exit 2), CSV cells with commas quoted"

COST_MODEL="${srcdir:-.}/models/fmnist-dwsep.h5"
if [ -f "$COST_MODEL" ]; then
    q 0 "cost one target" cost "$COST_MODEL" --target asic-45nm
    out_has "int8 x int8" "cost"; out_has "energy      " "cost"; out_has "per inference" "cost"
    out_has "verdict     ok" "cost"; out_has "traffic     buffer" "cost"
    grep -q '^b2.pw  *conv2d  *int-mac ' "$OUT" || fail "cost: a per-layer row"
    q 0 "cost all" cost "$COST_MODEL"
    for t in asic-45nm bitfusion cpu-avx512-vnni dsp-hvx gpu-ampere; do out_has "$t" "cost all: $t"; done
    grep -q '^gpu-ampere .* unsupported' "$OUT" || fail "cost all: asymmetric activations unsupported on the GPU"
    q 0 "cost gpu symmetric" cost "$COST_MODEL" --target gpu-ampere --acts scheme=symmetric --layer fc:acts=scheme=symmetric
    out_has "verdict     ok" "cost gpu symmetric"
    q 0 "cost dsp per-channel" cost "$COST_MODEL" --target dsp-hvx
    out_has "per-channel weight scales: not supported by dsp-hvx" "cost dsp: the reason"
    q 0 "cost --csv" cost "$COST_MODEL" --target asic-45nm,bitfusion --csv
    head -1 "$OUT" | grep -q '^target,layer,op,unit,w_format,x_format,macs,ops,mac_j,energy_j,' || fail "cost --csv header"
    [ "$(grep -c ',total,' "$OUT")" -eq 2 ] || fail "cost --csv: a total row per target"
    [ "$(wc -l <"$OUT")" -eq 21 ] || fail "cost --csv: header + 2 x (9 layers + total)"
    q 0 "cost --json" cost "$COST_MODEL" --target bitfusion --json --batch 4
    [ "$(grep -c '"record": "layer"' "$OUT")" -eq 9 ] || fail "cost --json: 9 layer records"
    out_has '"record": "total"' "cost --json"; out_has '"batch": 4' "cost --json"
    for k in energy_j latency_s model_bytes offchip_bytes memory_energy_j '"macs.int8xint8"' '"bytes.dram"'; do
        out_has "$k" "cost --json"
    done
    q 0 "cost --table" cost "$COST_MODEL" --target bitfusion --table "$TMP/haq.csv"
    [ "$(wc -l <"$TMP/haq.csv")" -eq $((1 + 8 * 64)) ] || fail "cost --table: 8 MAC layers x 64 (w, a) rows"
    grep -q '^bitfusion,b2.pw,conv2d,2,2,' "$TMP/haq.csv" || fail "cost --table: a 2x2 row"
    q 0 "cost --unit --node" cost "$COST_MODEL" --target cpu-avx512-vnni --unit avx512bw-pairwise --node 7
    grep -q '^stem  *conv2d  *avx512bw-pairwise ' "$OUT" || fail "cost --unit: the named unit"
    q 1 "cost unknown unit" cost "$COST_MODEL" --target asic-45nm --unit tpu
    err_has "--unit tpu" "cost unknown unit"
    q 1 "cost bad target file" cost "$COST_MODEL" --target "$TMP/bad.yaml"
    err_has "$TMP/bad.yaml:6" "cost bad target file"
    q 0 "eval --arithmetic" eval "$COST_MODEL" --engine int --arithmetic cpu-avx512-vnni --limit 8 ${QMDATA:+--calib-data "$QMDATA" --calib-images 8}
    out_has "requant requant=onednn" "eval --arithmetic"; out_has "acc acc=int32" "eval --arithmetic"
    q 0 "eval --arithmetic --unit" eval "$COST_MODEL" --engine int --arithmetic cpu-avx512-vnni --unit avx512bw-pairwise \
        --limit 8 ${QMDATA:+--calib-data "$QMDATA" --calib-images 8}
    out_has "chunk=2,chunk-acc=int16,chunk-overflow=saturate" "eval --arithmetic --unit"
    # CSV cells with commas (target, unit and memory-level names; reasons) are quoted
    q 0 "cost --csv, commas" cost "$COST_MODEL" --target "$TMP/comma.yaml" --csv --table "$TMP/comma-haq.csv"
    cp "$OUT" "$TMP/comma-cost.csv"
    csv_check "$TMP/comma-cost.csv" 10 unit "mac,8" "cost --csv: quoted unit"
    csv_check "$TMP/comma-cost.csv" 10 level_bytes "sram,a=13600;dram=1056" "cost --csv: quoted level_bytes"
    csv_check "$TMP/comma-cost.csv" 10 target "tiny, with a comma" "cost --csv: quoted target"
    csv_check "$TMP/comma-haq.csv" $((8 * 64)) reason "int1 x int1 computed as int8 x int8 on mac,8" \
        "cost --table: quoted reason"
    csv_check "$TMP/comma-haq.csv" $((8 * 64)) unit "mac,8" "cost --table: quoted unit"
    # --table: its own temporary file (an unrelated FILE.part is left alone); a table that cannot be
    # written fails before anything is printed, naming the file
    echo "someone else's" >"$TMP/haq2.csv.part"
    q 0 "cost --table, FILE.part exists" cost "$COST_MODEL" --target bitfusion --table "$TMP/haq2.csv"
    [ "$(cat "$TMP/haq2.csv.part")" = "someone else's" ] || fail "cost --table: FILE.part clobbered"
    [ "$(wc -l <"$TMP/haq2.csv")" -eq $((1 + 8 * 64)) ] || fail "cost --table: the table beside FILE.part"
    ls "$TMP" | grep -q 'haq2.csv.part-' && fail "cost --table: a temporary file left"
    mkdir -p "$TMP/haqdir"
    q 1 "cost --table a folder" cost "$COST_MODEL" --target bitfusion --table "$TMP/haqdir"
    err_has "--table $TMP/haqdir" "cost --table a folder"; err_prefixed "cost --table a folder"
    [ ! -s "$OUT" ] || fail "cost --table a folder: output printed before the failure"
    q 1 "cost --table, no folder" cost "$COST_MODEL" --target bitfusion --table "$TMP/nodir/haq.csv"
    err_has "--table $TMP/nodir/haq.csv" "cost --table, no folder"
    [ ! -s "$OUT" ] || fail "cost --table, no folder: output printed before the failure"
    ok "quasar cost: a target, all, verdicts and reasons, --csv (quoted cells), --json, --table (own temporary file, failures before output), --unit, --node, errors; eval --arithmetic"
fi
q 2 "cost no model" cost
err_has "cost: expected MODEL.h5" "cost no model"
q 2 "cost --csv --json" cost m.h5 --csv --json
q 2 "cost bad --batch" cost m.h5 --batch 0
q 2 "cost bad --node" cost m.h5 --node 2
q 2 "cost unknown option" cost m.h5 --frobnicate
err_has "cost: unknown option '--frobnicate'" "cost unknown option"
for bad in , asic-45nm, ,asic-45nm asic-45nm,,bitfusion; do
    q 2 "cost --target '$bad'" cost m.h5 --target "$bad"
    err_has "--target: empty target name in '$bad'" "cost --target '$bad'"
done
q 2 "eval --arithmetic without --engine int" eval m.h5 --arithmetic asic-45nm
err_has "add --engine int" "eval --arithmetic without int"
q 2 "eval --arithmetic with --acc" eval m.h5 --engine int --arithmetic asic-45nm --acc int16
q 2 "eval --unit without --arithmetic" eval m.h5 --engine int --unit vnni
err_has "give --arithmetic TARGET" "eval --unit without --arithmetic"
ok "quasar cost and eval --arithmetic: usage errors (exit 2), empty --target names"

# ---- sweep, results, plot ----------------------------------------------------------
SW_MODEL="$(cd "${srcdir:-.}" && pwd)/models/fmnist-dwsep.h5"
FMNIST=${QUASAR_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
if [ -f "$SW_MODEL" ] && [ -f "$FMNIST/train-images-idx3-ubyte.gz" ] && [ -f "$FMNIST/t10k-images-idx3-ubyte.gz" ]; then
    {
        echo "name: small"
        echo "models: [$SW_MODEL]"
        echo "calibration: {images: 100}"
        echo "evaluation: {images: 300}"
        echo "targets: [asic-45nm]"
        echo "sweeps:"
        echo "  - name: ptq"
        echo "    axes: {w_bits: [3, 4, 8], w_gran: [tensor, channel]}"
        echo "  - name: acc"
        echo "    fixed: {engine: int}"
        echo "    axes: {acc: [int16, int32]}"
        echo "  - name: mixed"
        echo "    axes: {engine: [fake, int], acc: [int20]}"
        echo "figures:"
        echo "  - {name: front, x: energy_j, y: top1, group_by: target}"
        echo "  - {name: bits, x: w_bits, y: top1, group_by: w_gran, where: sweep=ptq}"
    } >"$TMP/sw.yaml"
    q 0 "sweep --dry-run" sweep "$TMP/sw.yaml" --dry-run
    out_has "11 runs" "sweep --dry-run"
    out_has "skipped engine=fake acc=int20 target=asic-45nm (acc does not apply to engine fake)" "a skipped point"
    q 0 "sweep, 1 job" sweep "$TMP/sw.yaml" -o "$TMP/sw1" --jobs 1
    out_has "11 runs (10 ran, 1 skipped, 0 failed, 0 already in the journal)" "sweep 1 job"
    out_has "results  $TMP/sw1/results.h5" "sweep prints the store"
    [ -s "$TMP/sw1/figures/front.gp" ] && [ -s "$TMP/sw1/figures/front.dat" ] || fail "sweep: figure .gp/.dat"
    if command -v gnuplot >/dev/null 2>&1; then
        [ -s "$TMP/sw1/figures/front.png" ] || fail "sweep: figure .png with gnuplot"
        (cd "$TMP/sw1/figures" && rm -f bits.png && gnuplot bits.gp) && [ -s "$TMP/sw1/figures/bits.png" ] ||
            fail "sweep: the .gp re-renders its figure"
    fi
    grep -q 'sweep: 11/11 runs' "$ERR" || fail "sweep: plain progress lines when stderr is not a terminal"
    q 0 "sweep again: resumed" sweep "$TMP/sw.yaml" -o "$TMP/sw1"
    out_has "0 ran, 0 skipped, 0 failed, 11 already in the journal" "sweep resumes"
    q 0 "sweep, 2 jobs" sweep "$TMP/sw.yaml" -o "$TMP/sw2" --jobs 2 --no-figures
    q 0 "export 1 job" results export --csv "$TMP/sw1" -o "$TMP/e1.csv"
    q 0 "export 2 jobs" results export --csv "$TMP/sw2" -o "$TMP/e2.csv"
    # identical rows whatever the jobs, timings excluded
    norm() {
        python3 -c 'import csv, sys
for r in csv.DictReader(open(sys.argv[1])):
    print(sorted((k, v) for k, v in r.items() if k not in ("seconds", "img_s")))' "$1"
    }
    if command -v python3 >/dev/null 2>&1; then
        norm "$TMP/e1.csv" >"$TMP/n1"; norm "$TMP/e2.csv" >"$TMP/n2"
        cmp -s "$TMP/n1" "$TMP/n2" || fail "sweep: 1 and 2 jobs give identical rows"
        [ "$(wc -l <"$TMP/n1")" -eq 11 ] || fail "sweep: 11 rows exported"
    fi
    # kill -9 mid-way, resume, compare with the uninterrupted sweep
    "$QUASAR" sweep "$TMP/sw.yaml" -o "$TMP/sw3" --jobs 1 --no-figures >"$OUT" 2>"$ERR" &
    pid=$!
    i=0
    while [ "$(grep -c '^run' "$TMP/sw3/journal.tsv" 2>/dev/null || true)" != 4 ] && [ $i -lt 1200 ]; do
        sleep 0.02; i=$((i + 1))
    done
    kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
    k=$(grep -c '^run' "$TMP/sw3/journal.tsv")
    [ "$k" -ge 4 ] && [ "$k" -lt 11 ] || fail "sweep killed mid-way: $k runs in the journal"
    q 0 "sweep resumed after kill -9" sweep "$TMP/sw.yaml" -o "$TMP/sw3" --no-figures
    out_has "$k already in the journal" "resume after kill -9"
    q 0 "export resumed" results export --csv "$TMP/sw3" -o "$TMP/e3.csv"
    if command -v python3 >/dev/null 2>&1; then
        norm "$TMP/e3.csv" >"$TMP/n3"
        cmp -s "$TMP/n1" "$TMP/n3" || fail "sweep: a killed and resumed sweep gives the uninterrupted rows"
    fi
    # Ctrl-C: stops with status 130, keeps what finished, and the next sweep resumes
    "$QUASAR" sweep "$TMP/sw.yaml" -o "$TMP/sw4" --jobs 1 --no-figures >"$OUT" 2>"$ERR" &
    pid=$!
    i=0
    while [ "$(grep -c '^run' "$TMP/sw4/journal.tsv" 2>/dev/null || true)" != 3 ] && [ $i -lt 1200 ]; do
        sleep 0.02; i=$((i + 1))
    done
    kill -INT $pid 2>/dev/null; wait $pid; rc=$?
    LAST="quasar sweep (Ctrl-C)"
    if [ "$(grep -c '^run' "$TMP/sw4/journal.tsv")" -lt 11 ]; then
        [ "$rc" -eq 130 ] || fail "sweep Ctrl-C: exit $rc, expected 130"
        err_has "interrupted after" "sweep Ctrl-C"
        [ -s "$TMP/sw4/results.h5" ] || fail "sweep Ctrl-C: results.h5 rebuilt"
    fi
    q 0 "sweep resumed after Ctrl-C" sweep "$TMP/sw.yaml" -o "$TMP/sw4" --no-figures
    out_has "already in the journal" "resume after Ctrl-C"
    if command -v h5dump >/dev/null 2>&1; then
        h5dump -a /provenance/spec_name "$TMP/sw1/results.h5" >"$OUT" 2>&1 && grep -q small "$OUT" ||
            fail "results.h5: provenance readable with h5dump"
    fi
    for py in python3 /usr/bin/python3; do
        if "$py" -c 'import h5py' 2>/dev/null; then
            "$py" -c 'import h5py, sys
f = h5py.File(sys.argv[1], "r")
assert f.attrs["format"] == "quasar-results"
cols = f["runs"].attrs["columns"].split(",")
assert len(f["runs/top1"][:]) == 11 and "w_bits" in cols
assert f["provenance"].attrs["spec_name"] == "small"' "$TMP/sw1/results.h5" || fail "results.h5 read with h5py"
            break
        fi
    done
    q 0 "results list" results list "$TMP/sw1"
    out_has "skipped" "results list"
    q 0 "results pareto" results pareto "$TMP/sw1" --per target
    q 0 "plot" plot "$TMP/sw1" --x w_bits --y top1 --group-by w_gran --where sweep=ptq -o "$TMP/p1"
    [ -s "$TMP/p1.gp" ] && [ -s "$TMP/p1.dat" ] || fail "plot writes .gp and .dat"
    LAST="QUASAR_GNUPLOT=/nonexistent quasar plot"
    QUASAR_GNUPLOT=/nonexistent "$QUASAR" plot "$TMP/sw1" --x w_bits --y top1 -o "$TMP/p2" >"$OUT" 2>"$ERR" ||
        fail "plot without gnuplot succeeds"
    grep -q -i 'apt-get install gnuplot' "$OUT" "$ERR" || fail "plot without gnuplot says how to install it"
    ok "quasar sweep: dry run, skipped points, figures, resume, 1 and 2 jobs identical, kill -9 and resume, results, plot"
fi
printf 'models: [m.h5]\naxes:\n  w_bits: [4, 4]\n' >"$TMP/bad.yaml"
q 1 "sweep bad spec" sweep "$TMP/bad.yaml"
err_has "$TMP/bad.yaml:3: axes: w_bits: value '4' appears twice" "sweep bad spec: file:line"
printf 'models: [m.h5]\nfixed: {engine: fake, acc: int16}\n' >"$TMP/bad.yaml"
q 1 "sweep conflicting spec" sweep "$TMP/bad.yaml"
err_has "field 'acc' does not apply to engine fake" "sweep conflicting"
q 1 "sweep missing spec" sweep "$TMP/none.yaml"
err_has "$TMP/none.yaml: cannot open the spec" "sweep missing spec"
q 2 "sweep no spec" sweep
q 2 "sweep bad --jobs" sweep "$TMP/bad.yaml" --jobs 0
q 2 "sweep unknown option" sweep "$TMP/bad.yaml" --frobnicate
ok "quasar sweep: bad specs (exit 1, file:line) and usage errors (exit 2)"

echo "1..$n"
exit 0
