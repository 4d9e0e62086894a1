"""The citizen-facing web pages: a client of intake, the tracker and analytics over HTTP."""
