// The SelfCascade page: a form that submits jobs, a live view of the running job (progress and stage previews over
// Server-Sent Events) and a gallery of past results. No framework; the DOM ids are in index.html.
import * as api from "./api.js";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

const form = $<HTMLFormElement>("gen-form");
const modelSelect = $<HTMLSelectElement>("model");
const promptInput = $<HTMLTextAreaElement>("prompt");
const negativeInput = $<HTMLTextAreaElement>("negative");
const seedInput = $<HTMLInputElement>("seed");
const widthInput = $<HTMLInputElement>("width");
const heightInput = $<HTMLInputElement>("height");
const methodSelect = $<HTMLSelectElement>("method");
const stepsInput = $<HTMLInputElement>("steps");
const guidanceInput = $<HTMLInputElement>("guidance");
const pivotInput = $<HTMLInputElement>("pivot");
const pivotValue = $<HTMLOutputElement>("pivot-value");
const generateButton = $<HTMLButtonElement>("generate");
const cancelButton = $<HTMLButtonElement>("cancel");
const reuseButton = $<HTMLButtonElement>("seed-reuse");
const statusBadge = $("job-status");
const jobIdLabel = $("job-id");
const progressBar = $("progress");
const progressFill = $("progress-fill");
const progressText = $("progress-text");
const stagesBox = $("stages");
const resultFigure = $("result");
const resultImg = $<HTMLImageElement>("result-img");
const resultCaption = $("result-caption");
const gallery = $("gallery");
const galleryEmpty = $("gallery-empty");
const viewer = $<HTMLDialogElement>("viewer");

let models: api.ModelInfo[] = [];
const schedulerSelect = $<HTMLSelectElement>("scheduler");
let current: { id: string; source?: EventSource; stageCount: number; finished: boolean } | undefined;
let lastSeed: number | undefined;
let viewed: api.JobInfo | undefined;

// ---- errors ---------------------------------------------------------------------------------------------------

function showError(message: string) {
  $("error-text").textContent = message;
  $("error").hidden = false;
}
function clearError() { $("error").hidden = true; }
$("error-close").addEventListener("click", clearError);

async function guarded(action: () => Promise<void>) {
  try { await action(); } catch (e) { showError(e instanceof Error ? e.message : String(e)); }
}

// ---- models and sizes -----------------------------------------------------------------------------------------

function nativeSize(): number {
  return models.find(m => m.name === modelSelect.value)?.nativeSize ?? 512;
}

/** Presets relative to the model's native size: native, the cascade's 2x and 4x per side, and two aspect ratios. */
function renderPresets() {
  const n = nativeSize();
  const presets: [string, number, number][] = [
    [`${n}² native`, n, n], [`${2 * n}² (2×)`, 2 * n, 2 * n], [`${4 * n}² (4×)`, 4 * n, 4 * n],
    [`${2 * n}×${n}`, 2 * n, n], [`${n}×${2 * n}`, n, 2 * n],
  ];
  const box = $("size-presets");
  box.replaceChildren(...presets.map(([label, w, h]) => {
    const b = document.createElement("button");
    b.type = "button"; b.className = "chip"; b.textContent = label;
    b.dataset.width = String(w); b.dataset.height = String(h);
    b.addEventListener("click", () => { widthInput.value = String(w); heightInput.value = String(h); markPreset(); });
    return b;
  }));
  $("native-hint").textContent = `native ${n}`;
  markPreset();
}
function markPreset() {
  for (const b of $("size-presets").querySelectorAll<HTMLButtonElement>(".chip"))
    b.classList.toggle("active", b.dataset.width === widthInput.value && b.dataset.height === heightInput.value);
}
widthInput.addEventListener("input", markPreset);
heightInput.addEventListener("input", markPreset);
modelSelect.addEventListener("change", () => {
  const n = nativeSize();
  widthInput.value = String(2 * n); heightInput.value = String(2 * n);
  renderPresets();
  applyModelDefaults();
});
/** The model's defaults as placeholders: an empty field means "the model's default". */
function applyModelDefaults() {
  const m = models.find(x => x.name === modelSelect.value);
  stepsInput.placeholder = m?.defaultSteps !== undefined ? `${m.defaultSteps} (default)` : "model default";
  guidanceInput.placeholder = m?.defaultGuidance !== undefined ? `${m.defaultGuidance} (default)` : "model default";
  if (m?.defaultPivotStrength !== undefined && !pivotInput.dataset.touched) {
    pivotInput.value = String(m.defaultPivotStrength);
    pivotValue.textContent = m.defaultPivotStrength.toFixed(2);
  }
}
pivotInput.addEventListener("input", () => { pivotInput.dataset.touched = "1"; pivotValue.textContent = (+pivotInput.value).toFixed(2); });

