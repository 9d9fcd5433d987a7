#!/usr/bin/env python3
"""Paired differences between methods of one `shapes experiment` run.

Reads DIR/results.csv and, for each method other than the reference, takes the difference of every score on the same
concept, prompt and seed (the trained model's images only, not the stage ends), and prints its mean and the half-width
of a normal 95 % interval as a markdown table. Pairs where either image has no value (an image without an object has no
[V]-map IoU) are left out and counted separately.

    python3 samples/experiment/paired_differences.py DIR [--reference attndreambooth]
"""
import argparse
import csv
import math
import statistics
import sys

SCORES = [("text", "text"), ("identity", "identity"), ("v_map_iou", "[V]-map IoU"),
          ("v_share_16", "[V] share 16×16"), ("v_share_8", "[V] share 8×8"), ("v_share_4", "[V] share 4×4")]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", help="the experiment's --out folder")
    parser.add_argument("--reference", default="attndreambooth", help="the method the others are compared with")
    args = parser.parse_args()
    with open(f"{args.folder}/results.csv", newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["after_stage"] == "" and r["tuning"].lower() != "true"]
    images = {(r["concept"], r["method"], r["prompt_index"], r["seed"]): r for r in rows}
    methods = list(dict.fromkeys(r["method"] for r in rows))
    if args.reference not in methods:
        sys.exit(f"{args.folder}/results.csv has no images of the reference method '{args.reference}'")
    print(f"| method − {args.reference} (same concept, prompt, seed) | pairs | "
          + " | ".join(label for _, label in SCORES) + " |")
    print("|---|---|" + "---|" * len(SCORES))
    for method in methods:
        if method == args.reference:
            continue
        pairs = sum(1 for (c, m, pr, sd) in images if m == method and (c, args.reference, pr, sd) in images)
        cells = []
        for key, _ in SCORES:
            d = []
            for (concept, m, prompt, seed), row in images.items():
                ref = images.get((concept, args.reference, prompt, seed))
                if m != method or ref is None:
                    continue
                if row[key] != "" and ref[key] != "":
                    d.append(float(row[key]) - float(ref[key]))
            if len(d) < 2:
                cells.append("–")
                continue
            half = 1.96 * statistics.stdev(d) / math.sqrt(len(d))
            cells.append(f"{statistics.mean(d):+.3f}".replace("-", "−") + f" ± {half:.3f}" + (f" ({len(d)} pairs)" if len(d) < pairs else ""))
        print(f"| {method} | {pairs} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
