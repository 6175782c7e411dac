"""The reports: summary.json and report.md, the HTML report, thumbnails, the run-to-run diff."""
