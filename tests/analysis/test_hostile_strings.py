"""Strings from a run are text, never markup or terminal commands: in markdown (compare --markdown,
the report's evidence.md, history --markdown) every markdown and HTML metacharacter is escaped, so an
image, a link, emphasis or a code span in a run id or a message renders as the characters it is;
on the terminal every control byte (an ESC sequence that retitles or clears it) is shown escaped."""

from __future__ import annotations

import html
import re

from hypothesis import given, strategies as st

from dsabench.cli.main import main
from dsabench.present.text import md_code, md_text, term_text
from dsabench.workload.variants import PATCHED

HOSTILE_ID = "run0 ![p](http://host/p.png)"
HOSTILE_MESSAGE = "boom \x1b]0;pwned\x07\x1b[2J *b* _i_ [l](https://x) `c` <img src=x onerror=alert(1)> | www.x.io"
MARKUP = set("\\`*_~[]!|<>")
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _unescaped(md: str) -> str:
    """What markdown sees as syntax: the text with backslash escapes, entities and <br> taken out."""
    return re.sub(r"\\[\\`*_~\[\]!|:.]|&#?\w+;|<br>", "", md)


@given(st.text())
def test_md_text_leaves_no_markup_or_control_character_unescaped(text):
    out = md_text(text)
    assert not MARKUP & set(_unescaped(out)), out
    assert not CONTROL.search(out) and "\n" not in out and "\r" not in out


@given(st.text())
def test_md_code_holds_no_markup_character_inside_its_element(text):
    out = md_code(text)
    assert out.startswith("<code>") and out.endswith("</code>")
    inner = out[len("<code>"):-len("</code>")].replace("<br>", "")
    assert not (MARKUP | {"&"}) & set(re.sub(r"&(#\d+|lt|gt|amp|quot);", "", inner)), out
    assert not CONTROL.search(inner)


def test_an_image_a_link_and_a_bare_url_stay_text():
    assert md_text(HOSTILE_ID) == "run0 \\!\\[p\\](http\\://host/p.png)"
    assert md_code(HOSTILE_ID) == "<code>run0 &#33;&#91;p&#93;(http&#58;//host/p.png)</code>"
    assert md_text("see www.example.com") == "see www\\.example.com"
    assert md_text("capture_failed") == "capture\\_failed"


# What GitHub links in a comment's text (beyond markdown), each of which notifies someone or cross-
# references an issue: a mention or team, an e-mail address, owner/repo@SHA, an issue or PR, GH-N.
GITHUB_LINKS = re.compile(r"(?:^|[^A-Za-z0-9_])@[A-Za-z0-9]|[A-Za-z0-9.+_-]@[A-Za-z0-9_.-]*\.[A-Za-z0-9]"
                          r"|@[0-9a-fA-F]{7,40}\b|#[0-9]|(?i:\bgh-[0-9])")
PINGS = "cc @alice @org/team: fixes #123, see owner/repo#45 and GH-6; blame bob@example.com (x/y@abcdef1)"


def _as_github_reads(md: str) -> str:
    """The text a reader sees, where GitHub looks for mentions: escapes and entities resolved."""
    return html.unescape(re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", md.replace("<br>", "\n")))


def test_a_message_mentions_no_one_references_no_issue_and_links_no_address():
    for out in (md_text(PINGS), md_code(PINGS)[len("<code>"):-len("</code>")]):
        seen = _as_github_reads(out)
        assert not GITHUB_LINKS.search(seen), seen
        assert seen.replace("\u200d", "") == PINGS  # it reads the same: a zero-width joiner after each '@', '#', 'GH-'
    assert md_text("case@fastdeploy:1a2b#triton") == "case@fastdeploy:1a2b#triton"  # a case key, copied as it is


@given(st.text(alphabet="@#/.-_&;ghGH ab09\\`*"))
def test_no_string_from_a_run_becomes_a_github_link_in_markdown(text):
    for out in (md_text(text), md_code(text)[len("<code>"):-len("</code>")]):
        assert not GITHUB_LINKS.search(_as_github_reads(out)), out


@given(st.text())
def test_term_text_makes_every_control_character_visible_and_keeps_newlines_and_tabs(text):
    out = term_text(text)
    assert not CONTROL.search(out)
    assert out.count("\n") == text.count("\n") and out.count("\t") == text.count("\t")


def test_term_text_shows_an_escape_sequence_as_its_characters():
    assert term_text("a\x1b]0;t\x07b\x1b[2J\u202e") == "a\\x1b]0;t\\x07b\\x1b[2J\\u202e"


def _no_markup_from_the_run(md: str) -> bool:
    """No image, link, raw HTML element or control byte made of the hostile strings (fenced code aside)."""
    seen = _unescaped(md)
    return not any(s in seen for s in ("![p](http", "[l](https", "<img", "\x1b", "\x07", "*b*", "_i_", "`c`"))


def _hostile_runs(builder):
    base_case, cand_case = builder.case(), builder.case(variant=PATCHED)
    runs = []
    for i, name in enumerate(("base", "cand")):
        run_id = HOSTILE_ID if name == "base" else "cand \x1b]0;pwned\x07"
        records = [builder.record(base_case, run_id, builder.samples(10 * i)),
                   builder.record(cand_case, run_id, None, status="crashed", message=HOSTILE_MESSAGE)]
        runs.append(builder.run(name, records, run_id=run_id))
    return runs


def test_compare_markdown_and_table_print_a_hostile_run_id_and_message_as_text(builder, capsys):
    base, cand = _hostile_runs(builder)
    assert main(["compare", str(base), str(cand), "--markdown"]) == 0
    md = capsys.readouterr().out
    assert _no_markup_from_the_run(md)
    assert "&#33;&#91;p&#93;(http&#58;//host/p.png)" in md and "\\[l\\](https\\://x)" in md
    assert main(["compare", str(base), str(cand)]) == 0
    out = capsys.readouterr()
    assert "\x1b" not in out.out + out.err and "\x07" not in out.out + out.err
    assert "\\x1b]0;pwned\\x07" in out.out


def test_the_report_writes_a_hostile_run_id_and_message_as_text(builder, tmp_path, capsys):
    base, _ = _hostile_runs(builder)
    assert main(["report", str(base), "--out", str(tmp_path / "ev")]) == 0, capsys.readouterr().err
    md = (tmp_path / "ev" / "evidence.md").read_text()
    assert _no_markup_from_the_run(re.sub(r"(?ms)^(`{3,}).*?^\1", "", md)) and "\x1b" not in md
    assert "# dsabench evidence: run <code>run0 &#33;&#91;p&#93;(http&#58;//host/p.png)</code>" in md


def test_scenarios_show_prints_control_bytes_of_a_scenario_file_escaped(tmp_path, capsys):
    path = tmp_path / "t.toml"
    path.write_text('[preset]\ndescription = "x\\u001b]0;pwned\\u0007\\u001b[2J"\n'
                    '[[scenario]]\nname = "s\\u001b[31m"\nbatch = 1\ncontext_len = 256\nnum_blocks = 64\n'
                    'cache_heads = 1\nheads = 16\ntopk = 64\nvariant = "baseline"\n')
    assert main(["scenarios", "show", str(path)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "x\\x1b]0;pwned\\x07\\x1b[2J" in out