async function loadModels() {
  const state = $("server-state");
  try {
    const list = await api.listModels();
    models = list.models;
    modelSelect.replaceChildren(...models.map(m => new Option(`${m.name} · ${m.family} · ${m.nativeSize}px`, m.name, m.name === list.defaultModel, m.name === list.defaultModel)));
    schedulerSelect.replaceChildren(new Option("model default", ""), ...list.schedulers.map(n => new Option(n, n)));
    state.textContent = "server ready"; state.className = "server-state ok";
  } catch (e) {
    state.textContent = "server unreachable"; state.className = "server-state bad";
    throw e;
  }
  applyModelDefaults();
  const n = nativeSize();
  if (!widthInput.value) widthInput.value = String(2 * n);
  if (!heightInput.value) heightInput.value = String(2 * n);
  renderPresets();
}

// ---- seed -----------------------------------------------------------------------------------------------------

$("seed-random").addEventListener("click", () => { seedInput.value = String(Math.floor(Math.random() * 2 ** 31)); });
reuseButton.addEventListener("click", () => { if (lastSeed !== undefined) seedInput.value = String(lastSeed); });
function rememberSeed(seed: number | undefined) {
  if (seed === undefined) return;
  lastSeed = seed;
  reuseButton.disabled = false;
  reuseButton.title = `Use seed ${seed} (the last result's)`;
}

// ---- submitting -----------------------------------------------------------------------------------------------

function readParams(): api.GenerateBody {
  const optionalNumber = (input: HTMLInputElement) => (input.value.trim() === "" ? undefined : Number(input.value));
  return {
    model: modelSelect.value || undefined,
    prompt: promptInput.value,
    negative_prompt: negativeInput.value.trim() || undefined,
    seed: optionalNumber(seedInput),
    width: optionalNumber(widthInput),
    height: optionalNumber(heightInput),
    method: methodSelect.value === "auto" ? undefined : methodSelect.value,
    scheduler: schedulerSelect.value || undefined,
    steps: optionalNumber(stepsInput),
    guidance: optionalNumber(guidanceInput),
    pivot_strength: Number(pivotInput.value),
  };
}

form.addEventListener("submit", ev => {
  ev.preventDefault();
  void guarded(async () => {
    clearError();
    const params = readParams();
    if (!params.prompt.trim()) { showError("Write a prompt first."); promptInput.focus(); return; }
    generateButton.disabled = true;
    try { watch((await api.submitGenerate(params)).id); } finally { generateButton.disabled = false; }
  });
});

cancelButton.addEventListener("click", () => {
  if (!current) return;
  const id = current.id;
  cancelButton.disabled = true;
  void guarded(() => api.cancelJob(id));
});

// ---- the running job ------------------------------------------------------------------------------------------

function setStatus(status: string) {
  statusBadge.textContent = status;
  statusBadge.className = `status-badge ${status}`;
  cancelButton.disabled = !(status === "queued" || status === "running");
}

function setProgress(fraction: number, text: string) {
  const pct = Math.max(0, Math.min(100, Math.round(fraction * 100)));
  progressFill.style.width = `${pct}%`;
  progressBar.setAttribute("aria-valuenow", String(pct));
  progressText.textContent = text;
}

/** The card of stage i (0-based), created with placeholders for every stage up to the plan's count. */
function stageCard(index: number): HTMLElement {
  while (stagesBox.children.length <= index) {
    const i = stagesBox.children.length;
    const fig = document.createElement("figure");
    fig.className = "stage"; fig.dataset.stage = String(i);
    const ph = document.createElement("div");
    ph.className = "placeholder"; ph.textContent = "waiting";
    const cap = document.createElement("figcaption");
    cap.textContent = `stage ${i + 1}`;
    fig.append(ph, cap);
    stagesBox.append(fig);
  }
  return stagesBox.children[index] as HTMLElement;
}

