"""`isobench report`: a Report model built once from state, rendered as HTML, Markdown, JSON."""
