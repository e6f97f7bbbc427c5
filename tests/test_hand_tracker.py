"""The hand tracker switches between the two-hand and the one-hand graph as hands come and go.

The MediaPipe graphs are replaced by fakes that report a scripted number of hands, so the test
checks which graph looks at which frame, not the models.
"""

from types import SimpleNamespace

from workers.scoring.detect import DetectorOptions
from workers.scoring.hand_tracker import HandTracker


class FakeGraph:
    def __init__(self, hands_in_view, max_num_hands: int) -> None:
        self.hands_in_view = hands_in_view  # t -> number of hands in the picture
        self.max_num_hands = max_num_hands
        self.calls: list[float] = []
        self.resets = 0

    def process(self, t: float):
        self.calls.append(t)
        n = min(self.hands_in_view(t), self.max_num_hands)
        return SimpleNamespace(multi_hand_landmarks=[object()] * n or None)

    def reset(self) -> None:
        self.resets += 1

    def close(self) -> None:
        pass


def tracker(hands_in_view, **options):
    graphs = []

    def make(**kwargs):
        graphs.append(FakeGraph(hands_in_view, kwargs["max_num_hands"]))
        return graphs[-1]

    t = HandTracker(SimpleNamespace(Hands=make), DetectorOptions(**options))
    return t, {g.max_num_hands: g for g in graphs}


def run(t: HandTracker, until_s: float, fps: float = 10.0) -> list[int]:
    """Feed frames at ``fps``; the number of hands reported at each."""
    seen = []
    for i in range(int(until_s * fps)):
        ts = round(i / fps, 3)
        seen.append(len(t.process(ts, ts).multi_hand_landmarks or []))
    return seen


def test_one_hand_is_followed_by_the_one_hand_graph_with_regular_checks() -> None:
    t, g = tracker(lambda ts: 1, one_hand_after_s=0.5, second_hand_check_s=0.5)
    assert run(t, 3.0) == [1] * 30
    assert t.single
    # Two-hand graph: the first 0.5 s, then one fresh look every 0.5 s; the rest is one-hand.
    assert g[2].calls == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 1.0, 1.5, 2.0, 2.5]
    assert len(g[1].calls) == 30 - len(g[2].calls)
    assert g[2].resets == g[1].resets == 1  # at start only: a restart costs memory


def test_a_second_hand_switches_back_to_the_two_hand_graph_within_the_check_time() -> None:
    t, g = tracker(lambda ts: 2 if ts >= 1.2 else 1)
    seen = run(t, 3.0)
    assert seen.index(2) <= 12 + 5  # within 0.5 s at 10 frames a second
    assert not t.single
    assert [c for c in g[2].calls if c < 1.5] == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 1.0]
    assert g[2].calls[-15:] == [round(i / 10, 3) for i in range(15, 30)]
    assert seen[-10:] == [2] * 10


def test_two_hands_keep_the_two_hand_graph() -> None:
    t, g = tracker(lambda ts: 2)
    assert run(t, 2.0) == [2] * 20
    assert not t.single and g[1].calls == []


def test_zero_check_time_never_uses_the_one_hand_graph() -> None:
    t, g = tracker(lambda ts: 1, second_hand_check_s=0.0)
    run(t, 2.0)
    assert 1 not in g and len(g[2].calls) == 20 and not t.single


def test_reset_starts_again_with_two_hands() -> None:
    t, g = tracker(lambda ts: 1)
    run(t, 2.0)
    assert t.single
    t.reset()
    assert not t.single
    t.process(0.0, 0.0)
    assert g[2].calls[-1] == 0.0
