# shellcheck shell=bash
# Common environment for ssi's build, setup and test scripts. Source it; do not run it.
#
# Everything that is expensive to make (toolchain pieces, the Linux source, kernel
# builds) lives in $SSI_CACHE, outside the repository, keyed by what went into it, so
# that a fresh clone reuses a previous build and a changed config makes a new one.

SSI_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SSI_CACHE=${SSI_CACHE:-$HOME/.cache/ssi}

# The Linux release we build against: Debian's linux-source-7.2 from trixie-backports.
SSI_KERNEL_PKG=linux-source-7.2
SSI_LIBCLANG_VERSION=18.1.1
SSI_BINDGEN_VERSION=0.72.1

# The Rust toolchain pinned by rust-toolchain.toml. The kernel build runs rustc from
# its own directory, where rust-toolchain.toml is not seen: RUSTUP_TOOLCHAIN makes
# every rustc/cargo call use the pinned toolchain.
SSI_RUST_TOOLCHAIN=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' "$SSI_ROOT/rust-toolchain.toml")
export RUSTUP_TOOLCHAIN=$SSI_RUST_TOOLCHAIN
export PATH="$SSI_CACHE/tools/bindgen/bin:$HOME/.cargo/bin:$PATH"
export LIBCLANG_PATH="$SSI_CACHE/tools/libclang/clang/native"

ssi_log_dir=$SSI_CACHE/logs
mkdir -p "$ssi_log_dir"

