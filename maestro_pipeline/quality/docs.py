"""The contract's Data Docs: great-expectations' own validation-results page for every suite that ran."""

from __future__ import annotations

import warnings
from typing import Any

from .suites import ge_context

__all__ = ["render_data_docs", "rule_columns"]

def render_data_docs(results: list[Any]) -> str:
    """GE's Data Docs page for each validation result, joined into one HTML document."""
    if not results:
        return "<html><body><p>No rows to validate.</p></body></html>"
    ge_context()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from great_expectations.render.renderer import ValidationResultsPageRenderer
        from great_expectations.render.view import DefaultJinjaPageView

        pages = [DefaultJinjaPageView().render(ValidationResultsPageRenderer().render(r)) for r in results]
    if len(pages) == 1:
        return pages[0]
    # keep the first page's <head> (styles, scripts) and append the other pages' bodies
    head, _, rest = pages[0].partition("</body>")
    bodies = [p.split("<body", 1)[1].split(">", 1)[1].rsplit("</body>", 1)[0] for p in pages[1:]]
    return head + "".join(f"<hr/>{b}" for b in bodies) + "</body>" + rest

def rule_columns() -> dict[str, str]:
    """The column each rule's GE expectation reads (how to find a rule in the Data Docs page)."""
    out = {}
    for suite in ge_context()["suites"].values():
        for e in suite.expectations:
            kw = e.configuration.kwargs
            out[e.meta["rule"]] = kw.get("column") or kw.get("column_A")
    return out

