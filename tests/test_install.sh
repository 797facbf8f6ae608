#!/bin/sh
# The two libraries as a user sees them (issue 14, docs/modules.md):
#  1. libpolyrope and a program linked against it alone (tests/test_float_only.c) need no
#     Arb, FLINT, GMP or MPFR (readelf NEEDED entries);
#  2. `meson install` into a DESTDIR, then tests/test_float_only.c built from the installed tree
#     with `pkg-config --cflags --libs polyrope` runs and needs none of them either, and a
#     program on polyrope-exact.h built with `pkg-config --cflags --libs polyrope-exact` runs.
# Usage: test_install.sh BUILD_DIR SOURCE_DIR PREFIX LIBDIR SANITIZE FLOAT_ONLY_EXE CC [CC ARGS...]
set -eu
build=$1 src=$2 prefix=$3 libdir=$4 sanitize=$5 float_exe=$6
shift 6
fail() { echo "test_install: FAIL: $*" >&2; exit 1; }
case $libdir in /*) ;; *) libdir=$prefix/$libdir ;; esac

exact_libs='libflint|libarb|libflint-arb|libgmp|libmpfr'
needs_exact() { readelf -d "$1" | grep NEEDED | grep -E "$exact_libs" || true; }

[ -z "$(needs_exact "$build/libpolyrope.so")" ] || fail "libpolyrope.so needs: $(needs_exact "$build/libpolyrope.so")"
[ -z "$(needs_exact "$float_exe")" ] || fail "test_float_only needs: $(needs_exact "$float_exe")"
[ -n "$(needs_exact "$build/libpolyrope-exact.so")" ] || fail "libpolyrope-exact.so needs no Arb/FLINT: the check above cannot see them"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
dest=$tmp/root
meson install -C "$build" --destdir "$dest" --no-rebuild --quiet >"$tmp/install.log" 2>&1 \
    || { cat "$tmp/install.log" >&2; fail "meson install --destdir failed"; }
export PKG_CONFIG_PATH="$dest$libdir/pkgconfig"
export LD_LIBRARY_PATH="$dest$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
pc() { pkg-config --define-variable=prefix="$dest$prefix" "$@"; }
for h in polyrope.h polyrope-exact.h pr_control.h pr_auto.h pr_xversion.h; do
    [ -f "$dest$prefix/include/polyrope/$h" ] || fail "$h not installed in $dest$prefix/include/polyrope"
done
case "$(pc --cflags --libs polyrope)" in
    *flint*|*arb*|*gmp*|*mpfr*) fail "pkg-config polyrope names an exact dependency: $(pc --cflags --libs polyrope)" ;;
esac
san=
[ "$sanitize" = none ] || san="-fsanitize=$sanitize"

# the float program from the installed headers and library alone
# shellcheck disable=SC2046
"$@" -std=c11 -D_GNU_SOURCE $san -I"$src/tests" -o "$tmp/float_only" "$src/tests/test_float_only.c" \
    $(pc --cflags --libs polyrope) -lm || fail "test_float_only.c does not build with pkg-config polyrope"
[ -z "$(needs_exact "$tmp/float_only")" ] || fail "installed float program needs: $(needs_exact "$tmp/float_only")"
"$tmp/float_only" >"$tmp/float.log" 2>&1 || { cat "$tmp/float.log" >&2; fail "installed float program failed"; }
grep -q "0 failed" "$tmp/float.log" || fail "installed float program did not finish: $(tail -1 "$tmp/float.log")"

# the exact library on top, from the installed tree
cat >"$tmp/exact.c" <<'EOF'
#include <string.h>
#include "polyrope-exact.h"
int main(void)
{
    /* one certification through Arb: P(x) = 1 + x has relative error about x²/2 <= 5e-5 < 1e-3
     * for e^x on [-0.01, 0.01] */
    const double c[2] = {1.0, 1.0};
    pr_certexp_t r;
    pr_certexp_init(r);
    int st = pr_certexp_sup_d(r, c, 1, PR_EXPOLY_EXP_REL, 0.01, 1e-3, 0);
    const char *v = pr_cert_verdict_name(r->verdict);
    pr_certexp_clear(r);
    pr_xversion_fprint(stdout, "");
    printf("P = 1 + x on [-0.01, 0.01]: %s (%s)\n", v, pr_strerror(st));
    return st || strcmp(v, "certified");
}
EOF
# shellcheck disable=SC2046
"$@" -std=c11 -D_GNU_SOURCE $san -o "$tmp/exact" "$tmp/exact.c" $(pc --cflags --libs polyrope-exact) \
    || fail "a polyrope-exact.h program does not build with pkg-config polyrope-exact"
"$tmp/exact" >"$tmp/exact.log" 2>&1 || { cat "$tmp/exact.log" >&2; fail "installed exact program failed"; }
echo "test_install: libpolyrope needs no Arb/FLINT/GMP/MPFR; installed polyrope and polyrope-exact build and run"
