#!/usr/bin/env bash
# Builds NanoMQ's client (nanomq_cli) and broker (nanomq) at one pinned state
# of targets/nanomq/states.tsv, with TLS and sanitizers, for the hostile
# peers of mqtls-harness.
#
#   targets/nanomq/build.sh STATE [options]
#
# STATE is a name of states.tsv (old, fixed, recent). Where the sources come
# from (first that applies):
#   --tree DIR       an assembled nanomq tree (with nng/ and
#                    nanomq_cli/nftp-codec/), used as it is, e.g. your checkout
#   --archives DIR   the unmodified archives (nanomq-<hash>.tar.xz,
#                    nanonng-<hash>.tar.xz, nftp-codec-<hash>.tar.xz), as in
#                    ../shared/targets/nanomq
#   --git            clones the pinned commits from $NANOMQ_GIT, $NANONNG_GIT
#                    and $NFTP_GIT (default: github.com/nanomq/...)
# Without any of them: --archives $NANOMQ_ARCHIVES (default
# ../shared/targets/nanomq next to the repository) when it exists, else --git.
#
# Other options:
#   --variant NAME   asan (default): AddressSanitizer + LeakSanitizer +
#                    UndefinedBehaviorSanitizer; plain: no sanitizer.
#                    shim: asan plus mqtls-shim, the project's ledger linked
#                    in with -Wl,--wrap for every function of
#                    shim/wrapped.txt (docs/shim.md); the library is built
#                    with cargo first (release; MQTLS_SHIM_PROFILE=debug for
#                    the debug build, MQTLS_SHIM_LIB=FILE to link another).
#                    Variants are the `case` in variant_flags below: add one
#                    there (compiler flags, link flags such as -Wl,--wrap=...,
#                    extra cmake options); EXTRA_C_FLAGS and EXTRA_LINK_FLAGS
#                    are appended to any variant.
#   --targets "A B"  ninja targets (default: "nanomq_cli nanomq")
#   --out DIR        where to build (default: target/nanomq, ignored by git)
#   --jobs N         parallel compile jobs (default: the number of cores)
#
# Result: DIR/STATE-VARIANT/bin/{nanomq_cli,nanomq} and build.env (state,
# commits, flags); the last line printed is the bin directory.
# Needs: cmake, ninja (ninja-build), a C compiler, libmbedtls-dev; git for --git.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

die() { echo "build.sh: $*" >&2; exit 2; }
say() { echo "build.sh: $*" >&2; }

state=""
variant="asan"
shim_lib=""
source_kind=""
source_dir=""
targets="nanomq_cli nanomq"
out="$root/target/nanomq"
jobs="$(nproc 2>/dev/null || echo 2)"

while [ $# -gt 0 ]; do
    case "$1" in
        --tree) source_kind=tree; source_dir="${2:?--tree needs a directory}"; shift 2 ;;
        --archives) source_kind=archives; source_dir="${2:?--archives needs a directory}"; shift 2 ;;
        --git) source_kind=git; shift ;;
        --variant) variant="${2:?--variant needs a name}"; shift 2 ;;
        --targets) targets="${2:?--targets needs ninja targets}"; shift 2 ;;
        --out) out="${2:?--out needs a directory}"; shift 2 ;;
        --jobs) jobs="${2:?--jobs needs a number}"; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) die "unknown option $1 (see --help)" ;;
        *) [ -z "$state" ] || die "one state at a time (got $state and $1)"; state="$1"; shift ;;
    esac
done
[ -n "$state" ] || die "name a state: $(awk '!/^#/ {printf "%s ", $1}' "$here/states.tsv")(see --help)"

line="$(awk -F'\t' -v s="$state" '!/^#/ && $1 == s' "$here/states.tsv")"
[ -n "$line" ] || die "no state called '$state' in $here/states.tsv"
IFS=$'\t' read -r _ nanomq_rev nng_rev nftp_rev what <<<"$line"

