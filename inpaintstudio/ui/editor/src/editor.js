// The mask editor: one canvas showing the photo (the server's display copy) with the mask over it.
// The mask lives here, at the display copy's size, and goes to the server only when asked for (a run, a
// mask download): the server never re-sends layers and the browser never re-exports them while editing.
// Messages from the server (a new photo, a mask, results, landmarks, a selection) are applied strictly in
// order, each after the previous one's images have decoded: nothing can race a half-loaded photo.
const MASK_RGB = [255, 0, 80];
const LANDMARK_RGB = "rgb(0, 200, 255)";
const HISTORY_DEPTH = 40;

function loadImage(src) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error("the editor could not decode an image from the server"));
    image.src = src;
  });
}

function isTyping(target) {
  const tag = target && target.tagName;
  return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable);
}

class InpaintEditor {
  constructor(root, options) {
    this.root = root;
    this.id = options.id;
    this.runButton = options.runButton || "";
    this.size = options.brush || 24;
    this.tool = "brush";
    this.opacity = options.opacity ?? 0.55;
    this.feather = 0;
    this.photo = null; // {image, key, w, h, full: [W, H]}
    this.mask = null; // Uint8Array w*h
    this.undoStack = [];
    this.redoStack = [];
    this.baseStack = []; // keys of earlier bases (use result as new base / undo)
    this.images = new Map(); // key -> decoded Image (bases and results this page has seen)
    this.results = []; // [{model, key}]
    this.shownResult = null;
    this.landmarks = null;
    this.showLandmarks = false;
    this.peeking = false;
    this.view = { s: 1, ox: 0, oy: 0, fitted: true };
    this.queue = Promise.resolve();
    this.seq = -1;
    this.build();
    this.bind();
  }

  // ------------------------------------------------------------------------------------------ DOM
  build() {
    const bar = (html) => {
      const div = document.createElement("div");
      div.className = "ie-bar";
      div.innerHTML = html;
      return div;
    };
    this.root.innerHTML = "";
    this.root.classList.add("ie");
    this.root.appendChild(bar(`
      <button type="button" data-tool="brush" title="Brush (B)">Brush</button>
      <button type="button" data-tool="eraser" title="Eraser (E)">Eraser</button>
      <button type="button" data-tool="select" title="Select: click or drag a box (S); Shift adds, Alt subtracts">Select</button>
      <button type="button" data-tool="pan" title="Pan (hold Space and drag with any tool)">Pan</button>
      <label title="Brush size in editor pixels ([ and ])">Size <input class="ie-size" type="range" min="1" max="200" value="${this.size}"><span class="ie-size-text">${this.size}</span></label>
      <button type="button" data-act="zoom-out" title="Zoom out (-)">−</button>
      <button type="button" data-act="zoom-in" title="Zoom in (+)">+</button>
      <button type="button" data-act="fit" title="Fit the photo (0)">Fit</button>
      <button type="button" data-act="undo" title="Undo the last stroke or mask operation (Ctrl+Z)">Undo</button>
      <button type="button" data-act="redo" title="Redo (Ctrl+Shift+Z)">Redo</button>
      <label title="Mask overlay opacity">Mask <input class="ie-opacity" type="range" min="0" max="100" value="${Math.round(this.opacity * 100)}"></label>
      <button type="button" data-act="peek" title="Hold (or hold \\) to see the original; after a run, the result">Original</button>
      <button type="button" data-act="landmarks" class="ie-landmarks" hidden title="Show or hide the 68 detected landmarks">Landmarks</button>
    `));
    const stage = document.createElement("div");
    stage.className = "ie-stage";
    this.canvas = document.createElement("canvas");
    this.canvas.className = "ie-canvas";
    this.canvas.tabIndex = 0;
    stage.appendChild(this.canvas);
    this.empty = document.createElement("div");
    this.empty.className = "ie-empty";
    this.empty.textContent = "Open a photo to start";
    stage.appendChild(this.empty);
    this.root.appendChild(stage);
    this.stage = stage;
    this.info = document.createElement("div");
    this.info.className = "ie-info";
    this.root.appendChild(this.info);
    this.maskCanvas = document.createElement("canvas");
    this.strokeCanvas = document.createElement("canvas");
    this.ctx = this.canvas.getContext("2d");
    this.setTool("brush");
  }

