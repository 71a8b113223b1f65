# scripts/lib.sh — shared by scripts/demo and scripts/check: installs the
# Debian packages quasar needs (through sudo when not root), bootstraps,
# configures and builds in a folder of the source tree.
# shellcheck shell=bash

QS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
QS_JOBS=$(nproc 2>/dev/null || echo 2)

# Build tools, libraries, the test framework (and gemmlowp's headers, which a
# test checks the gemmlowp requantization preset against), gnuplot for figures, h5dump and
# h5import, and the Fashion-MNIST dataset.
QS_PACKAGES=(build-essential autoconf automake libtool pkg-config
             libgsl-dev libhdf5-dev hdf5-tools libyaml-dev zlib1g-dev libopenblas-dev
             check gnuplot-nox dataset-fashion-mnist g++ libgemmlowp-dev)

qs_say() { printf 'quasar: %s\n' "$*" >&2; }

qs_install_deps() {
    local missing=() p
    for p in "${QS_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || { qs_say "need root or sudo to install: ${missing[*]}"; return 1; }
        sudo=(sudo)
    fi
    qs_say "installing Debian packages: ${missing[*]}"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# qs_build DIR [configure options...]: an out-of-tree build in $QS_ROOT/DIR.
qs_build() {
    local dir=$1; shift
    cd "$QS_ROOT"
    if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt Makefile.in ]; then
        qs_say "bootstrapping (autoreconf)"
        autoreconf -fi >/dev/null
    fi
    mkdir -p "$dir"
    cd "$dir"
    local want="$*"
    if [ ! -f Makefile ] || [ "$(cat .qs-configure-args 2>/dev/null)" != "$want" ]; then
        qs_say "configuring $dir ($want)"
        "$QS_ROOT/configure" -q "$@"
        printf '%s' "$want" > .qs-configure-args
    fi
    qs_say "building $dir"
    make -s -j"$QS_JOBS"
    cd "$QS_ROOT"
}
