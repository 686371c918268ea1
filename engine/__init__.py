"""Arbor's embedded engine: task domains, MCTS, agents, routing and the query loop.

Never imports streamlit.  See DESIGN.md for the stable interfaces::

    from engine import Engine, QueryRequest
    result = Engine().run(QueryRequest(query="24: 4 7 8 8", seed=1))
"""

from engine.models import QueryRequest, QueryResult, StepRecord
from engine.pipeline import Engine, QueryError

__all__ = ["Engine", "QueryError", "QueryRequest", "QueryResult", "StepRecord"]
