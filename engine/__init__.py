"""Arbor's embedded engine: task domains, MCTS, and (later) agents and routing.

Never imports streamlit.  See DESIGN.md for the stable interfaces.
"""

__all__: list[str] = []
