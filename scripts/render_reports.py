"""Render the weekly report of the demo tenants to PNG, to look at it.

    python scripts/render_reports.py [OUT_DIR]

Onboards the shipped example tenants (``tenants/examples/*.toml``) with their demo data
into a fresh SQLite database in a temporary folder, through the ``servq`` command, writes
last week's report of each as PDF (English and Chinese) and Excel, and renders every PDF
page to ``OUT_DIR/<tenant>-<lang>-p<N>.png`` (pypdfium2, the test extra). Open the PNGs
and read them: fonts, spacing, legends, references (docs/reports.md, "Looking at it").
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pypdfium2

ROOT = Path(__file__).resolve().parent.parent


def servq(env: dict, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "servq.cli", *args], env=env, check=True)


def main(out: Path, week: str | None = None) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    pngs = []
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "SERVQ_INSTANCE_PATH": folder,
               "DATABASE_URL": f"sqlite:///{folder}/servq.db"}
        env.pop("REDIS_URL", None)
        servq(env, "db", "upgrade")
        for manifest in sorted((ROOT / "tenants" / "examples").glob("*.toml")):
            servq(env, "tenants", "onboard", str(manifest), "--demo")
            slug = next(line.split("=", 1)[1].strip().strip('"') for line in manifest.read_text().splitlines()
                        if line.startswith("slug"))
            for lang in ("en", "zh"):
                stem = out / f"{slug}-{lang}"
                args = ["reports", "weekly", "--tenant", slug, "--lang", lang]
                if week:
                    args += ["--week", week]
                servq(env, *args, "-o", f"{stem}.pdf")
                servq(env, *args, "-o", f"{stem}.xlsx")
                pdf = pypdfium2.PdfDocument(f"{stem}.pdf")
                for number, page in enumerate(pdf, start=1):
                    path = Path(f"{stem}-p{number}.png")
                    page.render(scale=1.5).to_pil().save(path)
                    pngs.append(path)
                pdf.close()
    return pngs


if __name__ == "__main__":
    for png in main(Path(sys.argv[1] if len(sys.argv) > 1 else "report-pngs"),
                    sys.argv[2] if len(sys.argv) > 2 else None):
        print(png)
