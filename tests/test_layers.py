#!/usr/bin/python3
"""The layers of docs/modules.md, from the sources' #include lines (issue 14).

A module is a public header's name (core/pr_fast.h: pr_fast); a .c file or a private header
(named *_impl.h, *_internal.h or *_private.h) belongs to the module whose name is the longest
prefix of its own (pr_backward_exec.c and pr_backward_impl.h: pr_backward). Module A uses B when a
file of A includes B's header. Checked:
  - no cycle among the modules of core/ and exact/ (today's pr_fast <-> pr_lowrank was one);
  - core/ includes nothing from exact/, and polyrope.h only core headers (the float library);
  - the expansion (pr_expand) uses none of the paths; the forward paths (pr_fast, pr_lowrank)
    use neither each other nor the backward; none of them uses error control (pr_control) or
    the auto model (pr_auto), and pr_control does not use pr_auto.
Usage: test_layers.py SOURCE_DIR. Prints every violation with the file and line."""
import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)\.h"', re.M)
PATHS = ['pr_expand', 'pr_fast', 'pr_lowrank', 'pr_backward']
ABOVE = {m: ['pr_control', 'pr_auto'] for m in PATHS}
ABOVE['pr_expand'] += ['pr_fast', 'pr_lowrank', 'pr_backward']   # the expansion is below the paths
ABOVE['pr_fast'] += ['pr_lowrank', 'pr_backward']                  # the forwards are apart, below
ABOVE['pr_lowrank'] += ['pr_fast', 'pr_backward']                  # the backward
ABOVE['pr_control'] = ['pr_auto']
PRIVATE = ('_impl', '_internal', '_private')


def modules(src):
    """{module: 'core' or 'exact'} from the headers, and [(dir, file)] of every source."""
    mods, files = {}, []
    for d in ('core', 'exact'):
        for f in sorted(os.listdir(os.path.join(src, d))):
            if f.endswith('.h') and not f[:-2].endswith(PRIVATE):
                mods[f[:-2]] = d
            if f.endswith(('.h', '.c')):
                files.append((d, f))
    return mods, files


def owner(f, mods):
    stem = f.rsplit('.', 1)[0]
    best = None
    for m in mods:
        if (stem == m or stem.startswith(m + '_')) and (best is None or len(m) > len(best)):
            best = m
    return best or stem


def main():
    src = sys.argv[1]
    mods, files = modules(src)
    uses, bad = {}, []
    for d, f in files:
        text = open(os.path.join(src, d, f), encoding='utf-8').read()
        a = owner(f, mods)
        for m in INCLUDE.finditer(text):
            b = owner(m.group(1) + '.h', mods)
            line = text.count('\n', 0, m.start()) + 1
            where = '%s/%s:%d' % (d, f, line)
            if b not in mods:
                continue
            if d == 'core' and mods[b] == 'exact':
                bad.append('%s: core/ includes exact/%s.h (the float library must not need Arb)' % (where, b))
            if b in ABOVE.get(a, []):
                bad.append('%s: %s includes %s.h, a layer above it (docs/modules.md)' % (where, a, b))
            if a != b:
                uses.setdefault(a, {}).setdefault(b, where)
    # cycles: depth-first search over the module graph
    state, stack = {}, []

    def visit(a):
        state[a] = 1
        stack.append(a)
        for b, where in sorted(uses.get(a, {}).items()):
            if state.get(b) == 1:
                cyc = stack[stack.index(b):] + [b]
                bad.append('include cycle %s (%s includes %s.h at %s)' % (' -> '.join(cyc), a, b, where))
            elif b not in state:
                visit(b)
        stack.pop()
        state[a] = 2

    for a in sorted(uses):
        if a not in state:
            visit(a)
    for m in PATHS + ['pr_control', 'pr_auto']:
        if m in mods and mods[m] != 'core':
            bad.append('%s.h is not in core/' % m)
    for m in ('pr_control', 'pr_auto'):
        if m not in mods:
            bad.append('%s.h is missing: the layer check has nothing to check' % m)
    for b in bad:
        print('FAIL', b)
    print('test_layers: %d modules, %d uses, %d violations' % (len(mods), sum(len(v) for v in uses.values()),
                                                                len(bad)))
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
