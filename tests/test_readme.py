"""The README's bad-input table names real tests."""
import re

from tests.conftest import REPO


def _section(text: str, title: str) -> str:
    start = text.index(f'\n## {title}\n')
    end = text.find('\n## ', start + 1)
    return text[start:end if end > 0 else None]


def test_bad_input_rows_name_existing_tests() -> None:
    table = [line for line in _section((REPO / 'README.md').read_text(), 'Bad input').splitlines()
             if line.startswith('| ') and not line.startswith('| input') and '---' not in line]
    assert len(table) >= 20
    for row in table:
        refs = re.findall(r'`(tests/[\w/]+\.py)::(\w+)`', row)
        assert refs, f'row without a test: {row}'
        for path, name in refs:
            source = (REPO / path).read_text()
            assert re.search(rf'^def {name}\(', source, re.M), f'{path}::{name} does not exist'
