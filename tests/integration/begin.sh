# shellcheck shell=bash
# begin.sh - what an integration test sources first, after TOP is set:
#
#   . "$TOP/tests/integration/begin.sh" PREFIX [mrstack]
#
# its private directory STACK_DIR (/tmp/PREFIX.XXXXXX, exported: the
# processes it starts carry it, and stack_cleanup knows them by it), an
# empty STACK_PIDS, the stack libraries (scripts/lib/stack.sh, with
# "mrstack" also scripts/lib/mrstack.sh, then lib.sh), and stack_cleanup
# on exit, pass or fail.
STACK_DIR=$(mktemp -d "/tmp/$1.XXXXXX")
export STACK_DIR
STACK_PIDS=()
. "$TOP/scripts/lib/stack.sh"
if [ "${2:-}" = mrstack ]; then
    . "$TOP/scripts/lib/mrstack.sh"
fi
. "$TOP/tests/integration/lib.sh"
trap stack_cleanup EXIT