  bind() {
    this.root.querySelectorAll("[data-tool]").forEach((button) =>
      button.addEventListener("click", () => this.setTool(button.dataset.tool)));
    const act = (name, fn) => this.root.querySelector(`[data-act="${name}"]`).addEventListener("click", fn);
    act("zoom-in", () => this.zoomBy(1.25));
    act("zoom-out", () => this.zoomBy(0.8));
    act("fit", () => this.fit());
    act("undo", () => this.undo());
    act("redo", () => this.redo());
    act("landmarks", () => this.setLandmarks(!this.showLandmarks));
    const peek = this.root.querySelector('[data-act="peek"]');
    peek.addEventListener("pointerdown", () => this.setPeek(true));
    ["pointerup", "pointerleave"].forEach((type) => peek.addEventListener(type, () => this.setPeek(false)));
    const size = this.root.querySelector(".ie-size");
    size.addEventListener("input", () => this.setSize(Number(size.value)));
    const opacity = this.root.querySelector(".ie-opacity");
    opacity.addEventListener("input", () => { this.opacity = Number(opacity.value) / 100; this.render(); });

    this.canvas.addEventListener("pointerdown", (e) => this.pointerDown(e));
    this.canvas.addEventListener("pointermove", (e) => this.pointerMove(e));
    this.canvas.addEventListener("pointerup", (e) => this.pointerUp(e));
    this.canvas.addEventListener("pointercancel", (e) => this.pointerUp(e));
    this.canvas.addEventListener("wheel", (e) => {
      e.preventDefault();
      const p = this.canvasPoint(e);
      this.zoomBy(Math.exp(-e.deltaY / 400), p.x, p.y);
    }, { passive: false });
    this.canvas.addEventListener("contextmenu", (e) => e.preventDefault());
    document.addEventListener("keydown", (e) => this.keyDown(e));
    document.addEventListener("keyup", (e) => this.keyUp(e));
    new ResizeObserver(() => this.resize()).observe(this.stage);
  }

  get visible() {
    return this.root.offsetParent !== null;
  }

  setTool(tool) {
    this.tool = tool;
    this.root.querySelectorAll("[data-tool]").forEach((b) => b.classList.toggle("ie-on", b.dataset.tool === tool));
    this.canvas.style.cursor = tool === "pan" ? "grab" : "crosshair";
    this.updateInfo();
  }

  setSize(size) {
    this.size = Math.max(1, Math.min(200, Math.round(size)));
    this.root.querySelector(".ie-size").value = String(this.size);
    this.root.querySelector(".ie-size-text").textContent = String(this.size);
    this.updateInfo();
  }

  setPeek(on) {
    if (this.peeking === on) return;
    this.peeking = on;
    this.render();
  }

  setLandmarks(on) {
    this.showLandmarks = on && !!this.landmarks;
    this.root.querySelector(".ie-landmarks").classList.toggle("ie-on", this.showLandmarks);
    this.render();
  }

  // the feather preview: the overlay's alpha rises from the hole's edge inwards, as the run blends it
  setFeather(px) {
    this.feather = Math.max(0, Number(px) || 0);
    if (this.photo) this.drawMask();
    this.render();
  }

  updateInfo() {
    if (!this.photo) {
      this.info.textContent = "";
      return;
    }
    const [W, H] = this.photo.full;
    const holes = this.mask ? MaskOps.count(this.mask) : 0;
    const share = (100 * holes) / (this.photo.w * this.photo.h);
    this.info.textContent = `${W}×${H} px photo · zoom ${Math.round(this.view.s * 100 * W / this.photo.w)} % · ` +
      `${this.tool} ${this.tool === "brush" || this.tool === "eraser" ? this.size + " px " : ""}· mask ${share.toFixed(2)} %` +
      ` · [ ] size, wheel/+/−/0 zoom, Space-drag pan, Ctrl+Z/Ctrl+Shift+Z, hold \\ to compare, Ctrl+Enter runs`;
  }

