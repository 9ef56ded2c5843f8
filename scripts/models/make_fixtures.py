"""Make the regions' test fixtures and their expected outputs (Python onnxruntime).

    make_fixtures.py inputs SCIKIT_IMAGE_WHEEL   # (re)create the input files (once; committed)
    make_fixtures.py expected                    # recompute tests/fixtures/regions/expected.json
    make_fixtures.py check                       # recompute and compare with the committed file

Inputs (committed under tests/fixtures/regions/):
  * images/*.png: sample photos from the scikit-image wheel's `skimage/data` (a cat, a cup of
    coffee, a rocket; public-domain / CC0 images as listed in scikit-image's data README),
    centre-cropped to the simulator camera's 320x240 (the rocket kept as 240x320 portrait);
  * sentences.txt: instructions, one per line;
  * speech.wav: 1.5 s of 16 kHz mono made with numpy: faint noise, a synthetic voiced vowel
    (120 Hz glottal pulses through three formant resonators), then noise again.

Expected outputs use the same model files as Rust (.cache/models) and reimplement the Rust
preprocessing in numpy: vision centre-crop + bilinear resize (half-pixel centres, edge clamp);
the tokenizer from tokenizer.json with padding disabled; silero VAD over consecutive 512-sample
chunks with 64 samples of context and the recurrent state carried; log-mel energies as in
src/regions/mel.rs. The Rust tests must match within 1e-4.
"""
import io
import json
import os
import sys
import wave
import zipfile

import numpy as np
import onnxruntime as ort
from PIL import Image
from tokenizers import Tokenizer

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIX = os.path.join(ROOT, "tests", "fixtures", "regions")
MODELS = os.environ.get("BRAINLOOP_MODELS", os.path.join(ROOT, ".cache", "models"))
SENTENCES = [
    "go to the red ball",
    "drive towards the red ball and stop next to it",
    "find the blue box",
    "turn left",
    "Stop!",
    "A man is eating food.",
]
IMAGES = [("chelsea.png", "cat.png", (320, 240)), ("coffee.png", "coffee.png", (320, 240)),
          ("rocket.jpg", "rocket.png", (240, 320))]


def make_inputs(wheel):
    os.makedirs(os.path.join(FIX, "images"), exist_ok=True)
    with zipfile.ZipFile(wheel) as z:
        for src, dst, (w, h) in IMAGES:
            im = Image.open(io.BytesIO(z.read(f"skimage/data/{src}"))).convert("RGB")
            sw, sh = im.size
            s = min(sw / w, sh / h)
            cw, ch = int(w * s), int(h * s)
            x0, y0 = (sw - cw) // 2, (sh - ch) // 2
            im = im.crop((x0, y0, x0 + cw, y0 + ch)).resize((w, h), Image.BILINEAR)
            im.save(os.path.join(FIX, "images", dst))
    with open(os.path.join(FIX, "sentences.txt"), "w") as f:
        f.write("\n".join(SENTENCES) + "\n")
    rng = np.random.default_rng(7)
    sr = 16000
    noise = lambda n: 0.003 * rng.standard_normal(n)
    n_voice = int(0.6 * sr)
    pulses = np.zeros(n_voice)
    pulses[:: sr // 120] = 1.0
    voice = pulses
    for fc, bw in ((700, 90), (1220, 110), (2600, 160)):
        r = np.exp(-np.pi * bw / sr)
        a1, a2 = -2 * r * np.cos(2 * np.pi * fc / sr), r * r
        y = np.zeros_like(voice)
        for i in range(len(voice)):
            y[i] = voice[i] - a1 * (y[i - 1] if i else 0) - a2 * (y[i - 2] if i > 1 else 0)
        voice = y
    voice = 0.5 * voice / np.abs(voice).max() * np.hanning(n_voice) ** 0.2
    x = np.concatenate([noise(int(0.5 * sr)), voice + noise(n_voice), noise(int(0.4 * sr))])
    pcm = np.clip(np.round(x * 32767), -32768, 32767).astype("<i2")
    with wave.open(os.path.join(FIX, "speech.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(pcm.tobytes())


def preprocess(rgb):
    """numpy twin of src/regions/vision.rs::preprocess (float64, then float32)."""
    h, w, _ = rgb.shape
    m = min(w, h)
    x0, y0 = (w - m) // 2, (h - m) // 2
    crop = rgb[y0:y0 + m, x0:x0 + m].astype(np.float64)
    s = np.clip((np.arange(224) + 0.5) * (m / 224.0) - 0.5, 0.0, m - 1)
    lo = np.floor(s).astype(np.int64)
    hi = np.minimum(lo + 1, m - 1)
    f = s - lo
    wx, wy = f[None, :, None], f[:, None, None]
    top = crop[lo][:, lo] * (1 - wx) + crop[lo][:, hi] * wx
    bot = crop[hi][:, lo] * (1 - wx) + crop[hi][:, hi] * wx
    return (top * (1 - wy) + bot * wy).astype(np.float32)


def logmel(x, n=512, bands=32, sr=16000.0):
    """numpy twin of src/regions/mel.rs."""
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)
    spec = np.fft.rfft(x.astype(np.float64) * win)
    power = spec.real ** 2 + spec.imag ** 2
    mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)
    imel = lambda m: 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    top = mel(sr / 2)
    edges = imel(top * np.arange(bands + 2) / (bands + 1))
    freqs = np.arange(n // 2 + 1) * sr / n
    out = []
    for b in range(bands):
        lo, mid, hi = edges[b], edges[b + 1], edges[b + 2]
        wgt = np.maximum(np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)), 0.0)
        out.append(np.log(np.sum(wgt * power) + 1e-10))
    return np.array(out, np.float32)


