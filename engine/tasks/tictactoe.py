"""Tic-tac-toe with bitmask states and full-minimax ground truth.

State: ``(x_bits, o_bits)``, two 9-bit masks.  Cell ``i`` is bit ``1 << i``,
numbered row-major with row 1 at the top (``0 1 2 / 3 4 5 / 6 7 8``).  Player 0
is X and moves first; the player to move follows from the piece counts.  An
action is a cell index 0..8, labelled ``a1``..``c3`` (columns a-c left to right,
rows 1-3 top to bottom).

Position text: the three rows top to bottom separated by ``/``, cells ``X``,
``O`` and ``.``, e.g. ``X.O/.X./..O`` (an optional ``tictactoe:`` prefix,
lowercase and surrounding whitespace are accepted).  Only positions reachable
in a real game parse.
"""

from __future__ import annotations

from functools import cache

from engine.tasks.base import BaseTask, Example, ParseError, Returns, Uniform, Verdict

__all__ = [
    "COLUMNS",
    "DRAW",
    "FULL",
    "LINES",
    "O_WINS",
    "X_WINS",
    "State",
    "TicTacToe",
    "cell_label",
    "classify",
    "minimax_value",
    "optimal_moves",
    "reachable_states",
]

State = tuple[int, int]
FULL = 0x1FF
LINES: tuple[int, ...] = (
    0b000000111, 0b000111000, 0b111000000,  # rows
    0b001001001, 0b010010010, 0b100100100,  # columns
    0b100010001, 0b001010100,  # diagonals
)  # fmt: skip
COLUMNS = "abc"
X_WINS: Returns = (1.0, -1.0)
O_WINS: Returns = (-1.0, 1.0)
DRAW: Returns = (0.0, 0.0)

# 512-entry tables indexed by a 9-bit mask.
_HAS_LINE: tuple[bool, ...] = tuple(any(m & line == line for line in LINES) for m in range(512))
_EMPTIES: tuple[tuple[int, ...], ...] = tuple(
    tuple(i for i in range(9) if not occ >> i & 1) for occ in range(512)
)
_EMPTY_BITS: tuple[tuple[int, ...], ...] = tuple(tuple(1 << i for i in cells) for cells in _EMPTIES)
_NO_ACTIONS: tuple[int, ...] = ()


def cell_label(cell: int) -> str:
    """The coordinate of cell index ``cell`` (0..8), e.g. 4 -> ``"b2"``."""
    return f"{COLUMNS[cell % 3]}{cell // 3 + 1}"


def _to_move(x: int, o: int) -> int:
    return 0 if x.bit_count() == o.bit_count() else 1


def _terminal(x: int, o: int) -> bool:
    return _HAS_LINE[x] or _HAS_LINE[o] or (x | o) == FULL


@cache
def _value(x: int, o: int) -> int:
    """Negamax value for the player to move: 1 win, 0 draw, -1 loss."""
    if _HAS_LINE[x] or _HAS_LINE[o]:
        return -1  # the previous mover completed a line
    empties = _EMPTY_BITS[x | o]
    if not empties:
        return 0
    best = -1
    x_moves = x.bit_count() == o.bit_count()
    for bit in empties:
        v = -(_value(x | bit, o) if x_moves else _value(x, o | bit))
        if v > best:
            best = v
            if best == 1:
                break
    return best


def minimax_value(state: State) -> int:
    """The game-theoretic value for the player to move: 1 win, 0 draw, -1 loss.

    A terminal position with a line is a loss for the player to move (the
    opponent just won); a full board without a line is 0.
    """
    return _value(*state)


@cache
def _optimal(x: int, o: int) -> frozenset[int]:
    if _terminal(x, o):
        return frozenset()
    target = _value(x, o)
    x_moves = x.bit_count() == o.bit_count()
    return frozenset(
        cell
        for cell in _EMPTIES[x | o]
        if -(_value(x | 1 << cell, o) if x_moves else _value(x, o | 1 << cell)) == target
    )