# Compiler and link flags per variant. A new variant adds a case here; the
# build directory is per state and variant, so variants never share objects.
variant_flags() {
    case "$variant" in
        asan)
            c_flags="-fsanitize=address,undefined -fno-omit-frame-pointer"
            link_flags="-fsanitize=address,undefined"
            cmake_extra=()
            ;;
        plain)
            # No sanitizer: to check a finding that is not a sanitizer's
            # (a hang) does not depend on one.
            c_flags="-fno-omit-frame-pointer"
            link_flags=""
            cmake_extra=()
            ;;
        shim)
            c_flags="-fsanitize=address,undefined -fno-omit-frame-pointer"
            local wrap
            wrap="$(grep -v '^#' "$root/shim/wrapped.txt" | sed 's/^/-Wl,--wrap=/' | tr '\n' ' ')"
            link_flags="-fsanitize=address,undefined $wrap"
            shim_lib="${MQTLS_SHIM_LIB:-$root/target/${MQTLS_SHIM_PROFILE:-release}/libmqtls_shim.a}"
            # Rust's standard library needs these (rustc --print native-static-libs).
            cmake_extra=("-DCMAKE_C_STANDARD_LIBRARIES=$shim_lib -lgcc_s -lutil -lrt -lpthread -lm -ldl")
            ;;
        *) die "no variant called '$variant' (known: asan, plain, shim; add one in variant_flags)" ;;
    esac
    c_flags="$c_flags ${EXTRA_C_FLAGS:-}"
    link_flags="$link_flags ${EXTRA_LINK_FLAGS:-}"
}
variant_flags

for tool in cmake ninja cc; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed (apt-get install cmake ninja-build gcc libmbedtls-dev)"
done
[ -e /usr/include/mbedtls/ssl.h ] || [ -e /usr/local/include/mbedtls/ssl.h ] \
    || die "mbedTLS headers are missing (apt-get install libmbedtls-dev)"
if [ -n "$shim_lib" ] && [ -z "${MQTLS_SHIM_LIB:-}" ]; then
    profile="${MQTLS_SHIM_PROFILE:-release}"
    say "building mqtls-shim ($profile)"
    case "$profile" in
        release) (cd "$root" && cargo build -q -p mqtls-shim --release) ;;
        debug) (cd "$root" && cargo build -q -p mqtls-shim) ;;
        *) die "MQTLS_SHIM_PROFILE=$profile: use release or debug" ;;
    esac || die "cargo could not build mqtls-shim"
fi
[ -z "$shim_lib" ] || [ -f "$shim_lib" ] || die "no shim library at $shim_lib"

if [ -z "$source_kind" ]; then
    if [ -d "${NANOMQ_ARCHIVES:-$root/../shared/targets/nanomq}" ]; then
        source_kind=archives; source_dir="${NANOMQ_ARCHIVES:-$root/../shared/targets/nanomq}"
    else
        say "no archives at ${NANOMQ_ARCHIVES:-$root/../shared/targets/nanomq} (set NANOMQ_ARCHIVES or pass --archives): cloning the pinned commits"
        source_kind=git
    fi
fi

work="$out/$state-$variant"
src="$out/src/$state"
mkdir -p "$work"

# The archive in $1 whose name is $2-<prefix of $3>.tar.xz.
archive_for() {
    local dir="$1" stem="$2" rev="$3" f prefix
    for f in "$dir/$stem"-*.tar.xz; do
        [ -e "$f" ] || continue
        prefix="${f##*/$stem-}"; prefix="${prefix%.tar.xz}"
        case "$rev" in "$prefix"*) echo "$f"; return 0 ;; esac
    done
    die "no $stem-${rev:0:9}.tar.xz in $dir"
}

# Clones repository $1 at commit $2 into $3 (only that commit's history).
clone_at() {
    local url="$1" rev="$2" dir="$3"
    rm -rf "$dir"
    git init -q "$dir"
    git -C "$dir" fetch -q --depth 1 "$url" "$rev" 2>/dev/null \
        || git -C "$dir" fetch -q "$url" \
        || die "cannot fetch $url"
    git -C "$dir" -c advice.detachedHead=false checkout -q "$rev" || die "$url has no commit $rev"
}

