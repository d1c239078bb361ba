"""Report rules: read metrics files, write LaTeX tables, figures and generated text. No compute."""
