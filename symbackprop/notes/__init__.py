"""The notes: notation, printing, figures and rendering of a derivation (a stage of its own)."""
from . import notation, rendering
