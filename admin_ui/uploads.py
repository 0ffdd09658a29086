"""What the Share page adds to Streamlit's file uploader: a large drop zone that says what to
do in the owner's language, and the upload's progress (``static/upload_progress.js``)."""

from __future__ import annotations

import json
from pathlib import Path

import streamlit as st

from admin_ui.language import _

SCRIPT = Path(__file__).with_name("static") / "upload_progress.js"

STYLE = """
<style>
.st-key-{key} [data-testid=stFileUploaderDropzone] {{
  min-height: 7rem; border: 2px dashed rgba(49, 51, 63, 0.35); flex-wrap: wrap;
  justify-content: center; gap: 0.5rem;
}}
.st-key-{key} [data-testid=stFileUploaderDropzoneInstructions] {{ display: none }}
.st-key-{key} [data-testid=stFileUploaderDropzone]::before {{
  content: {drop}; width: 100%; text-align: center;
}}
/* Streamlit's button says "Upload" in English: it says the owner's word instead. */
.st-key-{key} [data-testid=stFileUploaderDropzone] button p {{ display: none }}
.st-key-{key} [data-testid=stFileUploaderDropzone] button:has(p)::after {{ content: {browse} }}
.st-key-{key} [data-testid=stFileChipName] + div {{ display: none }}  /* its own "4.0MB" */
.sesame-upload-progress {{ display: flex; flex-direction: column; gap: 0.25rem; }}
.sesame-upload-progress[hidden] {{ display: none }}
.sesame-upload-progress progress {{ width: 100%; height: 1rem; }}
</style>
"""


def decorate(key: str) -> None:
    """Styles the uploader keyed ``key`` and shows the progress of what it sends."""
    drop = json.dumps(_("Drop a file here, or"), ensure_ascii=False)
    browse = json.dumps(_("choose one"), ensure_ascii=False)
    st.html(STYLE.format(key=key, drop=drop, browse=browse))
    texts = {
        "progress": _("Uploading… {percent} % · about {seconds} s left"),
        "saving": _("Uploaded, saving…"),
    }
    data = json.dumps(texts, ensure_ascii=False).replace("<", "\\u003c")
    st.html(
        f'<script type="application/json" id="sesame-upload-texts">{data}</script>'
        f"<script>{SCRIPT.read_text()}</script>",
        unsafe_allow_javascript=True,
    )
