#!/usr/bin/env python3
"""Checks on hc_probe's output for tests/integration/test_health_probes.sh.

Lines: "TIME probe VIP ENDPOINT ok|fail REASON...",
       "TIME change VIP ENDPOINT FROM -> TO (REASON)", "TIME ready N".

  streak LOG VIP FROM TO N [AFTER]
      The first change VIP FROM -> TO at or after time AFTER came right after
      exactly N probe results of the kind it needs (fail for down, ok for up),
      preceded by a result of the other kind. Exit 1 with a message if not.
  gaps LOG VIP FROM_T TO_T MAX
      Probes of VIP between times FROM_T and TO_T are at most MAX seconds
      apart (and there are at least two).
  changes LOG AFTER
      Prints the change lines at or after time AFTER.
"""
import sys


def parse(path):
    out = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 2:
                continue
            try:
                t = float(parts[0])
            except ValueError:
                continue
            out.append((t, parts[1], parts[2:] if len(parts) > 2 else [], line.rstrip("\n")))
    return out


def streak(path, vip, frm, to, n, after=0.0):
    lines = parse(path)
    idx = None
    for i, (t, kind, rest, _) in enumerate(lines):
        if t >= after and kind == "change" and rest[0] == vip and rest[2] == frm and rest[4] == to:
            idx = i
            break
    if idx is None:
        sys.exit("no change %s %s -> %s after %.3f" % (vip, frm, to, after))
    want = "fail" if to == "down" else "ok"
    results = [rest[2] for (_, kind, rest, _) in lines[:idx] if kind == "probe" and rest[0] == vip]
    count = 0
    for r in reversed(results):
        if r != want:
            break
        count += 1
    before = results[: len(results) - count]
    if count != n or (before and before[-1] == want):
        sys.exit("%s went %s -> %s after %d consecutive '%s' results, want exactly %d:\n%s" % (
            vip, frm, to, count, want, n, "\n".join(l for (_, k, r, l) in lines[max(0, idx - 12): idx + 1]
                                                   if r and r[0] == vip)))
    # Nothing of VIP's between its last probe line and the change line.
    last_probe = max(i for i, (_, kind, rest, _) in enumerate(lines[:idx]) if kind == "probe" and rest[0] == vip)
    for (_, kind, rest, line) in lines[last_probe + 1: idx]:
        if rest and rest[0] == vip:
            sys.exit("unexpected line between the last probe and the change: " + line)
    print("%s %s -> %s after exactly %d '%s' results (at %.3f)" % (vip, frm, to, n, want, lines[idx][0]))


def gaps(path, vip, t0, t1, limit):
    times = [t for (t, kind, rest, _) in parse(path) if kind == "probe" and rest[0] == vip and t0 <= t <= t1]
    if len(times) < 2:
        sys.exit("fewer than two probes of %s between %.3f and %.3f" % (vip, t0, t1))
    worst = max(b - a for a, b in zip(times, times[1:]))
    if worst > limit:
        sys.exit("%s: probes %.3f s apart between %.3f and %.3f (limit %.3f)" % (vip, worst, t0, t1, limit))
    print("%s: %d probes between %.3f and %.3f, at most %.3f s apart" % (vip, len(times), t0, t1, worst))


def changes(path, after):
    for (t, kind, _, line) in parse(path):
        if kind == "change" and t >= after:
            print(line)


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "streak":
        streak(args[0], args[1], args[2], args[3], int(args[4]), float(args[5]) if len(args) > 5 else 0.0)
    elif cmd == "gaps":
        gaps(args[0], args[1], float(args[2]), float(args[3]), float(args[4]))
    elif cmd == "changes":
        changes(args[0], float(args[1]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
