#!/usr/bin/env bash
# Builds ssi: `modules` (the four .ko against $KDIR, default the guest kernel built by
# make setup), `ssictl` (and ssi-memtest), `hostile` (the hostile RDMA CM test client, target/ssi-hostile),
# `tools` (target/ssi-regtest, target/ssi-counter and target/ssi-threads, programs the
# migration and thread tests run),
# `fmt`, `clean`.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

kdir() {
    local k=${KDIR:-}
    [ -n "$k" ] || k=$(ssi_guest_kdir)
    [ -f "$k/Makefile" ] || ssi_die "no kernel build in $k: run 'make setup', or pass KDIR=/path/to/a/Rust-enabled kernel build"
    grep -q '^CONFIG_RUST=y' "$k/.config" 2>/dev/null ||
        ssi_die "$k is not built with CONFIG_RUST=y"
    printf '%s\n' "$k"
}

case ${1:-} in
modules)
    k=$(kdir)
    ssi_step "modules against $k"
    make -C "$k" M="$SSI_ROOT" -j"$(nproc)" modules
    ;;
ssictl)
    ssi_step "ssictl"
    cargo build --release --quiet --manifest-path "$SSI_ROOT/Cargo.toml" -p ssi-userspace-tools -p ssi-gpio-cable
    ;;
hostile)
    ssi_step "ssi-hostile"
    mkdir -p "$SSI_ROOT/target"
    # The ABI version it speaks by default is the one of rust/src/ioctl.rs.
    abi=$(ssi_abi_version)
    gcc -O2 -Wall -Wextra -DDEFAULT_ABI="$abi" -o "$SSI_ROOT/target/ssi-hostile" \
        "$SSI_ROOT/tests/tools/ssi-hostile.c" -lrdmacm -libverbs
    ;;
tools)
    # Test programs that run in the guests: migration register/FPU check, the counter,
    # the multi-threaded ssi-threads (distributed threads) and the library it loads.
    ssi_step "test tools"
    mkdir -p "$SSI_ROOT/target"
    for t in ssi-regtest ssi-counter; do
        gcc -O2 -Wall -Wextra -o "$SSI_ROOT/target/$t" "$SSI_ROOT/tests/tools/$t.c"
    done
    gcc -O2 -Wall -Wextra -pthread -o "$SSI_ROOT/target/ssi-threads" "$SSI_ROOT/tests/tools/ssi-threads.c"
    gcc -O2 -Wall -Wextra -shared -fPIC -o "$SSI_ROOT/target/libssi-dl.so" "$SSI_ROOT/tests/tools/ssi-dl.c"
    ;;
fmt)
    k=${KDIR:-$(ssi_guest_kdir)}
    cargo fmt --manifest-path "$SSI_ROOT/Cargo.toml" --all
    find "$SSI_ROOT"/ssi_* "$SSI_ROOT"/kunit-tests "$SSI_ROOT"/rust/kmod -name '*.rs' -print0 |
        xargs -0 rustfmt --edition 2021 --config-path "$(ssi_kernel_src)/.rustfmt.toml"
    ;;
clean)
    k=${KDIR:-$(ssi_guest_kdir)}
    [ -f "$k/Makefile" ] && make -C "$k" M="$SSI_ROOT" clean
    cargo clean --manifest-path "$SSI_ROOT/Cargo.toml"
    ;;
*) ssi_die "usage: $0 modules|ssictl|hostile|tools|fmt|clean" ;;
esac
