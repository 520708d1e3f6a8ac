#!/usr/bin/env bash
# Builds or runs ssi's KUnit suites in UML.
#
#   scripts/kunit.sh build        build the UML kernel with the suites
#   scripts/kunit.sh run [GLOB]   build (incrementally) and run; GLOB filters suites,
#                                 e.g. 'ssi_wire*'
#
# The suites are compiled in a throwaway tree: a hard-link copy (`cp -al`) of the
# extracted Linux source with kunit-tests/ and rust/ copied in as drivers/ssi/. Only
# drivers/Makefile and drivers/Kconfig are replaced in that copy (by new files, so the
# hard links to the pristine source are never written through).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

cmd=${1:-run}
shift || true

src=$(ssi_kernel_src) || ssi_die "no kernel source: run make setup"
tree=$SSI_CACHE/kunit-tree/$(basename "$src")
build=$(ssi_kunit_build_dir)

if [ ! -f "$tree/.ssi-tree" ]; then
    rm -rf "$tree" "$tree.tmp"
    mkdir -p "$(dirname "$tree")"
    cp -al "$src" "$tree.tmp"
    for f in Makefile Kconfig; do
        cp --remove-destination "$src/drivers/$f" "$tree.tmp/drivers/$f"
    done
    printf 'obj-y += ssi/\n' >>"$tree.tmp/drivers/Makefile"
    # Insert before the final `endmenu` of drivers/Kconfig.
    sed -i '$ d' "$tree.tmp/drivers/Kconfig"
    tail -n 1 "$src/drivers/Kconfig" | grep -qx 'endmenu' ||
        ssi_die "unexpected end of drivers/Kconfig in $src"
    printf 'source "drivers/ssi/Kconfig"\n\nendmenu\n' >>"$tree.tmp/drivers/Kconfig"
    touch "$tree.tmp/.ssi-tree"
    mv "$tree.tmp" "$tree"
fi

# Mirror the repository layout under drivers/ssi so that the `#[path]` includes of
# rust/src from kunit-tests/ resolve the same way as in the repository.
mkdir -p "$tree/drivers/ssi/kunit-tests" "$tree/drivers/ssi/rust/src"
rsync -a --delete "$SSI_ROOT/kunit-tests/" "$tree/drivers/ssi/kunit-tests/"
rsync -a --delete "$SSI_ROOT/rust/src/" "$tree/drivers/ssi/rust/src/"
printf 'obj-$(CONFIG_SSI_KUNIT_TEST) += kunit-tests/\n' >"$tree/drivers/ssi/Makefile.new"
printf 'source "drivers/ssi/kunit-tests/Kconfig"\n' >"$tree/drivers/ssi/Kconfig.new"
for f in Makefile Kconfig; do
    cmp -s "$tree/drivers/ssi/$f.new" "$tree/drivers/ssi/$f" 2>/dev/null &&
        rm "$tree/drivers/ssi/$f.new" || mv "$tree/drivers/ssi/$f.new" "$tree/drivers/ssi/$f"
done

mkdir -p "$build"
cd "$tree"
case $cmd in
build)
    exec python3 tools/testing/kunit/kunit.py build --arch=um --jobs="$(nproc)" \
        --build_dir="$build" --kunitconfig="$SSI_ROOT/kunit-tests/.kunitconfig"
    ;;
run)
    exec python3 tools/testing/kunit/kunit.py run --arch=um --jobs="$(nproc)" \
        --build_dir="$build" --kunitconfig="$SSI_ROOT/kunit-tests/.kunitconfig" \
        --timeout=300 ${1:+"$1"}
    ;;
*) ssi_die "usage: $0 build|run [GLOB]" ;;
esac
