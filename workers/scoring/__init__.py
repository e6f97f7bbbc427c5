"""The score stage: frames -> MediaPipe detections -> events and quality -> a confidence."""
