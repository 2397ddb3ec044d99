"""The formats and rates a recording can be converted to (GET …/download): plain data, so the
API, the OpenAPI document and the repository can name them without loading the audio stack."""

from __future__ import annotations

CONTENT_TYPES = {"mp3": "audio/mpeg", "wav": "audio/wav", "ogg": "audio/ogg"}
FORMATS = tuple(CONTENT_TYPES)
SAMPLE_RATES = (8000, 16000, 22050, 44100, 48000)
