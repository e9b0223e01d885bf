"""Write the pages made from the catalog: book/the-seed.md, book/paths.md and the introduction's
maps (book/_static/map-real.svg, map-seed.svg).

Run it after changing src/k8sbook/textbook/data/claims.toml or paths.toml; tests in
tests/textbook/ fail while a committed page differs from what the catalog says.
"""

from pathlib import Path

from k8sbook.textbook.catalog_pages import MAPS, map_svg, paths_page
from k8sbook.textbook.seed import seed_page

BOOK = Path(__file__).resolve().parents[1] / "book"

if __name__ == "__main__":
    (BOOK / "the-seed.md").write_text(seed_page(), encoding="utf-8")
    (BOOK / "paths.md").write_text(paths_page(), encoding="utf-8")
    for which, name in MAPS.items():
        (BOOK / "_static" / name).write_text(map_svg(which), encoding="utf-8")
    print(f"wrote {BOOK}/the-seed.md, paths.md and _static/{', '.join(MAPS.values())}")
