"""One self-contained HTML page: inline CSS, no scripts, images and links relative to the page, so
it reads the same from `file://` and makes no network request."""

from __future__ import annotations

from html import escape

CSS = """
body{font-family:sans-serif;margin:1.5em auto;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:.5em 0;font-size:13px}
th,td{border:1px solid #bbb;padding:3px 6px;text-align:right}
th{background:#eee} td.label{text-align:left}
td.missing{color:#a33;background:#fbeaea} tr.published td{background:#f3f3fb;font-style:italic}
img{max-width:100%;height:auto;border:1px solid #ddd;margin:.3em 0} .note{color:#555;font-size:12px}
code{background:#f4f4f4;padding:0 3px}
"""


def table_html(table) -> str:
    head = "".join(f"<th>{escape(n)}</th>" for n in [*table.label_names, *table.column_names(), "failed videos", "runs"])
    body = []
    for row in table.rows:
        cells = "".join(f'<td class="label">{escape(str(row.labels[k]))}</td>' for k in table.label_names)
        for cell in row.cells:
            title = f"published: {row.published}" if row.published else ("runs: " + " ".join(cell.runs) if cell.runs else "no run")
            cls = ' class="missing"' if cell.missing else ""
            cells += f'<td{cls} title="{escape(title)}">{escape(cell.text())}</td>'
        runs = f"published: {row.published}" if row.published else " ".join(row.runs)
        cells += f'<td class="failures">{escape(row.failures_text())}</td><td class="label"><code>{escape(runs)}</code></td>'
        body.append(f'<tr{" class=published" if row.published else ""}>{cells}</tr>')
    if not table.rows:
        body.append(f'<tr><td class="label" colspan="{len(table.label_names) + len(table.columns) + 2}">no runs under this protocol</td></tr>')
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def failures_html(failures: list[dict], limit: int = 50) -> str:
    """The videos a run could not decode (its eval/failures.csv), the first `limit` of them."""
    rows = "".join(f'<tr><td class="label"><code>{escape(f.get("path", ""))}</code></td><td class="label">{escape(f.get("error", ""))}</td></tr>'
                   for f in failures[:limit])
    more = f'<p class="note">... and {len(failures) - limit} more (eval/failures.csv)</p>' if len(failures) > limit else ""
    return f"<h3>Videos that could not be decoded</h3><table><thead><tr><th>path</th><th>error</th></tr></thead><tbody>{rows}</tbody></table>{more}"


def page(title: str, sections: list[tuple[str, str]]) -> str:
    """`sections`: (heading, inner HTML). Returns the whole document."""
    toc = "".join(f'<li><a href="#s{i}">{escape(h)}</a></li>' for i, (h, _) in enumerate(sections))
    body = "".join(f'<h2 id="s{i}">{escape(h)}</h2>{inner}' for i, (h, inner) in enumerate(sections))
    return (f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{escape(title)}</title>"
            f"<style>{CSS}</style></head><body><h1>{escape(title)}</h1><ul>{toc}</ul>{body}</body></html>\n")


def img(src: str, alt: str) -> str:
    return f'<p><img src="{escape(src)}" alt="{escape(alt)}"></p>'


def link(href: str, text: str) -> str:
    return f'<a href="{escape(href)}">{escape(text)}</a>'
