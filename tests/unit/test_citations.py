"""No tracked file cites a document outside the repository (issue 15.11).

Comments, docstrings and docs cite what a reader can open: a Microsoft document by its title, a KB
number, an [MS-GPIPSEC] section, a capture under tests/fixtures/, or the background pages under
docs/ (windows-tools.md, policy-store.md). Design notes and research files that were never part of
the repository (the tool syntax notes, the [MS-GPIPSEC] fact sheet, the design document, anything
under a shared folder next to the checkout) must not be cited: a reader cannot open them.
"""
import os
import re
import subprocess

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# What such citations looked like: "SYNTAX.md 1.4", "[E] SYNTAX 1.4", "factsheet 2.4", "fact sheet",
# "DESIGN \"Safety rules\"", "../shared/...", "shared/reference/...". BAD_SYNTAX (a netsh message
# constant) is not one: the word boundary keeps it out.
OUTSIDE = re.compile(r"\bSYNTAX(?:\.md\b|\s+(?:\d|section\b|\"))"
                     r"|\bfact ?sheet"
                     r"|\bDESIGN(?:\.md)?\b"
                     r"|\.\./shared\b|\bshared/reference\b|/work/shared\b", re.IGNORECASE)
CASE_SENSITIVE = ("DESIGN", "SYNTAX")      # the words in capitals only: "design" and "syntax" are fine


def tracked_files():
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
        return [name for name in out.stdout.decode("utf-8").split("\0") if name]
    except (OSError, subprocess.CalledProcessError):      # not a git checkout: walk the tree
        found = []
        for folder, dirs, files in os.walk(ROOT):
            dirs[:] = [d for d in dirs if d not in (".git", ".venv", "build", "tests/output")]
            found += [os.path.relpath(os.path.join(folder, f), ROOT) for f in files]
        return found


def tracked_texts():
    """(name, text) of every tracked text file but this one."""
    me = os.path.relpath(os.path.abspath(__file__), ROOT)
    for name in tracked_files():
        if name == me or not os.path.isfile(os.path.join(ROOT, name)):
            continue
        try:
            with open(os.path.join(ROOT, name), encoding="utf-8") as handle:
                yield name, handle.read()
        except (UnicodeDecodeError, OSError):
            continue


def citations(text):
    for number, line in enumerate(text.splitlines(), 1):
        words = [m.group(0) for m in OUTSIDE.finditer(line)]
        if any(not any(w.lower() in word.lower() and w not in word for w in CASE_SENSITIVE) for word in words):
            yield number, line.strip()


def test_no_file_cites_a_document_outside_the_repository():
    found = []
    for name, text in tracked_texts():
        found += ["%s:%d: %s" % (name, number, line[:140]) for number, line in citations(text)]
    assert not found, "cite a public source or docs/ instead:\n" + "\n".join(found)


def test_the_check_finds_the_old_citations_and_leaves_ordinary_words():
    cited = ["netsh would store a duplicate, SYNTAX.md 1.4 [E]", "([E] SYNTAX 1.4)", "(factsheet 2.4)",
             "the fact sheet's worked example", 'DESIGN "Safety rules"', "see ../shared/DESIGN.md",
             "shared/reference/MS-GPIPSEC-factsheet.md", "(SYNTAX.md section 4; KB 813878)"]
    plain = ["raise NetshError(BAD_SYNTAX)", "the syntax of a filterspec", "a design choice",
             "IPSecPol Syntax", "docs/policy-store.md 2.4", "[MS-GPIPSEC] 2.2.1.5.1"]
    assert [bool(list(citations(line))) for line in cited] == [True] * len(cited)
    assert [bool(list(citations(line))) for line in plain] == [False] * len(plain)


DOC_CITATION = re.compile(r'\bdocs/([a-z0-9_-]+\.md)(?:,? (?:sections? )?("[^"\n]+"|\d+(?:\.\d+)*))?')


def headings(page):
    """The section titles of a docs/ page, and the numbers of its numbered sections ("5.5")."""
    with open(os.path.join(ROOT, "docs", page), encoding="utf-8") as handle:
        titles = [line.lstrip("#").strip() for line in handle if line.startswith("#")]
    numbers = {title.split()[0].rstrip(".") for title in titles if title[:1].isdigit()}
    return set(titles), numbers


def test_every_docs_page_and_section_cited_exists():
    """A citation of docs/ must lead somewhere: the page exists, and a quoted title or a section
    number names one of its headings."""
    missing = []
    for name, text in tracked_texts():
        for number, line in enumerate(text.splitlines(), 1):
            for page, section in DOC_CITATION.findall(line):
                if not os.path.isfile(os.path.join(ROOT, "docs", page)):
                    missing.append("%s:%d: docs/%s does not exist" % (name, number, page))
                    continue
                titles, numbers = headings(page)
                if section and section.strip('"') not in (titles if section.startswith('"') else numbers):
                    missing.append("%s:%d: docs/%s has no section %s" % (name, number, page, section))
    assert not missing, "\n".join(missing)
