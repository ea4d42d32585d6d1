"""Tables and plots from MLflow runs (`zsar report`): paper-style Markdown/CSV tables, PNG plots
and one self-contained HTML page. See `zsar.report.build` for the output layout."""
