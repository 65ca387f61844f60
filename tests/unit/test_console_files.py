"""The console's files as local mode serves them: only files inside console/, with a strict CSP."""

from __future__ import annotations

from pathlib import Path

from local.console_files import CONSOLE_DIR, console_file


def headers_of(path: str) -> dict[str, str]:
    found = console_file(path)
    assert found is not None, path
    return dict(found[0])


def test_the_root_is_the_page_and_assets_have_their_types():
    assert headers_of("/")["Content-Type"].startswith("text/html")
    assert console_file("/")[1] == (CONSOLE_DIR / "index.html").read_bytes()
    assert headers_of("/js/app.js")["Content-Type"].startswith("text/javascript")
    assert headers_of("/styles.css")["Content-Type"].startswith("text/css")
    assert headers_of("/config.json")["Content-Type"] == "application/json"


def test_every_file_carries_a_policy_that_allows_nothing_inline_or_foreign():
    policy = headers_of("/")["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == directives["style-src"] == directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert headers_of("/js/app.js")["X-Content-Type-Options"] == "nosniff"


def test_nothing_outside_the_folder_nor_hidden_nor_missing(tmp_path: Path):
    (tmp_path / "index.html").write_text("page")
    (tmp_path / ".secret").write_text("no")
    (tmp_path.parent / "outside.txt").write_text("no")
    for path in ("/../outside.txt", "/.secret", "/js/../../outside.txt", "/missing.js", "/js/"):
        assert console_file(path, root=tmp_path) is None, path
    assert console_file("/index.html", root=tmp_path)[1] == b"page"


def test_the_page_loads_scripts_and_styles_only_from_files_and_never_inline():
    page = (CONSOLE_DIR / "index.html").read_text()
    assert '<script type="module" src="/js/app.js"></script>' in page
    assert "style=" not in page and "<style" not in page and "onclick" not in page
    for script in CONSOLE_DIR.rglob("*.js"):
        text = script.read_text()
        assert ".innerHTML =" not in text and "insertAdjacentHTML" not in text and "eval(" not in text, script.name
        assert "import(\"http" not in text and "from \"http" not in text, script.name  # modules from this origin only
