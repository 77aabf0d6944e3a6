"""The documentation holds together: the bad-input table names real tests, and the README's and
the docs pages' relative links point at files and headings that exist."""
import re
from pathlib import Path

from tests.conftest import REPO

#: Where the bad-input table lives (moved there from the README).
BAD_INPUT_PAGE = REPO / 'docs' / 'reliability.md'


def _section(text: str, title: str) -> str:
    start = text.index(f'\n## {title}\n')
    end = text.find('\n## ', start + 1)
    return text[start:end if end > 0 else None]


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces to '-'."""
    return re.sub(r'[^\w\- ]', '', heading.strip().lower()).replace(' ', '-')


def _anchors(page: Path) -> set:
    # headings inside fenced code blocks are not headings
    text = re.sub(r'^```.*?^```', '', page.read_text(), flags=re.M | re.S)
    return {_anchor(m) for m in re.findall(r'^#{1,6} (.+)$', text, re.M)}


def test_bad_input_rows_name_existing_tests() -> None:
    table = [line for line in _section(BAD_INPUT_PAGE.read_text(), 'Bad input').splitlines()
             if line.startswith('| ') and not line.startswith('| input') and '---' not in line]
    assert len(table) >= 20
    for row in table:
        refs = re.findall(r'`(tests/[\w/]+\.py)::(\w+)`', row)
        assert refs, f'row without a test: {row}'
        for path, name in refs:
            source = (REPO / path).read_text()
            assert re.search(rf'^def {name}\(', source, re.M), f'{path}::{name} does not exist'


def test_anchor_follows_github() -> None:
    assert _anchor('Results (seed 0)') == 'results-seed-0'
    assert _anchor('STG-NF, the guidance network') == 'stg-nf-the-guidance-network'
    assert _anchor("A user's own videos (`data/own`)") == 'a-users-own-videos-dataown'


def test_relative_links_resolve() -> None:
    pages = [REPO / 'README.md', *sorted((REPO / 'docs').glob('*.md'))]
    assert len(pages) >= 8
    for page in pages:
        text = re.sub(r'^```.*?^```', '', page.read_text(), flags=re.M | re.S)
        for target in re.findall(r'\]\(([^)\s]+)\)', text):
            if re.match(r'[a-z]+://', target):
                continue
            path, _, anchor = target.partition('#')
            linked = (page.parent / path).resolve() if path else page
            assert linked.exists(), f'{page.name}: link to missing {target}'
            if anchor:
                assert anchor in _anchors(linked), f'{page.name}: no heading #{anchor} in {path}'
