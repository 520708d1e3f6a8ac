#!/usr/bin/env bash
# make pizero: everything for a Raspberry Pi Zero (BCM2835, ARM1176JZF-S = ARMv6K),
# cross-built on x86_64 into $SSI_CACHE/build/pizero-*/ (see docs/PIZERO.md).
#
#   scripts/pizero.sh [all]      kernel + modules + ssictl + overlay (+ test userspace)
#   scripts/pizero.sh kernel     zImage, bcm2835-rpi-zero*.dtb and kernel modules from
#                                bcm2835_defconfig + pizero/kernel.config, built in a
#                                hard-link copy of the source with pizero/*.patch applied
#   scripts/pizero.sh modules    the four ssi modules for it (in $(pizero_out)/ssi)
#   scripts/pizero.sh ssictl     a static ARMv6 soft-float ssictl (runs on Raspbian armhf)
#   scripts/pizero.sh overlay    pizero/ssi-gpio-bus-overlay.dts -> ssi-gpio-bus.dtbo
#   scripts/pizero.sh userspace  busybox for armel (ARMv5TE: runs on ARMv6) for the
#                                raspi0 test's initramfs
#   scripts/pizero.sh paths      print where the results are
# Strict mode when run, not when sourced (tests/pizero/raspi0.sh uses its functions).
[ "${BASH_SOURCE[0]}" != "$0" ] || set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ARM_CROSS=arm-linux-gnueabihf-
ARM_MAKE=(ARCH=arm CROSS_COMPILE=$ARM_CROSS)
# The kernel's own Rust target for ARM; ssictl uses its musl-less twin with a static
# glibc from Debian's armel cross libc (soft-float, ARMv5TE+: every Pi runs it).
SSICTL_TARGET=arm-unknown-linux-gnueabi
SSICTL_LINKER=arm-linux-gnueabi-gcc

pizero_kdir() {
    printf '%s\n' "$SSI_CACHE/build/$(ssi_build_key pizero "$SSI_ROOT/pizero/kernel.config" \
        "$SSI_ROOT"/pizero/*.patch)"
}
pizero_out() { printf '%s\n' "$(pizero_kdir)/ssi-out"; }

step_kernel() {
    local src b tree line missing=0 start
    src=$(ssi_kernel_src) || ssi_die "no kernel source: run make setup"
    b=$(pizero_kdir)
    tree=$b/src
    ssi_step "Pi Zero kernel in $b"
    if [ -f "$b/.ssi-built" ]; then
        ssi_info "cached"
        return
    fi
    command -v ${ARM_CROSS}gcc >/dev/null || ssi_die "${ARM_CROSS}gcc missing: run make setup"
    rm -rf "$b" && mkdir -p "$b"
    # Our own copy of the source: hard links (no space, 2 s), and patch(1) writes a new
    # file for each file it changes, so the extracted tree is never modified.
    cp -al "$src" "$tree"
    local p
    for p in "$SSI_ROOT"/pizero/*.patch; do
        (cd "$tree" && patch -p1 --quiet --no-backup-if-mismatch <"$p") ||
            ssi_die "patch $p does not apply to $src"
    done
    [ "$(stat -c %i "$tree/arch/arm/Kconfig")" != "$(stat -c %i "$src/arch/arm/Kconfig")" ] ||
        ssi_die "patch modified the extracted source in place"
    local o=$b/obj
    mkdir -p "$o"
    ssi_run_logged "Pi Zero kernel: bcm2835_defconfig" pizero-config \
        make -C "$tree" O="$o" "${ARM_MAKE[@]}" bcm2835_defconfig
    ssi_run_logged "Pi Zero kernel: merge fragment" pizero-merge \
        "$tree/scripts/kconfig/merge_config.sh" -m -O "$o" "$o/.config" "$SSI_ROOT/pizero/kernel.config"
    ssi_run_logged "Pi Zero kernel: olddefconfig" pizero-olddefconfig \
        make -C "$tree" O="$o" "${ARM_MAKE[@]}" olddefconfig
    while read -r line; do
        case $line in CONFIG_*=[ym]) ;; *) continue ;; esac
        if ! grep -qx "$line" "$o/.config"; then
            printf '    config fragment line not honoured: %s\n' "$line" >&2
            missing=1
        fi
    done <"$SSI_ROOT/pizero/kernel.config"
    grep -qx 'CONFIG_RUST=y' "$o/.config" ||
        ssi_die "CONFIG_RUST did not stick for ARM (see $ssi_log_dir/pizero-olddefconfig.log)"
    [ $missing = 0 ] || ssi_die "Pi Zero config fragment not fully applied (see above)"
    start=$(date +%s)
    ssi_info "building zImage, dtbs, modules with -j$(nproc) (log: $ssi_log_dir/pizero-build.log)"
    ssi_run_logged "Pi Zero kernel: build" pizero-build \
        make -C "$tree" O="$o" "${ARM_MAKE[@]}" -j"$(nproc)" zImage modules \
        broadcom/bcm2835-rpi-zero.dtb broadcom/bcm2835-rpi-zero-w.dtb
    printf '%s\n' "$(($(date +%s) - start))" >"$b/build-seconds"
    ssi_info "built in $(cat "$b/build-seconds") s"
    touch "$b/.ssi-built"
    ln -sfn "$b" "$SSI_CACHE/build/pizero-latest"
}

need_kernel() {
    [ -f "$(pizero_kdir)/.ssi-built" ] || step_kernel
}

step_modules() {
    need_kernel
    local o out
    o=$(pizero_kdir)/obj
    out=$(pizero_out)/modules
    ssi_step "ssi modules for the Pi Zero in $out"
    # A copy of the module sources, apart from the x86_64 objects in the repository
    # (Kbuild's MO= would need a source tree without them).
    mkdir -p "$out"
    rsync -a --delete --prune-empty-dirs --include='*/' \
        --include='/Kbuild' --include='/ssi_*/Kbuild' --include='/ssi_*/*.rs' \
        --include='/ssi_*/*.c' --include='/ssi_*/*.h' --include='/rust/src/*.rs' \
        --include='/rust/kmod/*.rs' --include='/rust/kmod/*.awk' --exclude='*' \
        "$SSI_ROOT/" "$out/"
    make -C "$o" "${ARM_MAKE[@]}" M="$out" -j"$(nproc)" modules
    check_32bit_safe "$out"
}

# Formatting a u64/i64 with `{}` in Rust calls core's 64-bit Display, which on 32-bit
# ARM divides through the kernel's panicking __aeabi_uldivmod stub: a BUG at run time.
# Catch it at build time: no ssi module may import core's Display for u64/i64
# (v0-mangled `y`/`x`), nor the 64-bit division helpers (modpost would also refuse).
check_32bit_safe() {
    local ko bad=0 syms
    for ko in "$1"/*/*.ko; do
        syms=$(${ARM_CROSS}nm -u "$ko" | awk '{print $2}')
        if grep -E '^_R.*4core3fmt3num.*(y|x)NtB.*(7Display|5Debug)3fmt|__aeabi_[lu]+divmod|__udivdi3|__divdi3' <<<"$syms"; then
            printf '    %s uses 64-bit division or u64/i64 Display (see above)\n' "$ko" >&2
            bad=1
        fi
    done
    [ $bad = 0 ] || ssi_die "32-bit unsafe code in the modules: use div64 helpers and text::U64"
    ssi_info "no 64-bit division or u64/i64 Display in the ARM modules"
}