function setStageImage(index: number, src: string, decoded: boolean, caption?: string) {
  const card = stageCard(index);
  let img = card.querySelector("img");
  if (!img) {
    img = document.createElement("img");
    img.alt = `stage ${index + 1}`;
    card.querySelector(".placeholder")?.replaceWith(img);
  }
  if (decoded || !card.classList.contains("decoded")) img.src = src;
  if (decoded) card.classList.add("decoded");
  if (caption) card.querySelector("figcaption")!.textContent = caption;
}

const finalTypes = ["done", "failed", "cancelled", "interrupted"];

function watch(id: string) {
  current?.source?.close();
  current = { id, stageCount: 0, finished: false };
  jobIdLabel.textContent = id.length > 12 ? id.slice(0, 8) : id;
  jobIdLabel.title = id;
  jobIdLabel.dataset.job = id;
  stagesBox.replaceChildren();
  resultFigure.hidden = true;
  setStatus("queued");
  setProgress(0, "Queued…");
  const source = new EventSource(api.eventsUrl(id));
  current.source = source;
  const job = current;
  for (const type of ["queued", "started", "progress", "stage", "preview", ...finalTypes]) {
    source.addEventListener(type, ev => {
      if (current !== job || job.finished) return;
      let data: Record<string, unknown> = {};
      try { data = JSON.parse((ev as MessageEvent).data || "{}"); } catch { /* keep empty */ }
      onEvent(job, type, data);
    });
  }
  source.onerror = () => {
    if (job.finished || current !== job) return;
    // The stream broke before the job ended (server restarted, network): show the job's stored state instead of
    // leaving the page waiting.
    source.close();
    void guarded(async () => finish(job, await api.getJob(job.id)));
  };
}

const num = (v: unknown) => (typeof v === "number" ? v : undefined);

function onEvent(job: NonNullable<typeof current>, type: string, d: Record<string, unknown>) {
  const stage = num(d.stage) ?? 0;
  const stageCount = num(d.stage_count);
  if (stageCount !== undefined && stageCount > job.stageCount) {
    job.stageCount = stageCount;
    stageCard(stageCount - 1);
  }
  switch (type) {
    case "queued": setStatus("queued"); setProgress(0, "Queued…"); break;
    case "started": setStatus("running"); setProgress(0, "Starting…"); break;
    case "progress": {
      setStatus("running");
      const step = num(d.step) ?? 0, total = num(d.total_steps) ?? 0;
      const count = Math.max(1, job.stageCount);
      const fraction = num(d.fraction) ?? (stage + (total ? step / total : 0)) / count;
      const phase = typeof d.phase === "string" ? d.phase : "denoise";
      setProgress(fraction, `${count > 1 ? `stage ${stage + 1}/${count} · ` : ""}${phase}${total ? ` ${step}/${total}` : ""}`);
      break;
    }
    case "preview": { // a cheap latent-to-RGB preview of the stage being denoised
      if (typeof d.image === "string") setStageImage(stage, d.image, false, `stage ${stage + 1} · step ${num(d.step) ?? "?"}`);
      break;
    }
    case "stage": { // an earlier stage finished: its decoded image
      const src = typeof d.image === "string" ? d.image : typeof d.url === "string" ? api.withKey(d.url) : undefined;
      if (src) setStageImage(stage, src, true, `stage ${stage + 1} · ${num(d.width) ?? "?"}×${num(d.height) ?? "?"}`);
      break;
    }
    default:
      if (finalTypes.includes(type)) {
        if (d.job) finish(job, api.toJob(d.job));
        else void guarded(async () => finish(job, await api.getJob(job.id)));
      }
  }
}

