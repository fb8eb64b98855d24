#!/usr/bin/env python3
"""Each hot path beside its lower bound, from criterion's last run.

Reads <criterion dir>/**/new/{benchmark,estimates}.json and prints, per
input, the hot path's mean time, its bounds' and the ratio, against the
targets the issues set (webhook 1.5x of HMAC + JSON parse, buildspec 2x of
a plain YAML load). Exit status 1 when a ratio is over its target.
"""
import json
import pathlib
import sys


def load(root):
    means = {}
    for bench in root.glob("**/new/benchmark.json"):
        meta = json.loads(bench.read_text())
        estimates = json.loads((bench.parent / "estimates.json").read_text())
        key = (meta["group_id"], meta["function_id"], meta.get("value_str"))
        means[key] = estimates["mean"]["point_estimate"]  # nanoseconds
    return means


def fmt(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.1f} µs"
    return f"{ns:.0f} ns"


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")
    means = load(root)
    if not means:
        sys.exit(f"no criterion results under {root}: run ./scripts/bench first")
    over = False

    def values(group, function):
        return sorted(v for (g, f, v) in means if g == group and f == function)

    def row(label, path, bounds, target=None):
        nonlocal over
        bound = sum(bounds.values())
        ratio = path / bound
        verdict = ""
        if target is not None:
            ok = ratio <= target
            over |= not ok
            verdict = f"  (target ≤ {target}×: {'met' if ok else 'OVER'})"
        parts = " + ".join(f"{k} {fmt(v)}" for k, v in bounds.items())
        print(f"  {label:<28} {fmt(path):>10}  vs {parts} = {ratio:.2f}×{verdict}")

    print("webhook: handler (verify + parse + normalise + filter) vs HMAC-SHA256 + serde_json")
    for v in values("webhook", "handler"):
        h = means[("webhook", "handler", v)]
        hmac = means[("webhook", "hmac_sha256", v)]
        row(v, h, {"hmac": hmac, "Value": means[("webhook", "serde_json_value", v)]}, 1.5)
        row("", h, {"hmac": hmac, "IgnoredAny": means[("webhook", "serde_json_ignored", v)]})

    print("event: Build Requested serialised as the bus does, parsed as the next function does")
    for v in values("event", "serialise"):
        s = means[("event", "serialise", v)]
        row(v + " serialise", s, {"Value": means[("event", "serialise_value", v)]})
        row("", s, {"copy": means[("event", "copy_bytes", v)]})
        p = means[("event", "parse", v)]
        row(v + " parse", p, {"Value": means[("event", "parse_value", v)]})
        row("", p, {"IgnoredAny": means[("event", "parse_ignored", v)]})

    if ("aws_request", "sdk_put_object", None) in means:
        print("aws request: the ledger's PutObject through the SDK vs signed by hand vs unsigned")
        sdk = means[("aws_request", "sdk_put_object", None)]
        signed = means[("aws_request", "signed_put", None)]
        row("SDK vs hand-signed", sdk, {"signed": signed})
        row("hand-signed vs unsigned", signed, {"plain": means[("aws_request", "plain_put", None)]})

    if values("gantry.yaml", "Config::parse + repository"):
        print("gantry.yaml: parse and look up the last repository vs yaml_rust2 load")
        for v in values("gantry.yaml", "Config::parse + repository"):
            row(f"{v} repositories", means[("gantry.yaml", "Config::parse + repository", v)],
                {"yaml_rust2": means[("gantry.yaml", "yaml_rust2 load_from_str", v)]})

    print("buildspec: validate every corpus buildspec vs yaml_rust2 load")
    for (g, f, v), ns in sorted(means.items()):
        if f == "buildspec::validate":
            row(g, ns, {"yaml_rust2": means[(g, "yaml_rust2 load_from_str", v)]}, 2.0)
    sys.exit(1 if over else 0)


if __name__ == "__main__":
    main()
