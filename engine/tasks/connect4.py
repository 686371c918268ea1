"""Connect four (7 columns x 6 rows) on bitboards, with bounded-negamax ground truth.

Bitboard layout: 7 bits per column, bottom cell of column ``c`` is bit ``7*c``,
rows 0..5 upwards, bit ``7*c + 6`` is an always-empty sentinel that stops
carries and shift tests from wrapping between columns.

State: ``(cur, mask, status, history)``

- ``cur``: the stones of the player to move; ``mask``: all stones.  The player
  to move is ``popcount(mask) & 1`` (player 0, shown as X, moves first).
- ``status``: 0 while the game goes on, 1 when the last mover connected four,
  2 when the board filled up without a win, so ``is_terminal`` is O(1).
- ``history``: the columns played, packed as base-8 digits ``column + 1``
  (first move most significant), so ``render`` gives back the moves actually
  played.  Positions reached by different move orders differ only here; use
  ``key(state) == (cur, mask)`` for transpositions.

Actions are column indices 0..6, labelled ``"1"``..``"7"``.  Position text is
the sequence of 1-based columns played, e.g. ``"4453"`` (``""`` is the empty
board; an optional ``connect4:`` prefix and whitespace are accepted).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from engine.tasks.base import BaseTask, Example, ParseError, Returns, Uniform, Verdict

__all__ = [
    "BOARD",
    "BOTTOM",
    "BOTTOM_ROW",
    "COLUMN",
    "DRAW",
    "INITIAL",
    "ORDER",
    "P0_WINS",
    "P1_WINS",
    "TOP",
    "Connect4",
    "State",
    "Tactic",
    "best_moves",
    "classify",
    "classify_deep",
    "generate_deep_tactics",
    "generate_tactics",
    "has_four",
    "move_scores",
    "random_position",
    "winning_cells",
]

State = tuple[int, int, int, int]
WIDTH, HEIGHT = 7, 6
ONGOING, WON, DRAWN = 0, 1, 2
BOTTOM: tuple[int, ...] = tuple(1 << (7 * c) for c in range(WIDTH))
TOP: tuple[int, ...] = tuple(1 << (7 * c + HEIGHT - 1) for c in range(WIDTH))
COLUMN: tuple[int, ...] = tuple(((1 << HEIGHT) - 1) << (7 * c) for c in range(WIDTH))
BOTTOM_ROW = sum(BOTTOM)
BOARD = sum(COLUMN)
ORDER = (3, 2, 4, 1, 5, 0, 6)  # centre-first move ordering for the search
P0_WINS: Returns = (1.0, -1.0)
P1_WINS: Returns = (-1.0, 1.0)
DRAW: Returns = (0.0, 0.0)
_BIG = 1 << 20
INITIAL: State = (0, 0, ONGOING, 0)


def has_four(stones: int) -> bool:
    """True if ``stones`` (a bitboard) contains four in a row in any direction."""
    m = stones & (stones >> 7)  # horizontal
    if m & (m >> 14):
        return True
    m = stones & (stones >> 6)  # diagonal, up-left
    if m & (m >> 12):
        return True
    m = stones & (stones >> 8)  # diagonal, up-right
    if m & (m >> 16):
        return True
    m = stones & (stones >> 1)  # vertical
    return bool(m & (m >> 2))


def winning_cells(stones: int, mask: int) -> int:
    """Empty cells (bitboard, any height) that would give ``stones`` four in a row."""
    p = stones
    r = (p << 1) & (p << 2) & (p << 3)  # vertical: three below
    for s in (7, 6, 8):  # horizontal and both diagonals
        a = (p << s) & (p << 2 * s)
        r |= a & (p << 3 * s)
        r |= a & (p >> s)
        b = (p >> s) & (p >> 2 * s)
        r |= b & (p << s)
        r |= b & (p >> 3 * s)
    return r & (BOARD ^ mask)


def _playable(mask: int) -> int:
    return (mask + BOTTOM_ROW) & BOARD


def _negamax(cur: int, mask: int, depth: int, alpha: int, beta: int) -> int:
    """Value for the player to move looking ``depth`` >= 1 plies ahead.

    A win at our k-th ply scores ``depth + 1 - k``, a loss at ply k scores
    ``-(depth + 1 - k)``, anything not decided within the horizon scores 0.
    Fail-hard alpha-beta: exact inside (alpha, beta), a bound outside.
    """
    possible = _playable(mask)
    if winning_cells(cur, mask) & possible:
        return depth
    if depth == 1 or not possible:
        return 0
    opp = cur ^ mask
    opp_wins = winning_cells(opp, mask)
    forced = opp_wins & possible
    if forced:
        if forced & (forced - 1):
            return -(depth - 1)  # two immediate threats: lost at the opponent's next ply
        possible = forced
    moves = possible & ~(opp_wins >> 1)  # never play right below an opponent's winning cell
    if not moves:
        return -(depth - 1)
    if depth == 2:
        return 0
    if beta > depth - 2:  # no win in 1, so the best conceivable is a win at ply 3
        beta = depth - 2
        if alpha >= beta:
            return beta
    for c in ORDER:
        bit = moves & COLUMN[c]
        if bit:
            v = -_negamax(opp, mask | bit, depth - 1, -beta, -alpha)
            if v >= beta:
                return v
            if v > alpha:
                alpha = v
    return alpha


def move_scores(state: State, depth: int = 5) -> dict[int, int]:
    """Score every legal move (column index) by negamax with alpha-beta, ``depth`` plies deep.

    A forced win at our k-th ply (counting this move as ply 1) scores
    ``depth + 1 - k`` > 0, a forced loss at ply k scores ``-(depth + 1 - k)``,
    0 means undecided within the horizon (or a draw).  Empty when terminal.
    Raises ValueError if ``depth`` < 1.
    """
    if depth < 1:
        raise ValueError("depth must be at least 1")
    cur, mask, status, _ = state
    if status:
        return {}
    scores: dict[int, int] = {}
    opp = cur ^ mask
    for c in range(WIDTH):
        if mask & TOP[c]:
            continue
        new = mask | (mask + BOTTOM[c])
        if has_four(cur | (new ^ mask)):
            scores[c] = depth
        elif depth == 1 or new == BOARD:
            scores[c] = 0
        else:
            scores[c] = -_negamax(opp, new, depth - 1, -_BIG, _BIG)
    return scores


def best_moves(state: State, depth: int = 5) -> frozenset[int]:
    """The legal columns (0-based) with the maximum ``move_scores``; empty when terminal."""
    scores = move_scores(state, depth)
    if not scores:
        return frozenset()
    top = max(scores.values())
    return frozenset(c for c, s in scores.items() if s == top)


def classify(state: State, depth: int = 5) -> str | None:
    """Name the tactic in a position: ``"win_in_1"``, ``"must_block"``, ``"win_in_3"`` or None.

    - win_in_1: the player to move can connect four at once.
    - must_block: no immediate win, the opponent threatens one, and the best
      moves (within ``depth``) are exactly the blocking columns.
    - win_in_3: no immediate win, not a must-block, and a forced win at our
      second move (score ``depth - 2``) exists.  Needs ``depth`` >= 3.
    """
    if state[2]:
        return None
    return _classify(state, move_scores(state, depth), depth)


def _classify(state: State, scores: dict[int, int], depth: int) -> str | None:
    """``classify`` given the position's ``move_scores`` at ``depth``."""
    cur, mask, _, _ = state
    top = max(scores.values())
    if top == depth:
        return "win_in_1"
    best = frozenset(c for c, s in scores.items() if s == top)
    threats = winning_cells(cur ^ mask, mask) & _playable(mask)
    if threats and len(best) < len(scores):
        blocks = frozenset(c for c in range(WIDTH) if threats & COLUMN[c])
        if best == blocks:
            return "must_block"
    if depth >= 3 and top == depth - 2:
        return "win_in_3"
    return None