def optimal_moves(state: State) -> frozenset[int]:
    """The cells whose minimax value equals the position's value (empty when terminal)."""
    return _optimal(*state)


def _threats(mine: int, theirs: int) -> frozenset[int]:
    """Empty cells that would complete a line of ``mine``."""
    occ = mine | theirs
    return frozenset(c for c in _EMPTIES[occ] if _HAS_LINE[mine | 1 << c])


def classify(state: State) -> str | None:
    """``"win_in_1"``, ``"must_block"``, ``"other"`` (not every move optimal) or None.

    None means the position is terminal or every legal move is optimal.
    ``must_block``: the opponent threatens to complete a line, the player to
    move cannot complete one, and the optimal moves are exactly the blocks.
    """
    x, o = state
    if _terminal(x, o):
        return None
    best = optimal_moves(state)
    if len(best) == len(_EMPTIES[x | o]):
        return None
    mine, theirs = (x, o) if _to_move(x, o) == 0 else (o, x)
    if _threats(mine, theirs):
        return "win_in_1"
    blocks = _threats(theirs, mine)
    if blocks and best == blocks:
        return "must_block"
    return "other"


def reachable_states() -> list[State]:
    """Every position reachable from the empty board (5478 of them), in BFS order."""
    seen = {(0, 0)}
    order: list[State] = [(0, 0)]
    for x, o in order:  # the list grows while we walk it
        if _terminal(x, o):
            continue
        x_moves = x.bit_count() == o.bit_count()
        for bit in _EMPTY_BITS[x | o]:
            child = (x | bit, o) if x_moves else (x, o | bit)
            if child not in seen:
                seen.add(child)
                order.append(child)
    return order


