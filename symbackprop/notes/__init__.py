"""The notes: a derivation, its numbers and its checks as a chapter a lecturer hands out.

A stage of its own, downstream of the core (which knows nothing of it)::

    notation     a course's symbols and conventions, read from notations/*.toml (data)
    printing     SymPy expressions -> LaTeX in a notation
    matrix_form  the layer-at-once equations, as SymPy matrix expressions
    figures      the network drawn in TikZ and SVG
    rendering    render / write_notes: jinja2 templates -> Markdown and LaTeX
    display      how each object shows itself in Jupyter (installed when imported: symbackprop
                 imports it in a notebook)

Nothing is imported here: ``check`` reads a notation without loading jinja2 and the renderer.
"""
