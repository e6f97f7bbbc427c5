"""Per-frame detection with the MediaPipe models shipped inside the mediapipe wheel.

Only the legacy ``mediapipe.solutions`` graphs whose models are in the wheel are used: face
detection (full-range model), hands (palm detection + hand landmarks), face mesh and pose (the
full model, the only one in the wheel). Pose costs about as much as the hands, so it runs only
where the face alone cannot show what happens (step 5).

The detectors are chained from coarse to fine so that small, far faces still work:

1. the full-range face detector looks at the whole frame; when it loses a face it was
   tracking, it looks again in a crop around the last position (a zoom-in). While no face is
   known it looks a few times a second, and once a second it searches harder: four overlapping
   zoomed tiles, then the frame turned by quarter turns (sideways phone videos whose rotation
   tag is missing or wrong). A face whose eyes are rolled past 45 degrees turns the picture
   upright for the rest of the clip, so that "below the face" is where the body is;
2. a face counts only when the face mesh finds it too (or the detector is sure of it): this
   removes the face-like patterns of walls, bottles and hands;
3. the hand landmarker runs on a square region around the main face (hands that reach the mouth
   are within a few face widths of it), zoomed so a far person's hands are as large to the model
   as a near person's;
4. the face mesh runs on a crop around the main face, so its own short-range detector sees a
   large face even when the person is far from the camera;
5. the pose (:mod:`workers.scoring.pose`) is read on frames whose face is under
   ``pose_face_px`` wide, not confirmed, or hidden for at most ``face_hold_s``: a face the
   detector found, with the pose's nose and mouth inside its box, counts as real (a far face
   the mesh cannot read, a face half covered by a hand), and its wrists and fingers are the
   hands of a person too far for the hand landmarker.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import cv2
import numpy as np

from workers.scoring.detector_options import DetectorOptions
from workers.scoring.frames import Frame
from workers.scoring.geometry import iou, quarter_turns, square
from workers.scoring.graphs import on_calling_thread
from workers.scoring.hand_tracker import HandTracker
from workers.scoring.observations import Body, Face, FrameObservation, Hand, Mouth
from workers.scoring.pose import PoseReader

logger = logging.getLogger(__name__)

# Face-mesh indices: inner lip middles, mouth corners, forehead top and chin.
_UPPER_LIP, _LOWER_LIP = 13, 14
_MOUTH_RIGHT, _MOUTH_LEFT = 61, 291
_FOREHEAD, _CHIN = 10, 152
_MOUTH_POINTS = (_UPPER_LIP, _LOWER_LIP, _MOUTH_RIGHT, _MOUTH_LEFT, _FOREHEAD, _CHIN)
# Face width, in pixels, at which brightness and sharpness are measured.
_QUALITY_FACE_PX = 64


class Detector:
    """Runs the detector chain frame by frame and keeps the face track between frames.

    Feed the frames of one video in time order to :meth:`observe`; call :meth:`reset` before the
    next video and :meth:`close` (or use ``with``) when done.
    """

    def __init__(self, options: DetectorOptions | None = None) -> None:
        # Imported here so that importing the workers package never loads the MediaPipe runtime.
        from mediapipe.python.solutions import face_detection, face_mesh, hands

        self.options = options or DetectorOptions()
        o = self.options
        with on_calling_thread():
            self._faces = face_detection.FaceDetection(
                model_selection=1, min_detection_confidence=o.min_face_confidence
            )
            self._hands = HandTracker(hands, o)
            self._mesh = face_mesh.FaceMesh(
                static_image_mode=False,
                max_num_faces=1,
                refine_landmarks=False,
                min_detection_confidence=0.5,
                min_tracking_confidence=0.5,
            )
        # Made on the first frame that needs it: most videos never do (about 30 MB and the
        # models' loading saved).
        self._pose: PoseReader | None = None
        self._last_face: Face | None = None
        self._last_face_t = -1e9
        self._last_search_t = -1e9
        self._last_look_t = -1e9
        # The only face the detector found on the last frame, until a frame reuses it.
        self._last_detected: Face | None = None
        self._hand_roi: np.ndarray | None = None  # smoothed (cx, cy, side)
        self._turns = 0  # quarter turns (counter-clockwise) that make the picture upright

    def reset(self) -> None:
        """Forget the tracks of the previous video."""
        for graph in (self._faces, self._hands, self._mesh, self._pose):
            if graph is not None:
                graph.reset()
        self._last_face = None
        self._last_face_t = -1e9
        self._last_search_t = -1e9
        self._last_look_t = -1e9
        self._last_detected = None
        self._hand_roi = None
        self._turns = 0

    def close(self) -> None:
        """Release the MediaPipe graphs."""
        for graph in (self._faces, self._hands, self._mesh, self._pose):
            if graph is not None:
                graph.close()

    def __enter__(self) -> Detector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- faces ---------------------------------------------------------------------------------

    def _detect_faces(self, rgb: np.ndarray, x0: int = 0, y0: int = 0) -> list[Face]:
        """Faces in ``rgb`` (a crop whose top-left corner is at ``x0, y0`` of the frame)."""
        h, w = rgb.shape[:2]
        result = self._faces.process(np.ascontiguousarray(rgb))
        faces = []
        for det in result.detections or []:
            rel = det.location_data.relative_bounding_box
            box = np.array(
                [
                    x0 + rel.xmin * w,
                    y0 + rel.ymin * h,
                    x0 + (rel.xmin + rel.width) * w,
                    y0 + (rel.ymin + rel.height) * h,
                ]
            )
            kps = np.array(
                [[x0 + k.x * w, y0 + k.y * h] for k in det.location_data.relative_keypoints]
            )
            faces.append(Face(box=box, keypoints=kps, score=float(det.score[0])))
        return faces

    def _find_faces(self, rgb: np.ndarray, t_s: float) -> list[Face]:
        """Faces in the frame, zooming in where a tracked face was lost."""
        height, width = rgb.shape[:2]
        faces = self._detect_faces(rgb)
        last = self._last_face
        held = t_s - self._last_face_t <= self.options.face_hold_s
        if last is not None and held and not any(iou(f.box, last.box) > 0.2 for f in faces):
            # A small face missed at full-frame scale is often found at twice the size.
            x0, y0, x1, y1 = square(last.center, max(3.0 * last.width, 96), width, height)
            faces += self._detect_faces(rgb[y0:y1, x0:x1], x0, y0)
        return self._order_faces(self._dedupe(faces))

    def _reuse_face(self, t_s: float) -> Face | None:
        """The last frame's face when the detector can skip this frame (``face_reuse_s``).

        A face is reused once: the frame after runs the detector again.
        """
        face, self._last_detected = self._last_detected, None
        if face is None or t_s - self._last_face_t > self.options.face_reuse_s:
            return None
        return face

    def _search(self, original: np.ndarray) -> tuple[np.ndarray, list[Face]] | None:
        """Look harder for a face: zoomed tiles, then the frame turned a quarter or half turn.

        Tiles find faces too small for the detector at full-frame scale. Turning finds people
        filmed sideways: a phone held on its side in a browser that records no rotation tag, or
        a file whose tag is wrong. A turn is kept for the rest of the clip once a face that the
        face mesh confirms is found with it.

        Returns:
            The (possibly turned) frame and its faces, or None when nothing was found.
        """
        rgb = self._turn(original)
        height, width = rgb.shape[:2]
        tw, th = int(width * 0.6), int(height * 0.6)
        faces: list[Face] = []
        for x0 in (0, width - tw):
            for y0 in (0, height - th):
                faces += self._detect_faces(rgb[y0 : y0 + th, x0 : x0 + tw], x0, y0)
        faces = self._order_faces(self._dedupe(faces))
        if faces and self._confirm(rgb, faces[0])[1]:
            return rgb, faces
        for turns in (1, 3, 2):
            k = (self._turns + turns) % 4
            turned = np.ascontiguousarray(np.rot90(original, k))
            faces = self._order_faces(self._dedupe(self._detect_faces(turned)))
            if faces and self._confirm(turned, faces[0])[1]:
                self._set_turns(k)
                return turned, faces
        return None

    def _set_turns(self, turns: int) -> None:
        logger.debug("turning the picture %s degrees counter-clockwise", 90 * turns)
        self._turns = turns
        self._last_face = self._last_detected = None
        self._last_face_t = -1e9
        self._hand_roi = None
        self._hands.reset()  # its tracks are in the old orientation

    def _turn(self, rgb: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.rot90(rgb, self._turns)) if self._turns else rgb

    def _confirm(self, rgb: np.ndarray, face: Face) -> tuple[Mouth | None, bool]:
        """The face mesh reading of ``face`` and whether the face counts as real."""
        mouth = self._read_mouth(rgb, face)
        return mouth, mouth is not None or face.score >= self.options.sure_face_confidence

    @staticmethod
    def _dedupe(faces: list[Face]) -> list[Face]:
        kept: list[Face] = []
        for face in sorted(faces, key=lambda f: -f.score):
            if all(iou(face.box, k.box) < 0.3 for k in kept):
                kept.append(face)
        return kept

    def _order_faces(self, faces: list[Face]) -> list[Face]:
        """Put the main face first: the one continuing the track, else the largest."""
        if not faces:
            return faces
        last = self._last_face
        if last is not None:
            dist = [np.linalg.norm(f.center - last.center) / last.width for f in faces]
            best = int(np.argmin(dist))
            if dist[best] < 1.0:
                return [faces[best]] + faces[:best] + faces[best + 1 :]
        return sorted(faces, key=lambda f: -f.width)

    # -- hands and mouth -----------------------------------------------------------------------

    def _find_hands(self, rgb: np.ndarray, face: Face, t_s: float) -> list[Hand]:
        height, width = rgb.shape[:2]
        # Centre the region a little below the face: hands rise from the chest to the mouth.
        target = np.array(
            [*face.center + [0.0, 0.6 * face.width], self.options.hand_region_widths * face.width]
        )
        if (
            self._hand_roi is None
            or np.linalg.norm(target[:2] - self._hand_roi[:2]) > target[2] / 2
        ):
            self._hand_roi = target
        else:
            # Smoothed so that the hand tracker's crop does not jump with detector jitter.
            self._hand_roi = 0.6 * self._hand_roi + 0.4 * target
        cx, cy, side = self._hand_roi
        x0, y0, x1, y1 = square(np.array([cx, cy]), side, width, height)
        if (x1 - x0) >= 0.8 * width and (y1 - y0) >= 0.8 * height:
            x0, y0, x1, y1 = 0, 0, width, height
        crop = np.ascontiguousarray(rgb[y0:y1, x0:x1])
        result = self._hands.process(crop, t_s)
        hands = []
        cw, ch = x1 - x0, y1 - y0
        for lms, handed in zip(
            result.multi_hand_landmarks or [], result.multi_handedness or [], strict=False
        ):
            pts = np.array([[x0 + p.x * cw, y0 + p.y * ch] for p in lms.landmark])
            hands.append(Hand(landmarks=pts, score=float(handed.classification[0].score)))
        return hands

    def _read_mouth(self, rgb: np.ndarray, face: Face) -> Mouth | None:
        height, width = rgb.shape[:2]
        x0, y0, x1, y1 = square(face.center, 2.2 * face.width, width, height)
        if x1 - x0 < 16 or y1 - y0 < 16:
            return None
        result = self._mesh.process(np.ascontiguousarray(rgb[y0:y1, x0:x1]))
        if not result.multi_face_landmarks:
            return None
        cw, ch = x1 - x0, y1 - y0
        lm = result.multi_face_landmarks[0].landmark
        # z is in the same units as x (crop width); scale all three to pixels. Only the six
        # landmarks used are read: reading all 468 costs a millisecond a frame.
        pts = {i: np.array([lm[i].x * cw, lm[i].y * ch, lm[i].z * cw]) for i in _MOUTH_POINTS}
        upper, lower = pts[_UPPER_LIP][:2], pts[_LOWER_LIP][:2]
        mouth_width = float(np.linalg.norm(pts[_MOUTH_LEFT][:2] - pts[_MOUTH_RIGHT][:2]))
        down = pts[_CHIN] - pts[_FOREHEAD]
        # Chin coming towards the camera relative to the forehead means the head tilts back.
        pitch = float(np.degrees(np.arctan2(-down[2], np.linalg.norm(down[:2]))))
        return Mouth(
            center=(upper + lower) / 2 + [x0, y0],
            open_ratio=float(np.linalg.norm(lower - upper) / max(mouth_width, 1e-6)),
            pitch_deg=pitch,
        )

    @staticmethod
    def _image_quality(rgb: np.ndarray, face: Face | None) -> tuple[float, float]:
        """Mean brightness and sharpness of the main face, or of the frame when there is none.

        The face is resampled to ``_QUALITY_FACE_PX`` wide first so that the Laplacian variance
        compares like with like across videos. A face smaller than that is enlarged, which
        lowers its sharpness: far faces are softer, and supervisors see them so too.
        """
        region = rgb
        if face is not None:
            x0, y0, x1, y1 = square(face.center, face.width, rgb.shape[1], rgb.shape[0])
            if x1 - x0 >= 4 and y1 - y0 >= 4:
                region = rgb[y0:y1, x0:x1]
        region = cv2.cvtColor(region, cv2.COLOR_RGB2GRAY)  # only the face's pixels, when known
        small = cv2.resize(
            region, (_QUALITY_FACE_PX, _QUALITY_FACE_PX), interpolation=cv2.INTER_AREA
        )
        return float(small.mean()), float(cv2.Laplacian(small, cv2.CV_64F).var())

    def observe(self, frame: Frame) -> FrameObservation:
        """Detect faces, the main face's mouth and the hands near it in one frame."""
        t = frame.t_s
        rgb = self._turn(frame.rgb)
        recent = t - self._last_face_t <= self.options.face_hold_s
        if not recent and t - self._last_look_t < self.options.idle_look_every_s - 1e-6:
            # Nobody in view: looking a few times a second is enough to pick a face up.
            return self._observation(rgb, t, [], None, None, [])
        self._last_look_t = t
        reused = self._reuse_face(t)
        faces = [reused] if reused is not None else self._find_faces(rgb, t)
        mouth, confirmed = self._confirm(rgb, faces[0]) if faces else (None, False)
        if reused is not None and not confirmed:
            reused = None  # the mesh lost the face there: look for it properly
            faces = self._find_faces(rgb, t)
            mouth, confirmed = self._confirm(rgb, faces[0]) if faces else (None, False)
        if not confirmed and not recent and t - self._last_search_t >= self.options.search_every_s:
            self._last_search_t = t
            found = self._search(frame.rgb)
            if found is not None:
                rgb, faces = found
                mouth, confirmed = self._confirm(rgb, faces[0])
        if confirmed and quarter_turns(faces[0]):
            # The face lies on its side (a phone held sideways with no rotation tag, or a
            # wrong one): turn the picture so that "below the face" means the body.
            self._set_turns((self._turns + quarter_turns(faces[0])) % 4)
            rgb = self._turn(frame.rgb)
            faces = self._find_faces(rgb, t)
            mouth, confirmed = self._confirm(rgb, faces[0]) if faces else (None, False)
        body = self._read_body(rgb, faces, confirmed, t)
        if not confirmed and body is not None and faces and body.confirms(faces[0]):
            confirmed = True  # a small or half-hidden face the mesh missed, where the body is
        main = faces[0] if confirmed else None
        if main is not None:
            self._last_face, self._last_face_t = main, t
        if reused is None and len(faces) == 1:
            self._last_detected = main
        anchor = main
        if anchor is None and t - self._last_face_t <= self.options.face_hold_s:
            # A hand in front of the mouth often hides the face; keep looking where it was.
            anchor = self._last_face
        hands = self._find_hands(rgb, anchor, t) if anchor is not None else []
        return replace(self._observation(rgb, t, faces, main, mouth, hands), body=body)

    def _read_body(
        self, rgb: np.ndarray, faces: list[Face], confirmed: bool, t: float
    ) -> Body | None:
        """The pose, on frames where the face alone may not show what happens.

        Those are frames whose face is small, unconfirmed, or lost for at most ``face_hold_s``
        (hidden by a hand, or a far face the detector misses now and then); a large face the
        mesh reads, and frames with nobody, cost nothing more.
        """
        o = self.options
        if o.pose_face_px <= 0:
            return None
        face = faces[0] if faces else None
        if face is None and t - self._last_face_t <= o.face_hold_s:
            face = self._last_face
        if face is None or (confirmed and face.width >= o.pose_face_px):
            return None
        if self._pose is None:
            self._pose = PoseReader()
        return self._pose.read(rgb)

    def _observation(
        self,
        rgb: np.ndarray,
        t: float,
        faces: list[Face],
        main: Face | None,
        mouth: Mouth | None,
        hands: list[Hand],
    ) -> FrameObservation:
        """What one frame showed, with the image quality of the main face (or the frame)."""
        luma, sharp = self._image_quality(rgb, main)
        return FrameObservation(
            t_s=t,
            faces=faces,
            confirmed=main is not None,
            hands=hands,
            mouth=mouth if main is not None else None,
            luma=luma,
            sharpness=sharp,
            width=rgb.shape[1],
            height=rgb.shape[0],
            turned_deg=(360 - 90 * self._turns) % 360,
        )