class TicTacToe(BaseTask):
    """Tic-tac-toe; see the module docstring for states, actions and text."""

    name = "tictactoe"
    num_players = 2
    reward_range = (-1.0, 1.0)
    examples: tuple[Example, ...] = (
        Example("Empty board", "tictactoe: .../.../..."),
        Example("X wins in one (a3)", "tictactoe: XO./XO./..."),
        Example("O must block (c3)", "tictactoe: X.O/.X./..."),
        Example("X forks (a2 or a3)", "tictactoe: XO./.X./..O"),
    )

    def parse(self, text: str) -> State:
        """Parse position text such as ``X.O/.X./..O``.

        Raises ParseError naming the problem: the number of rows or cells, a
        bad character, illegal piece counts, or an unreachable finished game.
        """
        body = text.strip()
        if body[:10].lower() == "tictactoe:":
            body = body[10:].strip()
        rows = body.split("/")
        if len(rows) != 3:
            raise ParseError(f"expected 3 rows separated by '/', got {len(rows)}")
        x = o = 0
        for r, row in enumerate(rows):
            row = row.strip()
            if len(row) != 3:
                raise ParseError(f"row {r + 1} has {len(row)} cells, expected 3")
            for c, ch in enumerate(row.upper()):
                if ch == "X":
                    x |= 1 << (3 * r + c)
                elif ch == "O":
                    o |= 1 << (3 * r + c)
                elif ch != ".":
                    raise ParseError(f"bad character {row[c]!r} in row {r + 1} (use X, O or .)")
        nx, no = x.bit_count(), o.bit_count()
        if nx not in (no, no + 1):
            raise ParseError(
                f"illegal piece counts: {nx} X and {no} O (X moves first, so X must equal O or O+1)"
            )
        x_line, o_line = _HAS_LINE[x], _HAS_LINE[o]
        if x_line and o_line:
            raise ParseError("both players have a line")
        if x_line and nx == no:
            raise ParseError("X has a line but O moved after it")
        if o_line and nx == no + 1:
            raise ParseError("O has a line but X moved after it")
        return (x, o)

    def render(self, state: State) -> str:
        """The canonical position text, e.g. ``X.O/.X./..O``."""
        x, o = state
        cells = ["X" if x >> i & 1 else "O" if o >> i & 1 else "." for i in range(9)]
        return "/".join("".join(cells[r * 3 : r * 3 + 3]) for r in range(3))

    def describe(self, state: State) -> str:
        """A board with column letters and row numbers (a header and three rows)."""
        rows = self.render(state).split("/")
        return "\n".join(["  a b c", *(f"{r + 1} {' '.join(row)}" for r, row in enumerate(rows))])

    def current_player(self, state: State) -> int:
        """0 when X is to move, 1 when O is."""
        return _to_move(*state)

    def legal_actions(self, state: State) -> tuple[int, ...]:
        """The empty cells in increasing order (none when the game is over)."""
        x, o = state
        if _HAS_LINE[x] or _HAS_LINE[o]:
            return _NO_ACTIONS
        return _EMPTIES[x | o]

    def apply(self, state: State, action: int) -> State:
        """Place the mover's mark on cell ``action``, which must be legal."""
        x, o = state
        if x.bit_count() == o.bit_count():
            return (x | 1 << action, o)
        return (x, o | 1 << action)

    def is_terminal(self, state: State) -> bool:
        """True when a player has a line or the board is full."""
        return _terminal(*state)

    def returns(self, state: State) -> Returns:
        """(1, -1) if X has a line, (-1, 1) if O has, else (0, 0)."""
        x, o = state
        if _HAS_LINE[x]:
            return X_WINS
        if _HAS_LINE[o]:
            return O_WINS
        return DRAW

    def action_label(self, state: State, action: int) -> str:
        """The cell coordinate, e.g. 4 -> ``"b2"``."""
        return cell_label(action)

    def parse_action(self, state: State, text: str) -> int:
        """Parse a cell such as ``"b2"``; raises ParseError if malformed, occupied or the game is over."""
        t = text.strip().lower()
        if len(t) != 2 or t[0] not in COLUMNS or t[1] not in "123":
            raise ParseError(f"{text.strip()!r} is not a cell (a1..c3: column a-c, row 1-3)")
        cell = COLUMNS.index(t[0]) + 3 * (int(t[1]) - 1)
        x, o = state
        if _terminal(x, o):
            raise ParseError("the game is over")
        if (x | o) >> cell & 1:
            raise ParseError(f"cell {t} is occupied")
        return cell

    def rollout(self, state: State, rand: Uniform) -> tuple[Returns, State]:
        """Uniformly random playout by table lookups; returns (returns, terminal state)."""
        x, o = state
        has, empties = _HAS_LINE, _EMPTY_BITS
        if has[x]:
            return X_WINS, state
        if has[o]:
            return O_WINS, state
        if x.bit_count() != o.bit_count():  # O to move: play one O move to align the loop
            e = empties[x | o]
            if not e:
                return DRAW, (x, o)
            o |= e[int(rand() * len(e))]
            if has[o]:
                return O_WINS, (x, o)
        while True:
            e = empties[x | o]
            if not e:
                return DRAW, (x, o)
            x |= e[int(rand() * len(e))]
            if has[x]:
                return X_WINS, (x, o)
            e = empties[x | o]
            if not e:
                return DRAW, (x, o)
            o |= e[int(rand() * len(e))]
            if has[o]:
                return O_WINS, (x, o)

    def verify(self, state: State, answer: str) -> Verdict | None:
        """Judge a cell answer against the minimax-optimal moves; None when the game is over.

        An unparseable or illegal answer is an incorrect Verdict saying why.
        """
        x, o = state
        if _terminal(x, o):
            return None
        best = optimal_moves(state)
        expected = ", ".join(sorted(cell_label(c) for c in best))
        outcome = {1: "a win", 0: "a draw", -1: "a loss"}[minimax_value(state)]
        try:
            cell = self.parse_action(state, answer)
        except ParseError as exc:
            return Verdict(False, expected, f"not a legal move: {exc}")
        label = cell_label(cell)
        if cell in best:
            return Verdict(True, expected, f"{label} is optimal; best play leads to {outcome}")
        got = {1: "a win", 0: "a draw", -1: "a loss"}[-_value(*self.apply(state, cell))]
        return Verdict(
            False, expected, f"{label} leads to {got} with best play; optimal play gives {outcome}"
        )