# One progress line per step.
ssi_step() { printf '==> [%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
ssi_info() { printf '    %s\n' "$*"; }
ssi_die() { printf 'ssi: error: %s\n' "$*" >&2; exit 1; }

# The ABI version of this tree (SSI_ABI_VERSION of rust/src/ioctl.rs): what the modules
# and tools built from it speak.
ssi_abi_version() {
    local abi
    abi=$(sed -n 's/^pub const SSI_ABI_VERSION: u32 = \([0-9]*\);/\1/p' "$SSI_ROOT/rust/src/ioctl.rs")
    [ -n "$abi" ] || ssi_die "cannot find SSI_ABI_VERSION in rust/src/ioctl.rs"
    echo "$abi"
}

# ssi_run_logged STEP LOGNAME CMD...: runs CMD with its output in a log file; on failure
# names the step and the log and shows its tail.
ssi_run_logged() {
    local step=$1 log=$ssi_log_dir/$2.log
    shift 2
    if ! "$@" >"$log" 2>&1; then
        printf 'ssi: error: step "%s" failed; full log: %s\n--- last lines ---\n' "$step" "$log" >&2
        tail -n 25 "$log" >&2
        exit 1
    fi
}

# The extracted Linux source tree (set by setup: one directory per package version).
ssi_kernel_src() {
    local v
    v=$(cat "$SSI_CACHE/src/current-version" 2>/dev/null) || return 1
    printf '%s\n' "$SSI_CACHE/src/linux-$v"
}

# The system's Debian mirror (deb822 or one-line format, skipping "[options]" and cdrom
# entries); SSI_DEBIAN_MIRROR overrides; deb.debian.org as a last resort.
ssi_debian_mirror() {
    local uri=${SSI_DEBIAN_MIRROR:-}
    [ -n "$uri" ] || uri=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' \
        /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)
    [ -n "$uri" ] || uri=$(awk '/^deb / { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' \
        /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | head -n 1)
    printf '%s\n' "${uri:-http://deb.debian.org/debian}"
}

# ssi_isolated_apt NAME SUITE [ARCH]: an apt configuration of its own in
# $SSI_CACHE/apt-NAME (SUITE of the system's Debian mirror, own lists and cache, an
# empty dpkg status, only ARCH if given), so the system's apt sources and dpkg are never
# touched (adding trixie or sid to them would replace the system libc). Sets
# SSI_APT_OPTS to the options for apt-get/apt-cache and runs apt-get update with them.
ssi_isolated_apt() {
    local name=$1 suite=$2 arch=${3:-} a=$SSI_CACHE/apt-$1
    mkdir -p "$a/lists/partial" "$a/cache/archives/partial"
    {
        printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\n' "$(ssi_debian_mirror)" "$suite"
        [ -z "$arch" ] || printf 'Architectures: %s\n' "$arch"
        printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
    } >"$a/list.sources" # deb822: apt wants the .sources suffix
    SSI_APT_OPTS=(-o "Dir::Etc::sourcelist=$a/list.sources" -o Dir::Etc::sourceparts=/nonexistent
        -o "Dir::State::Lists=$a/lists" -o "Dir::Cache=$a/cache" -o Dir::State::status=/dev/null
        -o APT::Sandbox::User=root)
    [ -z "$arch" ] || SSI_APT_OPTS+=(-o "APT::Architecture=$arch" -o "APT::Architectures::=$arch")
    ssi_run_logged "isolated apt-get update ($suite${arch:+ $arch})" "apt-$name-update" \
        apt-get "${SSI_APT_OPTS[@]}" update
}

# ssi_apt_candidate PKG: the version of PKG that the last ssi_isolated_apt would fetch;
# fails if it has none.
ssi_apt_candidate() {
    local ver
    ver=$(apt-cache "${SSI_APT_OPTS[@]}" policy "$1" | awk '/Candidate:/ { print $2 }')
    [ -n "$ver" ] && [ "$ver" != "(none)" ] || return 1
    printf '%s\n' "$ver"
}

# ssi_apt_download DIR PKG[=VERSION]...: downloads the .deb files into DIR with the last
# ssi_isolated_apt configuration.
ssi_apt_download() {
    local dir=$1 p
    shift
    mkdir -p "$dir"
    for p in "$@"; do
        (cd "$dir" && ssi_run_logged "apt-get download $p" "apt-download-${p%%=*}" \
            apt-get "${SSI_APT_OPTS[@]}" download "$p")
    done
}

# ssi_armel_download PKG: downloads PKG for Debian armel (the system's own release) and
# prints the .deb path.
ssi_armel_download() {
    if ! ls "$SSI_CACHE/dl/$1"_*_armel.deb >/dev/null 2>&1; then
        ssi_isolated_apt armel "$(. /etc/os-release && printf '%s' "${VERSION_CODENAME:-bookworm}")" armel
        ssi_apt_download "$SSI_CACHE/dl" "$1:armel"
    fi
    ls "$SSI_CACHE/dl/$1"_*_armel.deb | head -n 1
}

# Identity of the toolchain that a kernel build depends on.
ssi_toolchain_id() {
    printf 'rustc=%s bindgen=%s libclang=%s gcc=%s\n' \
        "$(rustc -V 2>/dev/null)" "$SSI_BINDGEN_VERSION" "$SSI_LIBCLANG_VERSION" \
        "$(gcc -dumpfullversion 2>/dev/null)"
}

# ssi_build_key NAME FILES...: short hash over the source version, the toolchain and
# the given config files. Same inputs -> same build directory.
ssi_build_key() {
    local name=$1
    shift
    {
        cat "$SSI_CACHE/src/current-version" 2>/dev/null
        ssi_toolchain_id
        cat "$@"
    } | sha256sum | cut -c1-12 | sed "s/^/$name-/"
}

# Config fragments of the x86_64 guest kernel (SSI_LOCKDEP=1 adds lockdep).
ssi_guest_fragments() {
    printf '%s\n' "$SSI_ROOT/scripts/guest-x86_64.config"
    if [ "${SSI_LOCKDEP:-0}" = 1 ]; then printf '%s\n' "$SSI_ROOT/scripts/guest-lockdep.config"; fi
}

# Build directory of the x86_64 guest kernel.
ssi_guest_kdir() {
    local name=guest-x86_64 frags
    [ "${SSI_LOCKDEP:-0}" = 1 ] && name=guest-x86_64-lockdep
    mapfile -t frags < <(ssi_guest_fragments)
    printf '%s\n' "$SSI_CACHE/build/$(ssi_build_key "$name" "${frags[@]}")"
}

# Build directory of the UML KUnit kernel.
ssi_kunit_build_dir() {
    printf '%s\n' "$SSI_CACHE/build/$(ssi_build_key kunit-um "$SSI_ROOT/kunit-tests/.kunitconfig")"
}

# Root of the unpacked QEMU with vhost-user-gpio-pci (scripts/setup.sh qemu-gpio).
ssi_qemu_gpio_root() {
    local r
    r=$(cat "$SSI_CACHE/qemu-gpio-current" 2>/dev/null) && [ -d "$r" ] && printf '%s\n' "$r"
}

