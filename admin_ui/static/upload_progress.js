// Streamlit's uploader shows a spinner, not progress, while it sends a file (it passes no
// progress callback to its XMLHttpRequest). This watches the browser's own upload progress
// of that request and shows it in the uploader: a bar, the percentage and the time left.
(() => {
  const texts = JSON.parse(document.getElementById("sesame-upload-texts").textContent);
  window.sesameUploadTexts = texts; // a rerun in another language brings new ones
  if (window.sesameUploadProgress) return;
  window.sesameUploadProgress = true;
  const open = XMLHttpRequest.prototype.open;
  const send = XMLHttpRequest.prototype.send;
  XMLHttpRequest.prototype.open = function (method, url, ...rest) {
    this.sesameUpload = String(method).toUpperCase() === "PUT" && /\/_stcore\/upload_file\//.test(url);
    return open.call(this, method, url, ...rest);
  };
  XMLHttpRequest.prototype.send = function (body) {
    if (this.sesameUpload) watch(this);
    return send.call(this, body);
  };

  function panel() {
    const uploader = document.querySelector(".st-key-upload_file");
    if (!uploader) return null;
    let box = uploader.querySelector(".sesame-upload-progress");
    if (!box) {
      box = document.createElement("div");
      box.className = "sesame-upload-progress";
      box.setAttribute("role", "status");
      // Elements, not markup: st.html's sanitizer drops a script holding a tag.
      const bar = document.createElement("progress");
      bar.max = 100;
      box.append(bar, document.createElement("span"));
      uploader.append(box);
    }
    return box;
  }

  function say(template, values) {
    return template.replace(/\{(\w+)\}/g, (_, name) => String(values[name]));
  }

  function watch(xhr) {
    const started = performance.now();
    xhr.upload.addEventListener("progress", (event) => {
      const box = panel();
      if (!box || !event.lengthComputable || !event.total) return;
      const texts = window.sesameUploadTexts;
      const percent = Math.floor((100 * event.loaded) / event.total);
      const elapsed = (performance.now() - started) / 1000;
      const left = event.loaded ? Math.ceil((elapsed * (event.total - event.loaded)) / event.loaded) : 0;
      box.hidden = false;
      box.querySelector("progress").value = percent;
      const text = percent >= 100 ? texts.saving : say(texts.progress, { percent, seconds: left });
      box.querySelector("span").textContent = text;
    });
    xhr.addEventListener("loadend", () => {
      const box = panel();
      if (box) box.hidden = true;
    });
  }
})();
