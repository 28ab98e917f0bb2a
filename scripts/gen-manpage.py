#!/usr/bin/env python3
"""Generates the cadcanfs(8) man page from docs/cli.md, so the two never disagree.

usage: gen-manpage.py docs/cli.md VERSION OUTPUT

Handles the Markdown docs/cli.md uses: '#'/'##'/'###' headings, paragraphs, '-'
lists, fenced code blocks, pipe tables (rendered as tagged paragraphs), `code` and
**bold**.
"""
import re
import sys


def escape(text):
    text = text.replace("\\", "\\e")
    return text.replace("-", "\\-")


def inline(text):
    text = escape(text)
    text = re.sub(r"`([^`]*)`", r"\\fB\1\\fR", text)
    text = re.sub(r"\*\*([^*]*)\*\*", r"\\fB\1\\fR", text)
    text = re.sub(r"(?<![*\w])\*([^*\s][^*]*)\*(?![*\w])", r"\\fI\1\\fR", text)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return text


def line_start(text):
    """roff treats a leading '.' or "'" as a request."""
    return "\\&" + text if text[:1] in (".", "'") else text


def convert(markdown, version):
    out = ['.TH CADCANFS 8 "" "cadcanfs %s" "System Administration"' % version,
           ".SH NAME", "cadcanfs \\- encrypted filesystem for dental labs and offices"]
    in_code = False
    table_header = True
    seen_section = False
    for raw in markdown.splitlines():
        line = raw.rstrip()
        if line.startswith("```"):
            if not seen_section:
                out.append(".SH SYNOPSIS")
                seen_section = True
            out.append(".EX" if not in_code else ".EE")
            in_code = not in_code
            continue
        if in_code:
            out.append(line_start(escape(line)))
            continue
        if line.startswith("# "):
            continue  # the title: NAME covers it
        if line.startswith("## "):
            seen_section = True
            out.append(".SH " + inline(line[3:]).upper())
            continue
        if line.startswith("### "):
            out.append(".SS " + inline(line[4:]))
            continue
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if all(re.fullmatch(r":?-+:?", c) for c in cells):
                continue
            if table_header:
                table_header = False
                continue  # column titles: the tagged paragraphs speak for themselves
            out.append(".TP")
            out.append(line_start(inline(cells[0])))
            out.append(line_start(" \\(em ".join(inline(c) for c in cells[1:])))
            continue
        table_header = True
        if not line:
            out.append(".PP")
        elif line.startswith("- "):
            out.append(".IP \\(bu 2")
            out.append(line_start(inline(line[2:])))
        else:
            out.append(line_start(inline(line.strip())))
    return "\n".join(out) + "\n"


def main():
    source, version, output = sys.argv[1:4]
    with open(source, encoding="utf-8") as f:
        page = convert(f.read(), version)
    with open(output, "w", encoding="utf-8") as f:
        f.write(page)


if __name__ == "__main__":
    main()