def session(name):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(os.path.join(MODELS, name), so, providers=["CPUExecutionProvider"])


def expected(write=True):
    out = {"generator": "scripts/models/make_fixtures.py", "onnxruntime": ort.__version__,
           "tolerance": 1e-4, "images": [], "sentences": [], "audio": {}}
    vis = session("vision.onnx")
    for _, name, _ in IMAGES:
        rgb = np.asarray(Image.open(os.path.join(FIX, "images", name)).convert("RGB"))
        x = preprocess(rgb)[None]
        emb, spatial, logits = vis.run(None, {"image": x})
        sp = spatial.reshape(-1)
        out["images"].append({
            "file": f"images/{name}", "width": int(rgb.shape[1]), "height": int(rgb.shape[0]),
            "embedding": emb[0].tolist(),
            "spatial_stride": 61, "spatial_sample": sp[::61].tolist(),
            "spatial_sum": float(sp.astype(np.float64).sum()),
            "top5": np.argsort(-logits[0])[:5].tolist(),
        })
    lang = session("language.onnx")
    tok = Tokenizer.from_file(os.path.join(MODELS, "language.tokenizer.json"))
    tok.no_padding()
    for text in open(os.path.join(FIX, "sentences.txt")).read().splitlines():
        if not text.strip():
            continue
        ids = tok.encode(text.strip()).ids
        a = np.array([ids], np.int64)
        emb = lang.run(None, {"input_ids": a, "attention_mask": np.ones_like(a)})[0][0]
        out["sentences"].append({"text": text.strip(), "ids": ids, "embedding": emb.tolist()})
    vad = session("silero_vad.onnx")
    with wave.open(os.path.join(FIX, "speech.wav")) as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768.0
    state = np.zeros((2, 1, 128), np.float32)
    context = np.zeros(64, np.float32)
    chunks = []
    for i in range(0, len(pcm) - 511, 512):
        c = pcm[i:i + 512]
        x = np.concatenate([context, c])[None]
        p, state = vad.run(None, {"input": x, "state": state, "sr": np.array(16000, np.int64)})
        context = x[0, -64:]
        chunks.append([float(p[0, 0])] + logmel(c).tolist())
    out["audio"] = {"file": "speech.wav", "chunk": 512, "vectors": chunks}
    if not write:
        return out
    with open(os.path.join(FIX, "expected.json"), "w") as f:
        json.dump(out, f, separators=(",", ":"))
    print(f"expected.json: {len(out['images'])} images, {len(out['sentences'])} sentences, "
          f"{len(chunks)} audio chunks (speech p max {max(c[0] for c in chunks):.3f})")


def check():
    """Recompute the expected outputs and compare them with the committed ones (within 1e-4)."""
    new = expected(write=False)
    old = json.load(open(os.path.join(FIX, "expected.json")))
    worst = 0.0

    def cmp(a, b, where):
        nonlocal worst
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        if a.shape != b.shape:
            sys.exit(f"FAIL: {where}: shape {a.shape} != {b.shape}")
        if a.size:
            worst = max(worst, float(np.abs(a - b).max()))

    for n, o in zip(new["images"], old["images"]):
        cmp(n["embedding"], o["embedding"], n["file"])
        cmp(n["spatial_sample"], o["spatial_sample"], n["file"])
    for n, o in zip(new["sentences"], old["sentences"]):
        if n["ids"] != o["ids"]:
            sys.exit(f"FAIL: token ids of {n['text']!r} changed")
        cmp(n["embedding"], o["embedding"], n["text"])
    cmp(new["audio"]["vectors"], old["audio"]["vectors"], "speech.wav")
    if worst > 1e-4:
        sys.exit(f"FAIL: Python onnxruntime no longer gives the committed outputs (max diff {worst:g})")
    print(f"fixtures ok: Python onnxruntime reproduces expected.json (max diff {worst:g})")


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "inputs":
        make_inputs(sys.argv[2])
    elif len(sys.argv) == 2 and sys.argv[1] == "expected":
        expected()
    elif len(sys.argv) == 2 and sys.argv[1] == "check":
        check()
    else:
        sys.exit(__doc__)
