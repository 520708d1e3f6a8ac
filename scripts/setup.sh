#!/usr/bin/env bash
# make setup: installs everything ssi needs on a Debian 12 x86_64 machine and builds the
# guest, KUnit and Pi Zero kernels. Idempotent: every step checks whether its result is
# already there (in $SSI_CACHE, default ~/.cache/ssi) and skips itself if so.
#
#   scripts/setup.sh            all steps
#   scripts/setup.sh STEP...    only these: packages rust bindgen libclang source
#                               qemu-gpio guest-kernel kunit-kernel pizero-kernel
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# Debian packages: kernel build, guests (QEMU, busybox), RDMA userspace and perftest
# (run inside the guests from the shared host root), the verbs/RDMA CM headers of the
# hostile test client (tests/tools/ssi-hostile.c), python for kunit.py, criu for the
# migration benchmark's baseline, util-linux's setpriv for the tests' other users; the
# Pi Zero cross toolchains (gnueabihf for the kernel, armel's libc for a static ssictl),
# dtc/fdtoverlay and qemu-system-arm for the raspi0 board.
SSI_DEB_PACKAGES=(
    build-essential flex bison bc libelf-dev libssl-dev cpio rsync kmod xz-utils
    python3 python3-pip qemu-system-x86 busybox-static
    rdma-core ibverbs-providers ibverbs-utils perftest iproute2 procps iputils-ping
    librdmacm-dev libibverbs-dev criu util-linux
    gcc-arm-linux-gnueabihf gcc-arm-linux-gnueabi libc6-dev-armel-cross
    device-tree-compiler qemu-system-arm file
)

step_packages() {
    ssi_step "Debian packages"
    local missing=() p
    for p in "${SSI_DEB_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' ||
            missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        ssi_info "all ${#SSI_DEB_PACKAGES[@]} packages present"
        return
    fi
    [ "$(id -u)" = 0 ] || ssi_die "installing ${missing[*]} needs root (run make setup as root)"
    ssi_info "installing: ${missing[*]}"
    ssi_run_logged "apt-get update" apt-update apt-get update
    ssi_run_logged "apt-get install" apt-install \
        env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
}

step_rust() {
    ssi_step "Rust toolchain $SSI_RUST_TOOLCHAIN with rust-src"
    command -v rustup >/dev/null || ssi_die "rustup not found: install it (https://rustup.rs) and re-run"
    local sysroot
    if sysroot=$(rustc --print sysroot 2>/dev/null) &&
        [ -d "$sysroot/lib/rustlib/src/rust/library/core" ] &&
        rustup component list --installed --toolchain "$SSI_RUST_TOOLCHAIN" 2>/dev/null | grep -q '^rustfmt'; then
        ssi_info "$(rustc -V)"
        return
    fi
    ssi_run_logged "rustup toolchain install" rustup \
        rustup toolchain install "$SSI_RUST_TOOLCHAIN" --profile minimal \
        --component rust-src,rustfmt,clippy
    ssi_info "$(rustc -V)"
}

step_bindgen() {
    ssi_step "bindgen-cli $SSI_BINDGEN_VERSION"
    local b=$SSI_CACHE/tools/bindgen/bin/bindgen
    if [ -x "$b" ] && "$b" --version | grep -q " $SSI_BINDGEN_VERSION"; then
        ssi_info "present"
        return
    fi
    ssi_info "cargo install (a few minutes)"
    ssi_run_logged "cargo install bindgen-cli" bindgen \
        cargo install bindgen-cli --locked --version "$SSI_BINDGEN_VERSION" \
        --root "$SSI_CACHE/tools/bindgen"
}

