#!/usr/bin/env python3
"""Paired differences between methods of one `shapes experiment` run, or between two runs of the same methods.

Reads DIR/results.csv and, for each method other than the reference, takes the difference of every score on the same
concept, prompt and seed (the trained model's images only, not the stage ends), and prints its mean and the half-width
of a normal 95 % interval as a markdown table. Pairs where either image has no value (an image without an object has no
[V]-map IoU) are left out and counted separately.

With --against OTHER (another --out folder of the same concepts and prompts, run with one setting changed, e.g.
--optimizer-8bit), every method found in both runs is compared with itself instead: DIR − OTHER on the same concept,
prompt, seed and stage end, and the two runs' training losses step by step, per stage (from each cell's cell.json).

    python3 samples/experiment/paired_differences.py DIR [--reference attndreambooth]
    python3 samples/experiment/paired_differences.py DIR --against OTHER [--pixels]

--pixels adds, per method and stage end, the mean absolute difference of the paired images' 8-bit samples (0–255) and
their largest single difference.
"""
import argparse
import csv
import glob
import json
import math
import os
import statistics
import struct
import sys
import zlib

SCORES = [("text", "text"), ("identity", "identity"), ("v_map_iou", "[V]-map IoU"),
          ("v_share_16", "[V] share 16×16"), ("v_share_8", "[V] share 8×8"), ("v_share_4", "[V] share 4×4")]


def read_rows(folder, stage_ends):
    with open(f"{folder}/results.csv", newline="", encoding="utf-8") as f:
        return [r for r in csv.DictReader(f) if (stage_ends or r["after_stage"] == "") and r["tuning"].lower() != "true"]


def estimate(d):
    """Mean ± half-width of a normal 95 % interval, as the tables print it; "–" for fewer than two values."""
    if len(d) < 2:
        return "–"
    half = 1.96 * statistics.stdev(d) / math.sqrt(len(d))
    return f"{statistics.mean(d):+.3f}".replace("-", "−") + f" ± {half:.3f}"


def settings(folder):
    """Each method's steps per stage (in stage order) and the tuning concepts, from the run's results.json."""
    with open(f"{folder}/results.json", encoding="utf-8") as f:
        s = json.load(f)["settings"]
    steps = {m["method"]: [int(v) for _, v in sorted(m["steps"].items(), key=lambda kv: int(kv[0]))] for m in s["methods"]}
    return steps, {c["name"] for c in s["concepts"] if c["tuning"]}


def losses(folder, method, tuning):
    """Each concept's training losses of one method, from its cell file (tuning concepts left out, as in the scores)."""
    found = {}
    for path in sorted(glob.glob(os.path.join(folder, "cells", "*", method, "cell.json"))):
        concept = os.path.basename(os.path.dirname(os.path.dirname(path)))
        if concept not in tuning:
            with open(path, encoding="utf-8") as f:
                found[concept] = json.load(f)["loss_history"]
    return found


