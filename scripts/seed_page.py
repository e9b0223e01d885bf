"""Write book/the-seed.md from the catalog (k8sbook.textbook.seed.seed_page).

Run it after changing src/k8sbook/textbook/data/claims.toml; tests/textbook/test_seed.py fails
while the committed page differs from what the catalog says.
"""

from pathlib import Path

from k8sbook.textbook.seed import seed_page

PAGE = Path(__file__).resolve().parents[1] / "book" / "the-seed.md"

if __name__ == "__main__":
    PAGE.write_text(seed_page(), encoding="utf-8")
    print(f"wrote {PAGE}")