def classify_deep(state: State, depth: int = 5) -> str | None:
    """``classify``'s kinds, else ``"win_in_5"``: the mover's best move forces a win at its third
    move (ply 5; score ``depth - 4``) and nothing quicker exists.  Needs ``depth`` >= 5 (raises
    ValueError otherwise).  These deeper tactics are where the agents differ: HRM's sub-goals look
    three plies ahead, TRM's refinement four, MCTS searches."""
    if depth < 5:
        raise ValueError("win_in_5 needs depth >= 5")
    if state[2]:
        return None
    scores = move_scores(state, depth)
    kind = _classify(state, scores, depth)
    if kind is None and max(scores.values()) == depth - 4:
        return "win_in_5"
    return kind


def random_position(draw: Callable[[int, int], int], min_plies: int = 4, max_plies: int = 30) -> State:
    """A position reached by random play: ``draw(min_plies, max_plies)`` plies, each a legal move
    ``draw(0, number of legal moves)``, stopping before a move that would end the game.  ``draw(lo,
    hi)`` returns an int in ``[lo, hi)`` from the caller's seeded generator (``random.Random.
    randrange`` or ``numpy`` ``Generator.integers``), so positions are reproducible."""
    task = Connect4()
    state = INITIAL
    for _ in range(draw(min_plies, max_plies)):
        moves = task.legal_actions(state)
        nxt = task.apply(state, moves[draw(0, len(moves))])
        if nxt[2]:
            break
        state = nxt
    return state


