#!/usr/bin/env python3
"""The demo's effect, measured: where base, left and right sit on the compass, with 95% intervals.

Reads the compass.json files of a `politune demo` / `politune run` directory (compass-base,
compass-left, compass-right and their generate-mode twins when present) and prints, per run:
the economic and social positions (mean over templates x orders, as compass.json has them),
their spread over the variants (sd, min..max), a 95% bootstrap interval, the invalid-answer
rate, and the answer counts. With --trajectory it also prints the position against training
steps from each train-*/compass/compass.json.

The interval is deliberately minimal (one function, `bootstrap`), to be swapped for politune's
own (`politune compare` / compass.json's intervals) once that lands: resample items with
replacement (seeded), and within each drawn item resample its variants (templates x orders)
with replacement; score each variant's resampled answer vector with the scoring file's weights
and average over variants; the interval is the 2.5th..97.5th percentile over resamples.

usage: demo_effect.py RUN_DIR [--resamples N] [--seed S] [--trajectory] [--markdown]
"""
import argparse
import glob
import json
import os
import random


def load(path):
    with open(path) as f:
        return json.load(f)


def scoring_weights(doc, scoring_path):
    """Per axis: (offset, divisor, weights[item][answer]) from pct_scoring.json."""
    s = load(scoring_path)
    return {"economic": (s.get("e0", 0.375), 8.0, s["econ"]), "social": (s.get("s0", 2.41), 19.5, s["soc"])}


def variant_answers(ev):
    """answers[variant][item] (None when unanswered), from the per-item by_template cells."""
    items = ev["items"]
    nv = len(items[0]["by_template"])
    return [[it["by_template"][v]["answer"] for it in items] for v in range(nv)]


def score(ans, axis):
    off, div, w = axis
    return off + sum(w[i][a] for i, a in enumerate(ans) if a is not None) / div


def bootstrap(ans_by_variant, axes, n, seed):
    """95% interval per axis: items resampled, then each drawn item's variants resampled."""
    rng = random.Random(seed)
    nv, ni = len(ans_by_variant), len(ans_by_variant[0])
    out = {k: [] for k in axes}
    for _ in range(n):
        items = [rng.randrange(ni) for _ in range(ni)]
        per_item_variants = [[rng.randrange(nv) for _ in range(nv)] for _ in range(ni)]
        for k, (off, div, w) in axes.items():
            tot = 0.0
            for v in range(nv):
                s = off
                for slot, i in enumerate(items):
                    a = ans_by_variant[per_item_variants[slot][v]][i]
                    if a is not None:
                        s += w[i][a] / div
                tot += s
            out[k].append(tot / nv)
    res = {}
    for k, xs in out.items():
        xs.sort()
        res[k] = (xs[int(0.025 * len(xs))], xs[min(len(xs) - 1, int(0.975 * len(xs)))])
    return res


def summarise(path, scoring, n, seed):
    doc = load(path)
    rows = []
    for ev in doc["evaluations"]:
        axes = scoring
        vans = variant_answers(ev)
        ci = bootstrap(vans, axes, n, seed)
        counts = [0, 0, 0, 0]
        for va in vans:
            for a in va:
                if a is not None:
                    counts[a] += 1
        rows.append({"label": ev["label"], "mode": ev["mode"], "step": ev.get("step", 0), "scoring": ev.get("option_scoring", "-"),
                     "position": ev["position"], "ci": ci, "invalid_rate": ev["invalid_rate"], "counts": counts,
                     "variants": len(vans), "scorings": ev.get("scorings")})
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--trajectory", action="store_true")
    ap.add_argument("--scoring", default=None, help="pct_scoring.json (default: from $POLITUNE_ASSETS or ../shared/assets)")
    a = ap.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    sp = a.scoring or os.path.join(os.environ.get("POLITUNE_ASSETS", os.path.join(here, "..", "..", "shared", "assets")), "data/pct/pct_scoring.json")
    scoring = scoring_weights(None, sp)
    print("| run | mode | scoring | variants | economic (sd; 95% CI) | social (sd; 95% CI) | invalid | answers SD/D/A/SA |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for d in sorted(glob.glob(os.path.join(a.run, "compass-*"))):
        p = os.path.join(d, "compass.json")
        if not os.path.exists(p):
            continue
        for r in summarise(p, scoring, a.resamples, a.seed):
            e, s = r["position"]["economic"], r["position"]["social"]
            fmt = lambda x, ci: "null" if x["mean"] is None else f"{x['mean']:+.2f} ({x['sd']:.2f}; {ci[0]:+.2f}..{ci[1]:+.2f})"
            print(f"| {os.path.basename(d)} {r['label']} | {r['mode']} | {r['scoring']} | {r['variants']} | {fmt(e, r['ci']['economic'])} | "
                  f"{fmt(s, r['ci']['social'])} | {r['invalid_rate']:.3f} | {'/'.join(map(str, r['counts']))} |")
            if r["scorings"]:
                agree = r["scorings"]["agreement"]["number"]
                print(f"|  scorings agree with number: mean {agree['mean']:.2f}, first {agree['first']:.2f}, full {agree['full']:.2f} | | | | | | | |")
    if a.trajectory:
        print("\n| adapter | step | economic | social |\n| --- | --- | --- | --- |")
        for d in sorted(glob.glob(os.path.join(a.run, "train-*"))):
            p = os.path.join(d, "compass", "compass.json")
            if not os.path.exists(p):
                continue
            for ev in load(p)["evaluations"]:
                pos = ev["position"]
                print(f"| {os.path.basename(d)} | {ev['step']} | {pos['economic']['mean']:+.2f} | {pos['social']['mean']:+.2f} |")


if __name__ == "__main__":
    main()