def png_pixels(path):
    """The 8-bit samples of a non-interlaced PNG (gray, RGB or RGBA, as the experiment writes them), row by row."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path} is not a PNG")
    pos, idat, header = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(colour)
    if depth != 8 or channels is None or interlace:
        raise ValueError(f"{path}: only non-interlaced 8-bit gray/RGB/RGBA PNGs are read here")
    raw, stride, rows, prev = zlib.decompress(b"".join(idat)), width * channels, [], bytearray(width * channels)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, corner = prev[i], prev[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 255
        rows.append(line)
        prev = line
    return (width, height, channels), b"".join(rows)


def pixel_differences(folder, other, pairs):
    """Mean and largest |Δ| (0–255) over every sample of each image pair."""
    means, peaks = [], []
    for a, b in pairs:
        shape_a, pa = png_pixels(os.path.join(folder, a["image"]))
        shape_b, pb = png_pixels(os.path.join(other, b["image"]))
        if shape_a != shape_b:
            sys.exit(f"{a['image']}: the two runs' images differ in size or channels")
        d = [abs(x - y) for x, y in zip(pa, pb)]
        means.append(sum(d) / len(d))
        peaks.append(max(d))
    return means, peaks


def against(folder, other, pixels):
    rows = read_rows(folder, stage_ends=True)
    others = {(r["concept"], r["method"], r["after_stage"], r["prompt_index"], r["seed"]): r for r in read_rows(other, stage_ends=True)}
    groups = list(dict.fromkeys((r["method"], r["after_stage"]) for r in rows))
    pixel_rows = []
    print(f"| method, images after | pairs | " + " | ".join(label for _, label in SCORES) + " |")
    print("|---|---|" + "---|" * len(SCORES))
    for method, stage in groups:
        pairs = [(r, others[k]) for r in rows
                 if r["method"] == method and r["after_stage"] == stage
                 and (k := (r["concept"], method, stage, r["prompt_index"], r["seed"])) in others]
        if not pairs:
            continue
        cells = []
        for key, _ in SCORES:
            d = [float(a[key]) - float(b[key]) for a, b in pairs if a[key] != "" and b[key] != ""]
            cells.append(estimate(d) + (f" ({len(d)} pairs)" if 2 <= len(d) < len(pairs) else ""))
        print(f"| {method}, {'stage ' + stage if stage else 'training'} | {len(pairs)} | " + " | ".join(cells) + " |")
        if pixels:
            means, peaks = pixel_differences(folder, other, pairs)
            pixel_rows.append(f"| {method}, {'stage ' + stage if stage else 'training'} | {len(pairs)} | {statistics.mean(means):.2f} | "
                              f"{statistics.median(means):.2f} | {max(means):.2f} | {statistics.median(peaks):.0f} | {max(peaks)} | "
                              f"{sum(1 for p in peaks if p == 0)} |")
    if pixels:
        print()
        print("| method, images after | pairs | mean \\|Δpixel\\| | median | largest | median peak \\|Δ\\| | largest peak | identical |")
        print("|---|---|---:|---:|---:|---:|---:|---:|")
        print("\n".join(pixel_rows))

    steps, tuning = settings(folder)
    other_steps = settings(other)[0]
    compared = [m for m in dict.fromkeys(m for m, _ in groups) if m in steps and m in other_steps]
    differ = [m for m in compared if steps[m] != other_steps[m]]
    if differ:
        sys.exit(f"{folder} and {other} trained {', '.join(differ)} with different steps per stage; their losses are not compared")
    print()
    print("| method | stage | steps × concepts | max \\|Δloss\\| | mean \\|Δloss\\| | mean loss (OTHER) |")
    print("|---|---|---|---:|---:|---:|")
    for method in compared:
        mine, theirs = losses(folder, method, tuning), losses(other, method, tuning)
        concepts = [c for c in mine if c in theirs]
        start = 0
        for stage, n in enumerate(steps[method], start=1):
            d, ref = [], []
            for c in concepts:
                a, b = mine[c][start:start + n], theirs[c][start:start + n]
                d.extend(abs(x - y) for x, y in zip(a, b))
                ref.extend(b)
            start += n
            if d:
                print(f"| {method} | {stage} | {n} × {len(concepts)} | {max(d):.3g} | {statistics.mean(d):.3g} | {statistics.mean(ref):.3g} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", help="the experiment's --out folder")
    parser.add_argument("--reference", default="attndreambooth", help="the method the others are compared with")
    parser.add_argument("--against", metavar="OTHER", help="another run's --out folder: compare each method with itself there")
    parser.add_argument("--pixels", action="store_true", help="with --against: also the images' pixel differences (0–255)")
    args = parser.parse_args()
    if args.pixels and not args.against:
        sys.exit("--pixels needs --against OTHER")
    if args.against:
        against(args.folder, args.against, args.pixels)
        return
    rows = read_rows(args.folder, stage_ends=False)
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
            cells.append(estimate(d) + (f" ({len(d)} pairs)" if 2 <= len(d) < pairs else ""))
        print(f"| {method} | {pairs} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
