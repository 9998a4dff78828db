"""Every relative link in the project's Markdown leads somewhere: the file exists and, where
the link names a section (``file.md#section``), the file has a heading of that name (as
GitHub turns a heading into an anchor)."""

import glob
import os
import re
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = sorted(
    os.path.relpath(p, ROOT) for p in
    glob.glob(os.path.join(ROOT, "*.md")) + glob.glob(os.path.join(ROOT, "docs", "*.md"))
    + glob.glob(os.path.join(ROOT, "*", "README.md"))
    + glob.glob(os.path.join(ROOT, "research", "RESULTS.md")))
FENCE = re.compile(r"```.*?```", re.S)
LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(path):
    """GitHub's anchors of a Markdown file's headings: lower case, punctuation dropped,
    spaces as hyphens, a repeated heading numbered ``-1``, ``-2`` ..."""
    seen, out = {}, set()
    with open(path, encoding="utf-8") as fh:
        text = FENCE.sub("", fh.read())
    for heading in re.findall(r"^#+\s+(.*?)\s*#*$", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def broken_links(doc):
    with open(os.path.join(ROOT, doc), encoding="utf-8") as fh:
        text = FENCE.sub("", fh.read())
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, mailto: ...
            continue
        path, _, anchor = target.partition("#")
        full = os.path.normpath(os.path.join(ROOT, os.path.dirname(doc), path)) if path \
            else os.path.join(ROOT, doc)
        if not os.path.exists(full):
            broken.append(f"{target}: no such file")
        elif anchor and full.endswith(".md") and anchor not in anchors(full):
            broken.append(f"{target}: no heading with that anchor")
    return broken


def test_the_docs_are_found():
    assert {"README.md", "CHANGES.md", "docs/training.md", "recipes/README.md"} <= set(DOCS)


@pytest.mark.parametrize("doc", DOCS)
def test_relative_links_lead_to_a_file_and_section(doc):
    assert broken_links(doc) == []


def test_a_broken_link_or_section_is_found(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "ROOT", str(tmp_path))
    (tmp_path / "a.md").write_text("# Speed, on 2 cores\n\n## Speed, on 2 cores\n")
    (tmp_path / "b.md").write_text(
        "[ok](a.md#speed-on-2-cores) [twice](a.md#speed-on-2-cores-1) [web](https://x.y/z)\n"
        "[gone](c.md) [no section](a.md#speed) [here](#nowhere)\n"
        "```\n[in code](ignored.md)\n```\n")
    assert broken_links("b.md") == ["c.md: no such file",
                                    "a.md#speed: no heading with that anchor",
                                    "#nowhere: no heading with that anchor"]