def generate_deep_tactics(seed: int, n: int, depth: int = 5) -> list[Tactic]:
    """Find ``n`` distinct ``win_in_5`` positions (see ``classify_deep``) by seeded random play.

    Deterministic for a given ``seed``; fewer than ``n`` only if ``200 * n`` random games do not
    yield them.  Raises ValueError if ``n`` < 0.
    """
    if n < 0:
        raise ValueError("n must be non-negative")
    rng = random.Random(seed)
    found: list[Tactic] = []
    seen: set[tuple[int, int]] = set()
    task = Connect4()
    for _ in range(200 * max(n, 1)):
        if len(found) >= n:
            break
        state = random_position(rng.randrange)
        if state[:2] in seen:
            continue
        seen.add(state[:2])
        if classify_deep(state, depth) == "win_in_5":
            optimal = tuple(str(c + 1) for c in sorted(best_moves(state, depth)))
            found.append(Tactic(task.render(state), "win_in_5", optimal))
    return found


def _describe_score(score: int, depth: int) -> str:
    if score > 0:
        return f"forces a win in {depth + 1 - score} plies"
    if score < 0:
        return f"loses by force in {depth + 1 + score} plies"
    return f"no forced result within {depth} plies"


@dataclass(frozen=True, slots=True)
class Tactic:
    """A tactical position: its move text, its kind and the optimal columns (1-based labels)."""

    moves: str
    kind: str
    optimal: tuple[str, ...]