step_libclang() {
    ssi_step "libclang $SSI_LIBCLANG_VERSION (Debian 12 ships <= 16; Linux 7.2 needs >= 17)"
    if [ -e "$LIBCLANG_PATH/libclang.so" ] &&
        [ -d "$SSI_CACHE/tools/libclang/libclang-$SSI_LIBCLANG_VERSION.dist-info" ]; then
        ssi_info "present in $LIBCLANG_PATH"
        return
    fi
    rm -rf "$SSI_CACHE/tools/libclang"
    # --target keeps it out of every Python environment; --break-system-packages only
    # silences Debian's PEP 668 guard, which does not apply to a --target install.
    local brk=
    python3 -m pip install --help | grep -q -- --break-system-packages && brk=--break-system-packages
    ssi_run_logged "pip install libclang" libclang \
        python3 -m pip install --no-cache-dir $brk --target "$SSI_CACHE/tools/libclang" \
        "libclang==$SSI_LIBCLANG_VERSION"
    [ -e "$LIBCLANG_PATH/libclang.so" ] || ssi_die "libclang.so not found in $LIBCLANG_PATH"
}

# Debian's linux-source-7.2 (trixie-backports) through an isolated apt configuration:
# own source list, lists, cache and an empty dpkg status, so the system's apt sources
# and installed packages are never touched.
step_source() {
    ssi_step "Linux 7.2 source ($SSI_KERNEL_PKG from trixie-backports)"
    local cur
    if cur=$(ssi_kernel_src) && [ -f "$cur/Makefile" ]; then
        ssi_info "present: $cur"
        return
    fi
    ssi_isolated_apt trixie-backports trixie-backports
    local ver
    ver=$(ssi_apt_candidate "$SSI_KERNEL_PKG") || ssi_die "$SSI_KERNEL_PKG not found in trixie-backports"
    ssi_info "version $ver"
    ssi_apt_download "$SSI_CACHE/dl" "$SSI_KERNEL_PKG=$ver"
    local deb dest=$SSI_CACHE/src/linux-$ver tmp=$SSI_CACHE/src/.extract
    deb=$(ls "$SSI_CACHE/dl/${SSI_KERNEL_PKG}_${ver//:/%3a}_all.deb")
    rm -rf "$tmp" "$dest" && mkdir -p "$tmp"
    ssi_info "extracting"
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" --wildcards '*.tar.xz'
    tar -xJf "$tmp"/usr/src/"$SSI_KERNEL_PKG".tar.xz -C "$tmp"
    mv "$tmp/$SSI_KERNEL_PKG" "$dest"
    rm -rf "$tmp"
    printf '%s\n' "$ver" >"$SSI_CACHE/src/current-version"
    ssi_info "extracted to $dest"
}