function finish(job: NonNullable<typeof current>, info: api.JobInfo) {
  if (job.finished) return;
  job.finished = true;
  job.source?.close();
  setStatus(info.status);
  if (info.status === "done") {
    setProgress(1, `Done: ${info.width ?? "?"}×${info.height ?? "?"}, seed ${info.seed ?? "?"}${total(info)}`);
    resultImg.src = info.resultUrl ?? "";
    resultCaption.textContent = describe(info);
    resultFigure.hidden = false;
    rememberSeed(info.seed);
    // The last stage's image is the result; the stage row then shows every stage of the plan, decoded.
    const last = Math.max(job.stageCount, info.stages.length) - 1;
    if (last >= 0 && info.resultUrl) setStageImage(last, info.resultUrl, true, `stage ${last + 1} · ${info.width}×${info.height} · result`);
    for (const s of info.stages) {
      const cap = stagesBox.children[s.index]?.querySelector("figcaption");
      if (cap && s.seconds !== undefined) cap.textContent = `stage ${s.index + 1} · ${s.width}×${s.height} · ${s.seconds.toFixed(1)} s`;
    }
  } else if (info.status === "failed") {
    setProgress(0, "Failed.");
    showError(`Job ${info.id} failed: ${info.error ?? "no reason given"}`);
  } else {
    const why = info.error ? info.error.replace(/^cancelled\s*/i, "") : "";
    progressText.textContent = info.status === "cancelled" ? `Cancelled${why ? ` ${why}` : ""}.` : `Ended: ${info.status}${why ? ` (${why})` : ""}.`;
  }
  void guarded(refreshGallery);
}

function total(j: api.JobInfo): string {
  return j.totalSeconds !== undefined ? `, ${j.totalSeconds.toFixed(1)} s` : "";
}

// ---- gallery --------------------------------------------------------------------------------------------------

function describe(j: api.JobInfo): string {
  const p = j.params;
  const parts = [`${j.width ?? p.width ?? "?"}×${j.height ?? p.height ?? "?"}`, `seed ${j.seed ?? "?"}`];
  if (j.kind === "upscale") parts.unshift(`upscale ×${p.scale ?? "?"}`);
  if (p.method) parts.push(String(p.method));
  if (p.steps) parts.push(`${p.steps} steps`);
  if (p.guidance !== undefined && p.guidance !== null) parts.push(`cfg ${p.guidance}`);
  if (p.pivot_strength !== undefined && p.pivot_strength !== null) parts.push(`pivot ${p.pivot_strength}`);
  if (j.stages.length > 1) parts.push(`${j.stages.length} stages`);
  return parts.join(" · ");
}

function promptOf(j: api.JobInfo): string {
  const p = j.params.prompt;
  return typeof p === "string" && p ? p : j.kind === "upscale" ? "(upscale, no prompt)" : "(no prompt)";
}

async function refreshGallery() {
  const jobs = await api.listJobs();
  const finished = jobs.filter(j => !["queued", "running"].includes(j.status));
  galleryEmpty.hidden = finished.length > 0;
  gallery.replaceChildren(...finished.map(card));
}

function card(j: api.JobInfo): HTMLElement {
  const el = document.createElement("article");
  el.className = "card"; el.dataset.job = j.id; el.dataset.status = j.status;
  let thumb: HTMLElement;
  if (j.resultUrl) {
    const b = document.createElement("img");
    b.className = "thumb"; b.src = j.resultUrl; b.alt = promptOf(j); b.loading = "lazy"; b.title = "Open";
    b.addEventListener("click", () => openViewer(j));
    thumb = b;
  } else {
    thumb = document.createElement("div");
    thumb.className = "thumb noimg"; thumb.textContent = j.status;
  }
  const meta = document.createElement("div");
  meta.className = "meta";
  const prompt = document.createElement("div");
  prompt.className = "prompt"; prompt.textContent = promptOf(j); prompt.title = promptOf(j);
  const sub = document.createElement("div");
  sub.className = "sub"; sub.textContent = describe(j);
  const badge = document.createElement("span");
  badge.className = `status-badge ${j.status}`; badge.textContent = j.status;
  if (j.error) badge.title = j.error;
  meta.append(prompt, sub, badge);
  const actions = document.createElement("div");
  actions.className = "card-actions";
  if (j.status === "done") {
    actions.append(
      button("Reuse", "reuse", () => reuse(j)),
      button("Upscale this", "upscale", () => void guarded(() => upscale(j))),
    );
  }
  el.append(thumb, meta, actions);
  return el;
}