def generate_tactics(seed: int, n: int, depth: int = 5) -> list[Tactic]:
    """Find ``n`` distinct tactical positions by seeded random play, balanced across kinds.

    Kinds are those of ``classify``; each kind gets at most ``ceil(n / 3)``
    positions, so the result is balanced when random play yields enough of each.
    Deterministic for a given ``seed``.  Raises ValueError if ``n`` < 0.
    """
    if n < 0:
        raise ValueError("n must be non-negative")
    rng = random.Random(seed)
    quota = -(-n // 3)
    found: dict[str, list[Tactic]] = {"win_in_1": [], "must_block": [], "win_in_3": []}
    seen: set[tuple[int, int]] = set()
    task = Connect4()
    for _ in range(200 * max(n, 1)):
        if sum(len(v) for v in found.values()) >= n:
            break
        state = INITIAL
        plies = rng.randrange(4, 30)
        for _ in range(plies):
            if state[2]:
                break
            moves = task.legal_actions(state)
            state = task.apply(state, moves[rng.randrange(len(moves))])
        if state[2] or state[:2] in seen:
            continue
        seen.add(state[:2])
        kind = classify(state, depth)
        if kind is None or len(found[kind]) >= quota:
            continue
        optimal = tuple(str(c + 1) for c in sorted(best_moves(state, depth)))
        found[kind].append(Tactic(task.render(state), kind, optimal))
    ordered = [t for kind in ("win_in_1", "must_block", "win_in_3") for t in found[kind]]
    return ordered[:n]


class Connect4(BaseTask):
    """Connect four; see the module docstring for the state layout and text."""

    name = "connect4"
    num_players = 2
    reward_range = (-1.0, 1.0)
    examples: tuple[Example, ...] = (
        Example("Empty board", "connect4: "),
        Example("X wins in one (column 1)", "connect4: 121212"),
        Example("X must block (column 7)", "connect4: 17273467"),
        Example("X wins in three (column 3 or 6)", "connect4: 4455"),
    )

    def parse(self, text: str) -> State:
        """Parse a move sequence such as ``"4453"``.

        Raises ParseError naming the problem: a character that is not a
        column 1-7, a move into a full column, or a move after the game was won.
        """
        body = text.strip()
        if body[:9].lower() == "connect4:":
            body = body[9:]
        body = "".join(body.split())
        state = INITIAL
        for i, ch in enumerate(body):
            if ch not in "1234567":
                raise ParseError(f"{ch!r} at move {i + 1} is not a column 1-7")
            if state[2] == WON:
                raise ParseError(f"the game was already won at move {i}")
            col = int(ch) - 1
            if state[1] & TOP[col]:
                raise ParseError(f"column {ch} is full at move {i + 1}")
            state = self.apply(state, col)
        return state

    def render(self, state: State) -> str:
        """The 1-based columns played so far, e.g. ``"4453"`` (empty for the initial board)."""
        digits = []
        h = state[3]
        while h:
            digits.append(str(h & 7))
            h >>= 3
        return "".join(reversed(digits))

    def describe(self, state: State) -> str:
        """A 6-row grid, top row first, X for player 0 and O for player 1, then the column numbers."""
        cur, mask, _, _ = state
        first = cur if mask.bit_count() % 2 == 0 else cur ^ mask
        rows = []
        for r in range(HEIGHT - 1, -1, -1):
            cells = []
            for c in range(WIDTH):
                bit = 1 << (7 * c + r)
                cells.append("." if not mask & bit else "X" if first & bit else "O")
            rows.append(" ".join(cells))
        rows.append(" ".join(str(c + 1) for c in range(WIDTH)))
        return "\n".join(rows)

    def key(self, state: State) -> tuple[int, int]:
        """``(cur, mask)``: identical for the same position reached by different move orders."""
        return (state[0], state[1])

    def current_player(self, state: State) -> int:
        """0 (X, first mover) or 1 (O)."""
        return state[1].bit_count() & 1

    def legal_actions(self, state: State) -> tuple[int, ...]:
        """Non-full columns, 0-based, in increasing order (none when the game is over)."""
        if state[2]:
            return ()
        mask = state[1]
        return tuple(c for c in range(WIDTH) if not mask & TOP[c])

    def apply(self, state: State, action: int) -> State:
        """Drop the mover's stone in column ``action`` (0-based), which must not be full."""
        cur, mask, _, hist = state
        new = mask | (mask + BOTTOM[action])
        status = WON if has_four(cur | (new ^ mask)) else DRAWN if new == BOARD else ONGOING
        return (cur ^ mask, new, status, hist * 8 + action + 1)

    def is_terminal(self, state: State) -> bool:
        """True when the last mover connected four or the board is full."""
        return state[2] != ONGOING

    def returns(self, state: State) -> Returns:
        """(1, -1) if player 0 won, (-1, 1) if player 1 won, else (0, 0)."""
        if state[2] != WON:
            return DRAW
        return P0_WINS if state[1].bit_count() & 1 else P1_WINS  # odd count: player 0 moved last

    def action_label(self, state: State, action: int) -> str:
        """The 1-based column, e.g. 3 -> ``"4"``."""
        return str(action + 1)

    def parse_action(self, state: State, text: str) -> int:
        """Parse a 1-based column such as ``"4"``.

        Raises ParseError if the text is not a column 1-7, the column is full or the game is over.
        """
        t = text.strip()
        if len(t) != 1 or t not in "1234567":
            raise ParseError(f"{t!r} is not a column 1-7")
        if state[2]:
            raise ParseError("the game is over")
        col = int(t) - 1
        if state[1] & TOP[col]:
            raise ParseError(f"column {t} is full")
        return col

    def rollout(self, state: State, rand: Uniform) -> tuple[Returns, State]:
        """Uniformly random playout on the bitboard; returns (returns, terminal state)."""
        cur, mask, status, hist = state
        if status:
            return self.returns(state), state
        cols = [c for c in range(WIDTH) if not mask & TOP[c]]
        bottom, top = BOTTOM, TOP
        while True:
            i = int(rand() * len(cols))
            c = cols[i]
            new = mask | (mask + bottom[c])
            me = cur | (new ^ mask)
            cur = cur ^ mask  # the opponent is to move next
            mask = new
            hist = hist * 8 + c + 1
            m = me & (me >> 7)
            if m & (m >> 14):
                break
            m = me & (me >> 1)
            if m & (m >> 2):
                break
            m = me & (me >> 6)
            if m & (m >> 12):
                break
            m = me & (me >> 8)
            if m & (m >> 16):
                break
            if new & top[c]:
                del cols[i]
                if not cols:
                    return DRAW, (cur, mask, DRAWN, hist)
        won = (cur, mask, WON, hist)
        return (P0_WINS if mask.bit_count() & 1 else P1_WINS), won

    def verify(self, state: State, answer: str) -> Verdict | None:
        """Judge a column answer against ``best_moves`` (depth 5).

        None when the game is over or every legal move scores the same (no
        ground truth within the horizon).  A malformed or illegal answer is an
        incorrect Verdict saying why.
        """
        depth = 5
        scores = move_scores(state, depth)
        if len(set(scores.values())) <= 1:
            return None
        top = max(scores.values())
        best = sorted(c for c, s in scores.items() if s == top)
        expected = ", ".join(str(c + 1) for c in best)
        kind = _classify(state, scores, depth)
        why = f" ({kind.replace('_', ' ')})" if kind else ""
        try:
            col = self.parse_action(state, answer)
        except ParseError as exc:
            return Verdict(False, expected, f"not a legal move: {exc}")
        if col in best:
            return Verdict(True, expected, f"column {col + 1} {_describe_score(top, depth)}{why}")
        return Verdict(
            False,
            expected,
            f"column {col + 1} {_describe_score(scores[col], depth)}; "
            f"column {best[0] + 1} {_describe_score(top, depth)}{why}",
        )