# QEMU 10 from bookworm-backports, for the GPIO cable only: Debian 12's QEMU 7.2 has no
# vhost-user-gpio-pci. Downloaded through an isolated apt configuration (like the kernel
# source) and unpacked into $SSI_CACHE/qemu-<version>, never installed: the system's
# QEMU stays the one the other guests use (tests/lib/cluster.sh runs it for SSI_GPIO_CABLE=1).
SSI_QEMU_GPIO_PKGS=(qemu-system-x86 qemu-system-common qemu-system-data)
step_qemu_gpio() {
    ssi_step "QEMU with vhost-user-gpio-pci (bookworm-backports, unpacked in $SSI_CACHE)"
    local cur
    if cur=$(ssi_qemu_gpio_root) && [ -x "$cur/usr/bin/qemu-system-x86_64" ]; then
        ssi_info "present: $cur"
        return
    fi
    ssi_isolated_apt bookworm-backports bookworm-backports
    local ver dl=$SSI_CACHE/dl-bpo
    ver=$(ssi_apt_candidate qemu-system-x86) || ssi_die "qemu-system-x86 not in bookworm-backports"
    ssi_info "version $ver"
    rm -f "$dl"/*.deb
    ssi_apt_download "$dl" "${SSI_QEMU_GPIO_PKGS[@]/%/=$ver}"
    local dest=$SSI_CACHE/qemu-${ver//[:~+]/_} tmp=$SSI_CACHE/.qemu-extract deb
    rm -rf "$tmp" "$dest" && mkdir -p "$tmp"
    for deb in "$dl"/*.deb; do dpkg-deb -x "$deb" "$tmp"; done
    if ! QEMU_MODULE_DIR=$tmp/usr/lib/x86_64-linux-gnu/qemu "$tmp/usr/bin/qemu-system-x86_64" \
        -L "$tmp/usr/share/qemu" -device vhost-user-gpio-pci,help 2>/dev/null | grep -q chardev; then
        ldd "$tmp/usr/bin/qemu-system-x86_64" | grep 'not found' >&2 || true
        ssi_die "the unpacked QEMU $ver does not run or has no vhost-user-gpio-pci"
    fi
    mv "$tmp" "$dest"
    printf '%s\n' "$dest" >"$SSI_CACHE/qemu-gpio-current"
    ssi_info "unpacked in $dest"
}

check_rust_available() {
    local src=$1
    ssi_run_logged "make rustavailable" rustavailable make -C "$src" LLVM= rustavailable
}

# x86_64 guest kernel: tinyconfig + scripts/guest-x86_64.config (+ guest-lockdep.config
# with SSI_LOCKDEP=1, in a build directory of its own).
step_guest_kernel() {
    local src b frags
    mapfile -t frags < <(ssi_guest_fragments)
    src=$(ssi_kernel_src) || ssi_die "no kernel source: run scripts/setup.sh source"
    b=$(ssi_guest_kdir)
    ssi_step "x86_64 guest kernel in $b"
    if [ -f "$b/.ssi-built" ]; then
        ssi_info "cached"
        return
    fi
    check_rust_available "$src"
    mkdir -p "$b"
    ssi_run_logged "guest kernel: tinyconfig" guest-config make -C "$src" O="$b" tinyconfig
    ssi_run_logged "guest kernel: merge fragments" guest-merge \
        "$src/scripts/kconfig/merge_config.sh" -m -O "$b" "$b/.config" "${frags[@]}"
    ssi_run_logged "guest kernel: olddefconfig" guest-olddefconfig make -C "$src" O="$b" olddefconfig
    local line missing=0
    while read -r line; do
        case $line in CONFIG_*=[ym]) ;; *) continue ;; esac
        if ! grep -qx "$line" "$b/.config"; then
            printf '    config fragment line not honoured: %s\n' "$line" >&2
            missing=1
        fi
    done < <(cat "${frags[@]}")
    grep -qx 'CONFIG_RUST=y' "$b/.config" ||
        ssi_die "CONFIG_RUST did not stick (is LIBCLANG_PATH/bindgen usable? see $ssi_log_dir/guest-olddefconfig.log)"
    [ $missing = 0 ] || ssi_die "guest config fragment not fully applied (see above)"
    ssi_info "building bzImage + modules with -j$(nproc) (5-12 minutes cold; log: $ssi_log_dir/guest-build.log)"
    ssi_run_logged "guest kernel: build" guest-build make -C "$src" O="$b" -j"$(nproc)" bzImage modules
    touch "$b/.ssi-built"
    ln -sfn "$b" "$SSI_CACHE/build/guest-x86_64-latest"
}

# The UML KUnit kernel: a hard-link copy of the source with kunit-tests/ added as a
# driver directory. Never modifies the extracted source.
step_kunit_kernel() {
    local b
    b=$(ssi_kunit_build_dir)
    ssi_step "UML KUnit kernel in $b"
    if [ -f "$b/.ssi-built" ]; then
        ssi_info "cached"
        return
    fi
    ssi_info "building (about 4 minutes cold; log: $ssi_log_dir/kunit-build.log)"
    ssi_run_logged "KUnit kernel: build" kunit-build "$SSI_ROOT/scripts/kunit.sh" build
    touch "$b/.ssi-built"
}

# The Pi Zero kernel (scripts/pizero.sh; 32-bit ARMv6, cross-built, cached like the others).
step_pizero_kernel() {
    "$SSI_ROOT/scripts/pizero.sh" kernel
}

all_steps=(packages qemu_gpio rust bindgen libclang source guest_kernel kunit_kernel pizero_kernel)
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=("${all_steps[@]}")
start=$(date +%s)
for s in "${steps[@]}"; do
    "step_${s//-/_}"
done
ssi_step "setup done in $(($(date +%s) - start)) s"
