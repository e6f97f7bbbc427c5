"""Hand landmarks frame by frame, with the two-hand MediaPipe graph or a cheaper one-hand one."""

from __future__ import annotations

import numpy as np

from workers.scoring.detector_options import DetectorOptions


class HandTracker:
    """Hand landmarks frame by frame, with a two-hand graph or a cheaper one-hand graph.

    Starts with the two-hand graph. Once at most one hand has been seen for
    ``one_hand_after_s``, follows that hand with the one-hand graph, and every
    ``second_hand_check_s`` runs the two-hand graph on the frame instead (its palm detector
    looks over the whole crop): when it finds two hands it keeps tracking them and the one-hand
    graph rests. The second graph costs about 90 MB; the worker path's CPU drops by about 13 %
    on a clip with one hand at the face.
    """

    def __init__(self, hands_module, o: DetectorOptions) -> None:
        def graph(max_hands: int):
            return hands_module.Hands(
                static_image_mode=False,
                max_num_hands=max_hands,
                model_complexity=o.hand_model_complexity,
                min_detection_confidence=o.min_hand_confidence,
                min_tracking_confidence=o.min_hand_tracking_confidence,
            )

        self._options = o
        self._two = graph(2)
        self._one = graph(1) if o.second_hand_check_s > 0 else None
        self.reset()

    def reset(self) -> None:
        for g in (self._two, self._one):
            if g is not None:
                g.reset()
        self.single = False  # following one hand with the one-hand graph
        self._two_seen_t = 0.0  # last time two hands were seen (or tracking started)
        self._check_t = 0.0  # last time the two-hand graph looked afresh

    def close(self) -> None:
        for g in (self._two, self._one):
            if g is not None:
                g.close()

    def process(self, rgb: np.ndarray, t: float):
        o = self._options
        if not self.single:
            result = self._two.process(rgb)
            if len(result.multi_hand_landmarks or []) >= 2:
                self._two_seen_t = t
            elif self._one is not None and t - self._two_seen_t >= o.one_hand_after_s:
                self.single, self._check_t = True, t
            return result
        if t - self._check_t >= o.second_hand_check_s:
            self._check_t = t
            # Tracking fewer than two hands, this graph runs the palm detector over the whole
            # crop. It is not reset: restarting a MediaPipe graph costs tens of MB each time.
            result = self._two.process(rgb)
            if len(result.multi_hand_landmarks or []) >= 2:
                self.single, self._two_seen_t = False, t
            return result
        return self._one.process(rgb)
