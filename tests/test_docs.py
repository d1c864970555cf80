"""The documentation is generated from the code it describes; keep them in step."""

from __future__ import annotations

from pathlib import Path

from overture.platform import config
from overture.tenants import roles

ROOT = Path(__file__).resolve().parents[1]


def test_readme_opens_with_exactly_the_two_commands():
    text = (ROOT / "README.md").read_text()
    first_block = text.split("```")[1]
    lines = [line.strip() for line in first_block.splitlines()[1:] if line.strip()]
    assert lines == ["make up", "make test"]


def test_readme_config_table_matches_the_code():
    text = (ROOT / "README.md").read_text()
    table = text.split("<!-- config-table:start -->")[1].split("<!-- config-table:end -->")[0]
    assert table.strip() == config.markdown_table().strip(), "run `overture config`"


def test_permission_docs_match_the_matrix():
    text = (ROOT / "docs" / "permissions.md").read_text()
    assert roles.markdown_table().strip() in text, "run `overture permissions`"


def test_every_role_and_permission_is_in_the_matrix():
    assert set(roles.MATRIX) == set(roles.Role)
    for role, perms in roles.MATRIX.items():
        assert perms <= set(roles.PERMISSIONS), role
    assert set(roles.PERMISSIONS) >= roles.PLATFORM_ADMIN


def test_readme_links_only_to_files_in_the_repository():
    import re

    text = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    assert any(t.startswith("docs/screenshots/") for t in targets)  # the demo's pictures
    for target in targets:
        if target.startswith("#"):
            continue
        assert "://" not in target, target
        assert (ROOT / target.split("#")[0]).is_file(), target
        if target.endswith(".png"):
            assert (ROOT / target).stat().st_size < 200_000, target