  // ------------------------------------------------------------------------------------------ view
  resize() {
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(this.stage.clientWidth * dpr));
    const h = Math.max(1, Math.round(this.stage.clientHeight * dpr));
    if (this.canvas.width !== w || this.canvas.height !== h) {
      this.canvas.width = w;
      this.canvas.height = h;
    }
    if (this.view.fitted) this.fit();
    else this.render();
  }

  fit() {
    if (!this.photo) return this.render();
    const cw = this.canvas.width, ch = this.canvas.height;
    const s = Math.min(cw / this.photo.w, ch / this.photo.h);
    this.view = { s, ox: (cw - this.photo.w * s) / 2, oy: (ch - this.photo.h * s) / 2, fitted: true };
    this.render();
    this.updateInfo();
  }

  zoomBy(factor, cx, cy) {
    if (!this.photo) return;
    const x = cx ?? this.canvas.width / 2, y = cy ?? this.canvas.height / 2;
    const s = Math.max(0.02, Math.min(64, this.view.s * factor));
    const k = s / this.view.s;
    this.view = { s, ox: x - (x - this.view.ox) * k, oy: y - (y - this.view.oy) * k, fitted: false };
    this.render();
    this.updateInfo();
  }

  canvasPoint(e) {
    const rect = this.canvas.getBoundingClientRect();
    const sx = this.canvas.width / rect.width, sy = this.canvas.height / rect.height;
    return { x: (e.clientX - rect.left) * sx, y: (e.clientY - rect.top) * sy };
  }

  toPhoto(p) {
    return { x: (p.x - this.view.ox) / this.view.s, y: (p.y - this.view.oy) / this.view.s };
  }

  render() {
    const ctx = this.ctx;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#1e1e1e";
    ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    this.empty.style.display = this.photo ? "none" : "flex";
    if (!this.photo) return;
    const { s, ox, oy } = this.view;
    ctx.setTransform(s, 0, 0, s, ox, oy);
    const result = this.peeking && this.shownResult ? this.images.get(this.shownResult) : null;
    ctx.imageSmoothingEnabled = s < 1;
    ctx.drawImage(result || this.photo.image, 0, 0, this.photo.w, this.photo.h);
    if (!this.peeking && this.opacity > 0) {
      ctx.imageSmoothingEnabled = false; // crisp: every shown mask pixel is an editor pixel
      ctx.globalAlpha = this.opacity;
      ctx.drawImage(this.maskCanvas, 0, 0);
      ctx.globalAlpha = 1;
    }
    if (this.showLandmarks && this.landmarks && !this.peeking) {
      ctx.fillStyle = LANDMARK_RGB;
      const r = Math.max(1.5, 3 / s);
      for (const [x, y] of this.landmarks) {
        ctx.beginPath();
        ctx.arc(x, y, r, 0, 2 * Math.PI);
        ctx.fill();
      }
    }
    if (this.boxStart && this.boxEnd) {
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      ctx.strokeStyle = "#ffffff";
      ctx.setLineDash([6, 4]);
      ctx.lineWidth = 1.5;
      const a = this.boxStart, b = this.boxEnd;
      ctx.strokeRect(Math.min(a.x, b.x), Math.min(a.y, b.y), Math.abs(a.x - b.x), Math.abs(a.y - b.y));
      ctx.setLineDash([]);
    }
  }

  // ------------------------------------------------------------------------------------------ mask
  drawMask() {
    const { w, h } = this.photo;
    this.maskCanvas.width = w;
    this.maskCanvas.height = h;
    const mctx = this.maskCanvas.getContext("2d");
    const data = mctx.createImageData(w, h);
    const feather = this.feather > 1 ? this.feather * w / this.photo.full[0] : 0;
    if (feather) {
      const px = data.data;
      const dist = MaskOps.squaredDistance(this.mask, 0, w, h);
      for (let i = 0, j = 0; i < this.mask.length; i++, j += 4) {
        if (this.mask[i]) {
          px[j] = MASK_RGB[0];
          px[j + 1] = MASK_RGB[1];
          px[j + 2] = MASK_RGB[2];
          px[j + 3] = Math.round(255 * Math.min(1, Math.sqrt(dist[i]) / feather));
        }
      }
    } else {
      // one 32-bit write per pixel (RGBA bytes in memory order; little-endian)
      const words = new Uint32Array(data.data.buffer);
      const colour = (255 << 24) | (MASK_RGB[2] << 16) | (MASK_RGB[1] << 8) | MASK_RGB[0];
      for (let i = 0; i < this.mask.length; i++) if (this.mask[i]) words[i] = colour;
    }
    mctx.putImageData(data, 0, 0);
  }

  // a finished stroke: where the stroke canvas is over half opaque, the brush adds and the eraser removes
  strokeMask(erase) {
    const { w, h } = this.photo;
    const px = this.strokeCanvas.getContext("2d").getImageData(0, 0, w, h).data;
    const mask = this.mask.slice();
    for (let i = 0, j = 3; i < mask.length; i++, j += 4) {
      if (px[j] > 127) mask[i] = erase ? 0 : 1;
    }
    return mask;
  }

  remember() {
    this.undoStack.push(this.mask);
    if (this.undoStack.length > HISTORY_DEPTH) this.undoStack.shift();
    this.redoStack = [];
  }

  setMask(mask, record = true) {
    if (!this.photo) return;
    if (record) this.remember();
    this.mask = mask;
    this.drawMask();
    this.render();
    this.updateInfo();
  }

  undo() {
    if (!this.photo || !this.undoStack.length) return;
    this.redoStack.push(this.mask);
    this.setMask(this.undoStack.pop(), false);
  }

  redo() {
    if (!this.photo || !this.redoStack.length) return;
    this.undoStack.push(this.mask);
    this.setMask(this.redoStack.pop(), false);
  }

  // grow / shrink take photo pixels (what the slider says) and work at the editor copy's scale
  editorPx(photoPx) {
    return Math.max(1, Math.round((Number(photoPx) || 0) * this.photo.w / this.photo.full[0]));
  }

  grow(photoPx) {
    if (this.photo) this.setMask(MaskOps.grow(this.mask, this.photo.w, this.photo.h, this.editorPx(photoPx)));
  }

  shrink(photoPx) {
    if (this.photo) this.setMask(MaskOps.shrink(this.mask, this.photo.w, this.photo.h, this.editorPx(photoPx)));
  }

  invert() {
    if (this.photo) this.setMask(MaskOps.invert(this.mask));
  }

  clear() {
    if (this.photo) this.setMask(new Uint8Array(this.photo.w * this.photo.h));
  }

  // the mask as one PNG (white = hole) at the editor copy's size; "" without a photo
  exportMask() {
    if (!this.photo) return "";
    const { w, h } = this.photo;
    const out = document.createElement("canvas");
    out.width = w;
    out.height = h;
    const octx = out.getContext("2d");
    const data = octx.createImageData(w, h);
    const px = data.data;
    for (let i = 0, j = 0; i < this.mask.length; i++, j += 4) {
      const v = this.mask[i] ? 255 : 0;
      px[j] = v;
      px[j + 1] = v;
      px[j + 2] = v;
      px[j + 3] = 255;
    }
    octx.putImageData(data, 0, 0);
    return out.toDataURL("image/png");
  }

  // ------------------------------------------------------------------------------------------ pointer
  pointerDown(e) {
    if (!this.photo) return;
    this.canvas.focus({ preventScroll: true });
    this.canvas.setPointerCapture(e.pointerId);
    const p = this.canvasPoint(e);
    if (this.tool === "pan" || this.spaceHeld || e.button === 1) {
      this.drag = { kind: "pan", x: p.x, y: p.y, ox: this.view.ox, oy: this.view.oy };
      this.canvas.style.cursor = "grabbing";
    } else if (this.tool === "select") {
      this.drag = { kind: "select", mode: e.shiftKey ? "add" : e.altKey ? "subtract" : "replace" };
      this.boxStart = p;
      this.boxEnd = null;
    } else if (e.button === 0) {
      this.drag = { kind: "stroke", last: this.toPhoto(p), erase: this.tool === "eraser" };
      this.strokeCanvas.width = this.photo.w;
      this.strokeCanvas.height = this.photo.h;
      this.strokeSegment(this.drag.last, this.drag.last);
    }
  }

  pointerMove(e) {
    if (!this.drag) return;
    const p = this.canvasPoint(e);
    if (this.drag.kind === "pan") {
      this.view = { ...this.view, ox: this.drag.ox + p.x - this.drag.x, oy: this.drag.oy + p.y - this.drag.y, fitted: false };
      this.render();
    } else if (this.drag.kind === "select") {
      this.boxEnd = p;
      this.render();
    } else {
      const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [e];
      for (const event of events.length ? events : [e]) {
        const q = this.toPhoto(this.canvasPoint(event));
        this.strokeSegment(this.drag.last, q);
        this.drag.last = q;
      }
    }
  }

  pointerUp(e) {
    const drag = this.drag;
    this.drag = null;
    if (!drag) return;
    if (drag.kind === "pan") {
      this.canvas.style.cursor = this.tool === "pan" ? "grab" : "crosshair";
    } else if (drag.kind === "select") {
      this.finishSelect(drag.mode, this.canvasPoint(e));
    } else {
      this.setMask(this.strokeMask(drag.erase));
    }
  }

  // a stroke is drawn twice: on the visible mask (at once) and on the stroke canvas, which decides the
  // stroke's pixels when it ends (the visible mask's alpha carries the feather preview)
  strokeSegment(a, b) {
    for (const canvas of [this.maskCanvas, this.strokeCanvas]) {
      const c = canvas.getContext("2d");
      c.globalCompositeOperation = canvas === this.maskCanvas && this.drag.erase ? "destination-out" : "source-over";
      c.strokeStyle = `rgb(${MASK_RGB.join(",")})`;
      c.lineWidth = this.size;
      c.lineCap = "round";
      c.lineJoin = "round";
      c.beginPath();
      c.moveTo(a.x, a.y);
      c.lineTo(b.x + (a.x === b.x && a.y === b.y ? 0.01 : 0), b.y);
      c.stroke();
      c.globalCompositeOperation = "source-over";
    }
    this.render();
  }

  finishSelect(mode, end) {
    const start = this.boxStart;
    this.boxStart = this.boxEnd = null;
    this.render();
    if (!start || !this.onSelect) return;
    const [W, H] = this.photo.full;
    const toFull = (p) => {
      const q = this.toPhoto(p);
      return [
        Math.max(0, Math.min(W - 1, Math.floor(q.x * W / this.photo.w))),
        Math.max(0, Math.min(H - 1, Math.floor(q.y * H / this.photo.h))),
      ];
    };
    const a = toFull(start), b = toFull(end);
    const moved = Math.hypot(end.x - start.x, end.y - start.y) > 4;
    const event = moved
      ? { kind: "box", box: [Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.max(a[0], b[0]), Math.max(a[1], b[1])], mode }
      : { kind: "point", point: a, positive: true, mode };
    this.pendingSelectMode = mode;
    this.onSelect(event);
  }

  // ------------------------------------------------------------------------------------------ keys
  keyDown(e) {
    if (!this.visible || isTyping(e.target)) return;
    const ctrl = e.ctrlKey || e.metaKey;
    const key = e.key;
    if (ctrl && key === "Enter") {
      const run = this.runButton && document.getElementById(this.runButton);
      if (run) run.click();
    } else if (ctrl && (key === "z" || key === "Z")) {
      if (e.shiftKey) this.redo();
      else this.undo();
    } else if (ctrl && (key === "y" || key === "Y")) {
      this.redo();
    } else if (ctrl) {
      return;
    } else if (key === "[") this.setSize(this.size - Math.max(1, Math.round(this.size * 0.15)));
    else if (key === "]") this.setSize(this.size + Math.max(1, Math.round(this.size * 0.15)));
    else if (key === "+" || key === "=") this.zoomBy(1.25);
    else if (key === "-" || key === "_") this.zoomBy(0.8);
    else if (key === "0" || key === "f") this.fit();
    else if (key === "b") this.setTool("brush");
    else if (key === "e") this.setTool("eraser");
    else if (key === "s") this.setTool("select");
    else if (key === "h") this.setTool("pan");
    else if (key === "\\") this.setPeek(true);
    else if (key === " ") this.spaceHeld = true;
    else return;
    e.preventDefault();
  }

  keyUp(e) {
    if (e.key === "\\") this.setPeek(false);
    if (e.key === " ") this.spaceHeld = false;
  }

  // ------------------------------------------------------------------------------------------ server
  receive(message) {
    if (!message || typeof message !== "object" || message.seq === undefined || message.seq === this.seq) return;
    this.seq = message.seq;
    this.queue = this.queue.then(() => this.apply(message)).catch((error) => {
      this.info.textContent = String(error.message || error);
    });
  }

  async image(key, src) {
    if (src) this.images.set(key, await loadImage(src));
    const image = this.images.get(key);
    if (!image) throw new Error("the editor lost an image: open the photo again");
    if (this.images.size > 24) this.images.delete(this.images.keys().next().value);
    return image;
  }

  async decodeMask(src) {
    const image = await loadImage(src);
    const { w, h } = this.photo;
    const scratch = document.createElement("canvas");
    scratch.width = w;
    scratch.height = h;
    const sctx = scratch.getContext("2d");
    sctx.imageSmoothingEnabled = false;
    sctx.drawImage(image, 0, 0, w, h);
    const px = sctx.getImageData(0, 0, w, h).data;
    const mask = new Uint8Array(w * h);
    for (let i = 0, j = 0; i < mask.length; i++, j += 4) mask[i] = px[j] > 127 ? 1 : 0;
    return mask;
  }

  async apply(message) {
    if (message.photo === false) {
      this.photo = this.mask = null;
      this.results = [];
      this.render();
      this.updateInfo();
      return;
    }
    for (const result of message.results || []) await this.image(result.key, result.src);
    if (message.results) {
      this.results = message.results.map(({ model, key }) => ({ model, key }));
      this.shownResult = this.results.length ? this.results[0].key : null;
      this.root.querySelector('[data-act="peek"]').textContent = this.results.length ? "Result" : "Original";
    }
    if (message.photo) {
      const p = message.photo;
      const current = this.photo && this.photo.key;
      if (p.key !== current) {
        const image = await this.image(p.key, p.src);
        if (message.base === "push" && current) this.baseStack.push(current);
        if (message.base === "pop") this.baseStack.pop();
        if (message.base === "reset") this.baseStack = [];
        this.photo = { image, key: p.key, w: p.width, h: p.height, full: p.full };
        this.mask = new Uint8Array(p.width * p.height);
        this.undoStack = [];
        this.redoStack = [];
        if (!message.results) {
          this.results = [];
          this.shownResult = null;
          this.root.querySelector('[data-act="peek"]').textContent = "Original";
        }
        this.drawMask();
        this.view.fitted = true;
        this.fit();
      }
    }
    if (message.landmarks !== undefined) {
      this.landmarks = message.landmarks;
      this.root.querySelector(".ie-landmarks").hidden = !this.landmarks;
      this.setLandmarks(this.showLandmarks && !!this.landmarks);
    }
    if (message.mask && this.photo) {
      const mask = await this.decodeMask(message.mask);
      this.setMask(MaskOps.combine(this.mask, mask, message.combine || "replace"));
    }
    this.render();
    this.updateInfo();
  }

  // "use result as new base" and "undo" answer at once from images this page already holds; the server's
  // reply then names the same base and changes nothing
  useResult(model) {
    const result = this.results.find((r) => r.model === model) || this.results[0];
    if (!result || !this.photo) return;
    this.baseStack.push(this.photo.key);
    this.swapBase(result.key);
  }

  undoBase() {
    if (!this.photo || !this.baseStack.length) return;
    this.swapBase(this.baseStack.pop());
  }

  swapBase(key) {
    const image = this.images.get(key);
    if (!image) return;
    this.photo = { ...this.photo, image, key };
    this.mask = new Uint8Array(this.photo.w * this.photo.h);
    this.undoStack = [];
    this.redoStack = [];
    this.results = [];
    this.shownResult = null;
    this.drawMask();
    this.render();
    this.updateInfo();
  }
}
