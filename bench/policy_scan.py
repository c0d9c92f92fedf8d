"""Time the policy pipeline on 5 MB attachments (.docx and .pdf) and print JSON.

Two shapes each: "typical" (a few dozen pages of text plus images, which is
what makes real 5 MB office files big) and, for .docx, "text-heavy" (5 MB of
compressed text, ~25 MB of XML). Times are wall-clock for
``Pipeline.check_data`` (extraction in the worker pool + all checks), median
of 5 runs after one warm-up, and for the bare ``analyse`` call.

    python bench/policy_scan.py
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from policy.context import EnvelopeInfo, PolicyContext, SessionInfo  # noqa: E402
from policy.extract.walk import Limits, analyse  # noqa: E402
from policy.pipeline import Pipeline  # noqa: E402
from policy.settings import PolicySettings  # noqa: E402
from tests.policy import corpus  # noqa: E402

MB = 1024 * 1024
SEED = corpus.SEED.read_text(encoding="utf-8").replace("\t", " ").split("\n")


def pad_zip(data: bytes, size: int) -> bytes:
    """Add an incompressible media part so the package weighs ``size`` octets."""
    out = io.BytesIO(data)
    with zipfile.ZipFile(out, "a", zipfile.ZIP_STORED) as zf:
        missing = max(0, size - len(data) - 200)
        zf.writestr("word/media/image1.png", os.urandom(missing))
    return out.getvalue()


def docx_typical() -> bytes:
    paragraphs = ["MẬT"] + [line for _ in range(15) for line in SEED if line.strip()]  # ~60 pages
    return pad_zip(corpus.docx(paragraphs), 5 * MB)


def docx_text_heavy() -> bytes:
    import random

    rng = random.Random(1)
    words = " ".join(SEED).split()
    paragraphs = []
    size = 0
    while size < 5 * MB * 4.2:
        line = " ".join(rng.choice(words) for _ in range(40))
        paragraphs.append(line)
        size += len(line.encode()) + 120
    from xml.sax.saxutils import escape

    base = corpus.docx(["TỐI MẬT"])
    body = "".join(f"<w:p><w:r><w:t>{escape(p)}</w:t></w:r></w:p>" for p in paragraphs)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(base)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "word/document.xml":
                data = data.replace(b"</w:body>", body.encode() + b"</w:body>")
            dst.writestr(info.filename, data)
    return out.getvalue()


def pdf_typical() -> bytes:
    from fpdf import FPDF
    from PIL import Image

    doc = FPDF()
    doc.add_font("DejaVu", "", corpus.FONT)
    doc.set_font("DejaVu", size=11)
    lines = [line for line in SEED if line.strip()] * 3
    doc.add_page()
    doc.cell(0, 8, "MẬT", new_x="LMARGIN", new_y="NEXT")
    for line in lines:
        doc.multi_cell(0, 6, line, new_x="LMARGIN", new_y="NEXT")
    image = Image.frombytes("RGB", (1250, 1250), os.urandom(1250 * 1250 * 3))
    doc.add_page()
    doc.image(image, w=150)
    return bytes(doc.output())


async def time_pipeline(name: str, attachment: bytes, filename: str, ctype: str) -> dict[str, object]:
    message = corpus.message("Bench", attachments=[(filename, attachment, ctype)])
    with tempfile.TemporaryDirectory() as tmp:
        pipeline = Pipeline.from_settings(PolicySettings(workers=2), data_dir=tmp)
        ctx = PolicyContext(SessionInfo("192.0.2.1"), EnvelopeInfo("a@example.org", ["b@dongnai.gov.vn"]))
        try:
            outcome = await pipeline.check_data(ctx, message)  # warm-up: starts the worker
            runs = []
            for _ in range(5):
                started = time.perf_counter()
                outcome = await pipeline.check_data(ctx, message)
                runs.append(time.perf_counter() - started)
        finally:
            await pipeline.close()
    inline = []
    for _ in range(3):
        started = time.perf_counter()
        analyse(message, Limits())
        inline.append(time.perf_counter() - started)
    return {
        "name": name,
        "attachment_octets": len(attachment),
        "message_octets": len(message),
        "verdict": outcome.action.value,
        "decided_by": outcome.decided_by.check if outcome.decided_by else None,
        "pipeline_median_s": round(statistics.median(runs), 4),
        "pipeline_max_s": round(max(runs), 4),
        "analyse_inline_median_s": round(statistics.median(inline), 4),
    }


async def main() -> None:
    cases = [
        ("docx typical 5 MB", docx_typical(), "bao-cao.docx", corpus.DOCX),
        ("docx text-heavy", docx_text_heavy(), "van-ban.docx", corpus.DOCX),
        ("pdf typical 5 MB", pdf_typical(), "van-ban.pdf", "application/pdf"),
    ]
    results = [await time_pipeline(*case) for case in cases]
    print(json.dumps({"benchmark": "policy_scan", "cpus": os.cpu_count(), "results": results}, indent=2,
                     ensure_ascii=False))


if __name__ == "__main__":
    asyncio.run(main())