step_ssictl() {
    local out
    out=$(pizero_out)/bin
    ssi_step "static ssictl for ARMv6 in $out"
    command -v $SSICTL_LINKER >/dev/null || ssi_die "$SSICTL_LINKER missing: run make setup"
    mkdir -p "$out"
    # rustup offers no prebuilt std for 32-bit ARM here: build std from rust-src (the
    # pinned toolchain's own sources; RUSTC_BOOTSTRAP unlocks -Zbuild-std on stable).
    local t=${SSICTL_TARGET^^}
    t=${t//-/_}
    env RUSTC_BOOTSTRAP=1 \
        "CARGO_TARGET_${t}_LINKER=$SSICTL_LINKER" \
        "CARGO_TARGET_${t}_RUSTFLAGS=-C target-feature=+crt-static" \
        CARGO_TARGET_DIR="$SSI_CACHE/build/pizero-cargo" \
        cargo build --release --quiet --manifest-path "$SSI_ROOT/Cargo.toml" -p ssi-userspace-tools \
        --bin ssictl --target "$SSICTL_TARGET" -Zbuild-std=std,panic_abort
    cp "$SSI_CACHE/build/pizero-cargo/$SSICTL_TARGET/release/ssictl" "$out/ssictl"
    ssi_info "$(file -b "$out/ssictl" | cut -d, -f1-5)"
}

step_overlay() {
    local out
    out=$(pizero_out)
    ssi_step "device-tree overlay $out/ssi-gpio-bus.dtbo"
    mkdir -p "$out"
    dtc -@ -q -I dts -O dtb -o "$out/ssi-gpio-bus.dtbo" "$SSI_ROOT/pizero/ssi-gpio-bus-overlay.dts"
}

step_userspace() {
    local out=$SSI_CACHE/dl/armel deb
    ssi_step "busybox for armel in $out"
    if [ -x "$out/busybox" ]; then
        ssi_info "cached"
        return
    fi
    mkdir -p "$out"
    deb=$(ssi_armel_download busybox-static)
    dpkg-deb -x "$deb" "$out/x"
    cp "$out/x/bin/busybox" "$out/busybox"
    rm -rf "$out/x"
}

step_paths() {
    local b
    b=$(pizero_kdir)
    printf 'kernel    %s\n' "$b/obj/arch/arm/boot/zImage"
    printf 'dtb       %s\n' "$b/obj/arch/arm/boot/dts/broadcom/bcm2835-rpi-zero.dtb"
    printf 'modules   %s\n' "$(pizero_out)/modules/ssi_*/*.ko"
    printf 'ssictl    %s\n' "$(pizero_out)/bin/ssictl"
    printf 'overlay   %s\n' "$(pizero_out)/ssi-gpio-bus.dtbo"
    printf 'kbuild    %s (make -C ... ARCH=arm CROSS_COMPILE=%s INSTALL_MOD_PATH=...)\n' "$b/obj" "$ARM_CROSS"
}

[ "${BASH_SOURCE[0]}" = "$0" ] || return 0
steps=("$@")
[ ${#steps[@]} -gt 0 ] && [ "${steps[0]}" != all ] || steps=(kernel modules ssictl overlay userspace)
for s in "${steps[@]}"; do
    "step_$s"
done