function button(text: string, action: string, onClick: () => void): HTMLButtonElement {
  const b = document.createElement("button");
  b.type = "button"; b.className = "ghost"; b.textContent = text; b.dataset.action = action;
  b.addEventListener("click", onClick);
  return b;
}

/** Put a past job's parameters (and seed) back into the form. */
function reuse(j: api.JobInfo) {
  const p = j.params;
  const set = (input: HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement, v: unknown) => { if (v !== undefined && v !== null) input.value = String(v); };
  set(promptInput, p.prompt); set(negativeInput, p.negative_prompt ?? "");
  set(seedInput, j.seed ?? p.seed); set(widthInput, j.width ?? p.width); set(heightInput, j.height ?? p.height);
  set(stepsInput, p.steps ?? ""); set(guidanceInput, p.guidance ?? "");
  set(methodSelect, p.method ?? "auto"); set(schedulerSelect, p.scheduler ?? "");
  if (typeof p.pivot_strength === "number") {
    pivotInput.value = String(p.pivot_strength); pivotValue.textContent = p.pivot_strength.toFixed(2); pivotInput.dataset.touched = "1";
  }
  if (models.some(m => m.name === j.model)) modelSelect.value = j.model;
  renderPresets();
  rememberSeed(j.seed);
  window.scrollTo({ top: 0, behavior: "smooth" });
}

/** "Upscale this": a new job that upscales a finished job's image 2x per side with its prompt, seed, steps and guidance. */
async function upscale(j: api.JobInfo) {
  clearError();
  const p = j.params;
  const job = await api.submitUpscale({
    model: j.model || undefined,
    job_id: j.id,
    scale: 2,
    prompt: typeof p.prompt === "string" ? p.prompt : undefined,
    negative_prompt: typeof p.negative_prompt === "string" ? p.negative_prompt : undefined,
    seed: j.seed,
    steps: typeof p.steps === "number" ? p.steps : undefined,
    guidance: typeof p.guidance === "number" ? p.guidance : undefined,
    pivot_strength: Number(pivotInput.value),
  });
  if (viewer.open) viewer.close();
  watch(job.id);
  window.scrollTo({ top: 0, behavior: "smooth" });
}

function openViewer(j: api.JobInfo) {
  viewed = j;
  $<HTMLImageElement>("viewer-img").src = j.resultUrl ?? "";
  const dl = $<HTMLAnchorElement>("viewer-download");
  dl.href = j.resultUrl ?? "#"; dl.download = `selfcascade-${j.id}.png`;
  const rows: [string, unknown][] = [
    ["job", j.id], ["status", j.status], ["kind", j.kind], ["size", `${j.width ?? "?"}×${j.height ?? "?"}`], ["seed", j.seed],
    ...Object.entries(j.params).filter(([k]) => !["seed", "width", "height"].includes(k)),
  ];
  if (j.stages.length) rows.push(["stages", j.stages.map(s => `${s.width}×${s.height}${s.seconds !== undefined ? ` (${s.seconds.toFixed(1)} s)` : ""}`).join(" → ")]);
  if (j.createdAt) rows.push(["created", new Date(j.createdAt).toLocaleString()]);
  $("viewer-params").replaceChildren(...rows.filter(([, v]) => v !== undefined && v !== null && v !== "").flatMap(([k, v]) => {
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); dd.textContent = typeof v === "object" ? JSON.stringify(v) : String(v);
    dd.dataset.param = k;
    return [dt, dd];
  }));
  viewer.showModal();
}
$("viewer-reuse").addEventListener("click", () => { if (viewed) { reuse(viewed); viewer.close(); } });
$("viewer-upscale").addEventListener("click", () => { if (viewed) void guarded(() => upscale(viewed!)); });
$("refresh").addEventListener("click", () => void guarded(refreshGallery));

// ---- start ----------------------------------------------------------------------------------------------------

void guarded(async () => {
  await loadModels();
  await refreshGallery();
  // A job already running (submitted before this page was opened, or by another tab) is followed like one's own.
  const q = await api.queue();
  if (q.running) watch(q.running.id);
  document.body.dataset.ready = "true";
});
