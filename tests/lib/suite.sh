# shellcheck shell=bash
# The start of every cluster test suite:
#
#   . "$(dirname "$0")/../lib/suite.sh" NAME
#
# sources the project's shell library, the paths of the build outputs, the cluster
# harness and the assertions, names the suite NAME (its results are counted under it)
# and checks that the modules are built. Settings the harness reads when it is
# sourced (SSI_GPIO_CABLE, SSI_GUEST_CPU, SSI_GUEST_MEM) are set before this line.

set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"
. "$SSI_ROOT/tests/lib/paths.sh"
. "$SSI_ROOT/tests/lib/cluster.sh"
t_suite=$1
. "$SSI_ROOT/tests/lib/assert.sh"

for ko in "$KO_CORE" "$KO_RDMA" "$KO_MIGRATE" "$KO_GPIO"; do
    [ -f "$ko" ] || ssi_die "$ko not built: run make"
done