assemble() {
    case "$source_kind" in
        tree)
            [ -f "$source_dir/CMakeLists.txt" ] && [ -f "$source_dir/nng/CMakeLists.txt" ] \
                || die "$source_dir is not a nanomq tree with its nng/ submodule (git submodule update --init)"
            src="$(cd "$source_dir" && pwd)"
            return
            ;;
        archives)
            [ -d "$source_dir" ] || die "no archive directory $source_dir"
            local a_mq a_nng a_nftp
            a_mq="$(archive_for "$source_dir" nanomq "$nanomq_rev")"
            a_nng="$(archive_for "$source_dir" nanonng "$nng_rev")"
            a_nftp="$(archive_for "$source_dir" nftp-codec "$nftp_rev")"
            rm -rf "$src"; mkdir -p "$src"
            tar xJf "$a_mq" -C "$src"
            rm -rf "$src/nanomq/nng" "$src/nanomq/nanomq_cli/nftp-codec"
            tar xJf "$a_nng" -C "$src/nanomq"
            tar xJf "$a_nftp" -C "$src/nanomq/nanomq_cli"
            ;;
        git)
            command -v git >/dev/null 2>&1 || die "git is not installed"
            rm -rf "$src"; mkdir -p "$src"
            clone_at "${NANOMQ_GIT:-https://github.com/nanomq/nanomq.git}" "$nanomq_rev" "$src/nanomq"
            rm -rf "$src/nanomq/nng" "$src/nanomq/nanomq_cli/nftp-codec"
            clone_at "${NANONNG_GIT:-https://github.com/nanomq/NanoNNG.git}" "$nng_rev" "$src/nanomq/nng"
            clone_at "${NFTP_GIT:-https://github.com/nanomq/nftp-codec.git}" "$nftp_rev" "$src/nanomq/nanomq_cli/nftp-codec"
            ;;
    esac
    src="$src/nanomq"
}

started=$SECONDS
assemble
say "$state ($what): sources from $source_kind in $src"

build="$work/build"
mkdir -p "$build"
# A changed flag set or source tree needs a fresh configure.
stamp="$variant|$source_kind|$src|$c_flags|$link_flags|${cmake_extra[*]:-}"
if [ "$(cat "$build/.mqtls-stamp" 2>/dev/null)" != "$stamp" ]; then
    rm -rf "$build"; mkdir -p "$build"
fi
cmake -S "$src" -B "$build" -G Ninja -Wno-dev \
    -DCMAKE_BUILD_TYPE=Debug \
    -DNNG_ENABLE_TLS=ON -DBUILD_CLIENT=ON -DNNG_ENABLE_SQLITE=OFF \
    -DNNG_TESTS=OFF -DNANOMQ_TESTS=OFF -DENABLE_SYSLOG=OFF \
    -DCMAKE_C_FLAGS="$c_flags" \
    -DCMAKE_EXE_LINKER_FLAGS="$link_flags" \
    -DCMAKE_SHARED_LINKER_FLAGS="$link_flags" \
    "${cmake_extra[@]}" >"$work/configure.log" 2>&1 \
    || { tail -30 "$work/configure.log" >&2; die "cmake failed (whole log: $work/configure.log)"; }
echo "$stamp" >"$build/.mqtls-stamp"
if [ -n "$shim_lib" ]; then
    # ninja does not know the executables depend on the shim: relink them.
    for t in $targets; do
        find "$build" -type f -name "$t" -perm -u+x -delete
    done
fi
# shellcheck disable=SC2086
ninja -C "$build" -j "$jobs" $targets >"$work/build.log" 2>&1 \
    || { grep -m5 -B2 -A5 'error' "$work/build.log" >&2 || tail -30 "$work/build.log" >&2; die "build failed (whole log: $work/build.log)"; }

mkdir -p "$work/bin"
for t in $targets; do
    found="$(find "$build" -type f -name "$t" -perm -u+x | head -1)"
    [ -n "$found" ] || die "ninja built $t but no executable of that name is in $build"
    cp -f "$found" "$work/bin/$t"
done
cat >"$work/build.env" <<EOF
state=$state
variant=$variant
what="$what"
nanomq=$nanomq_rev
nanonng=$nng_rev
nftp_codec=$nftp_rev
source=$source_kind
c_flags="$c_flags"
link_flags="$link_flags"
shim_lib="$shim_lib"
EOF
say "$state-$variant: built $targets in $((SECONDS - started)) s"
echo "$work/bin"
