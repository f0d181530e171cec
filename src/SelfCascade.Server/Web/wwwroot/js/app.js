// The SelfCascade page: a form that submits jobs, a live view of the running job (progress and stage previews over
// Server-Sent Events) and a gallery of past results. No framework; the DOM ids are in index.html.
import * as api from "./api.js";
const $ = (id) => document.getElementById(id);
const form = $("gen-form");
const modelSelect = $("model");
const promptInput = $("prompt");
const negativeInput = $("negative");
const seedInput = $("seed");
const widthInput = $("width");
const heightInput = $("height");
const methodSelect = $("method");
const stepsInput = $("steps");
const guidanceInput = $("guidance");
const pivotInput = $("pivot");
const pivotValue = $("pivot-value");
const generateButton = $("generate");
const cancelButton = $("cancel");
const reuseButton = $("seed-reuse");
const statusBadge = $("job-status");
const jobIdLabel = $("job-id");
const progressBar = $("progress");
const progressFill = $("progress-fill");
const progressText = $("progress-text");
const stagesBox = $("stages");
const resultFigure = $("result");
const resultImg = $("result-img");
const resultCaption = $("result-caption");
const gallery = $("gallery");
const galleryEmpty = $("gallery-empty");
const viewer = $("viewer");
let models = [];
let current;
let lastSeed;
let viewed;
// ---- errors ---------------------------------------------------------------------------------------------------
function showError(message) {
    $("error-text").textContent = message;
    $("error").hidden = false;
}
function clearError() { $("error").hidden = true; }
$("error-close").addEventListener("click", clearError);
async function guarded(action) {
    try {
        await action();
    }
    catch (e) {
        showError(e instanceof Error ? e.message : String(e));
    }
}
// ---- models and sizes -----------------------------------------------------------------------------------------
function nativeSize() {
    return models.find(m => m.name === modelSelect.value)?.nativeSize ?? 512;
}
/** Presets relative to the model's native size: native, the cascade's 2x and 4x per side, and two aspect ratios. */
function renderPresets() {
    const n = nativeSize();
    const presets = [
        [`${n}² native`, n, n], [`${2 * n}² (2×)`, 2 * n, 2 * n], [`${4 * n}² (4×)`, 4 * n, 4 * n],
        [`${2 * n}×${n}`, 2 * n, n], [`${n}×${2 * n}`, n, 2 * n],
    ];
    const box = $("size-presets");
    box.replaceChildren(...presets.map(([label, w, h]) => {
        const b = document.createElement("button");
        b.type = "button";
        b.className = "chip";
        b.textContent = label;
        b.dataset.width = String(w);
        b.dataset.height = String(h);
        b.addEventListener("click", () => { widthInput.value = String(w); heightInput.value = String(h); markPreset(); });
        return b;
    }));
    $("native-hint").textContent = `native ${n}px`;
    markPreset();
}
function markPreset() {
    for (const b of $("size-presets").querySelectorAll(".chip"))
        b.classList.toggle("active", b.dataset.width === widthInput.value && b.dataset.height === heightInput.value);
}
widthInput.addEventListener("input", markPreset);
heightInput.addEventListener("input", markPreset);
modelSelect.addEventListener("change", () => {
    const n = nativeSize();
    widthInput.value = String(2 * n);
    heightInput.value = String(2 * n);
    renderPresets();
});
pivotInput.addEventListener("input", () => { pivotValue.textContent = (+pivotInput.value).toFixed(2); });
async function loadModels() {
    const state = $("server-state");
    try {
        models = await api.listModels();
        state.textContent = "server ready";
        state.className = "server-state ok";
    }
    catch (e) {
        state.textContent = "server unreachable";
        state.className = "server-state bad";
        throw e;
    }
    modelSelect.replaceChildren(...models.map(m => new Option(`${m.name} (${m.nativeSize}px)`, m.name, m.isDefault, m.isDefault)));
    const n = nativeSize();
    if (!widthInput.value)
        widthInput.value = String(2 * n);
    if (!heightInput.value)
        heightInput.value = String(2 * n);
    renderPresets();
}
// ---- seed -----------------------------------------------------------------------------------------------------
$("seed-random").addEventListener("click", () => { seedInput.value = String(Math.floor(Math.random() * 2 ** 31)); });
reuseButton.addEventListener("click", () => { if (lastSeed !== undefined)
    seedInput.value = String(lastSeed); });
function rememberSeed(seed) {
    if (seed === undefined)
        return;
    lastSeed = seed;
    reuseButton.disabled = false;
    reuseButton.title = `Use seed ${seed} (the last result's)`;
}
// ---- submitting -----------------------------------------------------------------------------------------------
function readParams() {
    const optionalNumber = (input) => (input.value.trim() === "" ? undefined : Number(input.value));
    return {
        model: modelSelect.value || undefined,
        prompt: promptInput.value,
        negativePrompt: negativeInput.value.trim() || undefined,
        seed: optionalNumber(seedInput),
        width: optionalNumber(widthInput),
        height: optionalNumber(heightInput),
        method: methodSelect.value === "auto" ? undefined : methodSelect.value,
        steps: optionalNumber(stepsInput),
        guidance: optionalNumber(guidanceInput),
        pivotStrength: Number(pivotInput.value),
    };
}
form.addEventListener("submit", ev => {
    ev.preventDefault();
    void guarded(async () => {
        clearError();
        const params = readParams();
        if (!params.prompt.trim()) {
            showError("Write a prompt first.");
            promptInput.focus();
            return;
        }
        generateButton.disabled = true;
        try {
            watch(await api.submitGenerate(params));
        }
        finally {
            generateButton.disabled = false;
        }
    });
});
cancelButton.addEventListener("click", () => {
    if (!current)
        return;
    const id = current.id;
    cancelButton.disabled = true;
    void guarded(() => api.cancelJob(id));
});
// ---- the running job ------------------------------------------------------------------------------------------
function setStatus(status) {
    statusBadge.textContent = status;
    statusBadge.className = `status-badge ${status}`;
    cancelButton.disabled = !(status === "queued" || status === "running");
}
function setProgress(fraction, text) {
    const pct = Math.max(0, Math.min(100, Math.round(fraction * 100)));
    progressFill.style.width = `${pct}%`;
    progressBar.setAttribute("aria-valuenow", String(pct));
    progressText.textContent = text;
}
/** The card of stage i (0-based), created with placeholders for every stage up to the plan's count. */
function stageCard(index) {
    while (stagesBox.children.length <= index) {
        const i = stagesBox.children.length;
        const fig = document.createElement("figure");
        fig.className = "stage";
        fig.dataset.stage = String(i);
        const ph = document.createElement("div");
        ph.className = "placeholder";
        ph.textContent = "waiting";
        const cap = document.createElement("figcaption");
        cap.textContent = `stage ${i + 1}`;
        fig.append(ph, cap);
        stagesBox.append(fig);
    }
    return stagesBox.children[index];
}
function setStageImage(index, src, decoded, caption) {
    const card = stageCard(index);
    let img = card.querySelector("img");
    if (!img) {
        img = document.createElement("img");
        img.alt = `stage ${index + 1}`;
        card.querySelector(".placeholder")?.replaceWith(img);
    }
    if (decoded || !card.classList.contains("decoded"))
        img.src = src;
    if (decoded)
        card.classList.add("decoded");
    if (caption)
        card.querySelector("figcaption").textContent = caption;
}
function watch(id) {
    current?.source?.close();
    current = { id, stageCount: 0, finished: false };
    jobIdLabel.textContent = `#${id}`;
    stagesBox.replaceChildren();
    resultFigure.hidden = true;
    setStatus("queued");
    setProgress(0, "Queued…");
    const source = new EventSource(api.eventsUrl(id));
    current.source = source;
    const job = current;
    const on = (type) => source.addEventListener(type, ev => {
        if (current !== job)
            return;
        let data = {};
        try {
            data = JSON.parse(ev.data || "{}");
        }
        catch { /* keep empty */ }
        onEvent(job, type, data);
    });
    for (const t of ["queued", "started", "progress", "stage", "preview", "done", "failed", "cancelled", "interrupted", "status"])
        on(t);
    source.onmessage = ev => {
        if (current !== job)
            return;
        try {
            const data = JSON.parse(ev.data);
            onEvent(job, String(data.type ?? data.event ?? "progress"), data);
        }
        catch { /* ignore */ }
    };
    source.onerror = () => {
        if (job.finished || current !== job)
            return;
        // The stream broke before the job ended: ask for the job's state instead of leaving the page stuck.
        source.close();
        void guarded(async () => finish(job, await api.getJob(job.id)));
    };
}
const num = (v) => (typeof v === "number" ? v : undefined);
function onEvent(job, type, d) {
    const stage = num(d.stage) ?? num(d.stageIndex) ?? num(d.stage_index) ?? 0;
    const stageCount = num(d.stageCount) ?? num(d.stage_count) ?? num(d.stages);
    if (stageCount !== undefined && stageCount > job.stageCount) {
        job.stageCount = stageCount;
        stageCard(stageCount - 1);
    }
    switch (type) {
        case "queued":
            setStatus("queued");
            setProgress(0, `Queued${num(d.position) !== undefined ? ` (position ${d.position})` : ""}…`);
            break;
        case "started":
            setStatus("running");
            setProgress(0, "Starting…");
            break;
        case "progress": {
            setStatus("running");
            const step = num(d.step) ?? 0, total = Math.max(1, num(d.totalSteps) ?? num(d.total_steps) ?? num(d.total) ?? 1);
            const count = Math.max(1, job.stageCount || 1);
            const phase = typeof d.phase === "string" ? d.phase : "denoising";
            setProgress((stage + step / total) / count, `${count > 1 ? `stage ${stage + 1}/${count} · ` : ""}${phase} ${step}/${total}`);
            break;
        }
        case "preview": { // a cheap latent-to-RGB preview of the stage being denoised
            const src = imageSource(d);
            if (src)
                setStageImage(stage, src, false, `stage ${stage + 1} · step ${num(d.step) ?? "?"}`);
            break;
        }
        case "stage": { // a finished stage's decoded image
            const src = imageSource(d);
            const w = num(d.width), h = num(d.height), s = num(d.seconds);
            if (src)
                setStageImage(stage, src, true, `stage ${stage + 1} · ${w}×${h}${s !== undefined ? ` · ${s.toFixed(1)} s` : ""}`);
            break;
        }
        case "done":
        case "failed":
        case "cancelled":
        case "interrupted":
            void guarded(async () => finish(job, await api.getJob(job.id)));
            break;
        case "status": {
            const s = typeof d.status === "string" ? d.status.toLowerCase() : "";
            if (["done", "failed", "cancelled", "interrupted"].includes(s))
                onEvent(job, s, d);
            else if (s)
                setStatus(s);
            break;
        }
    }
}
function imageSource(d) {
    const v = d.image ?? d.png ?? d.url ?? d.imageUrl ?? d.image_url;
    if (typeof v !== "string" || !v)
        return undefined;
    if (v.startsWith("data:") || v.startsWith("/") || v.startsWith("http"))
        return v.startsWith("/") ? api.withKey(v) : v;
    return `data:image/png;base64,${v}`;
}
function finish(job, info) {
    if (job.finished)
        return;
    job.finished = true;
    job.source?.close();
    setStatus(info.status);
    if (info.status === "done") {
        setProgress(1, `Done: ${info.width ?? "?"}×${info.height ?? "?"}, seed ${info.seed ?? "?"}`);
        resultImg.src = info.resultUrl ?? api.resultUrl(info.id);
        resultCaption.textContent = describe(info);
        resultFigure.hidden = false;
        rememberSeed(info.seed);
    }
    else if (info.status === "failed") {
        setProgress(0, "Failed.");
        showError(`Job ${info.id} failed: ${info.error ?? "no reason given"}`);
    }
    else {
        progressText.textContent = info.status === "cancelled" ? "Cancelled." : `Ended: ${info.status}.`;
    }
    void guarded(refreshGallery);
}
// ---- gallery --------------------------------------------------------------------------------------------------
function describe(j) {
    const p = j.params;
    const parts = [`${j.width ?? p.width ?? "?"}×${j.height ?? p.height ?? "?"}`, `seed ${j.seed ?? "?"}`];
    if (p.method)
        parts.push(String(p.method));
    if (p.steps)
        parts.push(`${p.steps} steps`);
    if (p.guidance !== undefined && p.guidance !== null)
        parts.push(`cfg ${p.guidance}`);
    if (p.pivotStrength !== undefined && p.pivotStrength !== null)
        parts.push(`pivot ${p.pivotStrength}`);
    if (j.kind === "upscale")
        parts.unshift("upscale");
    return parts.join(" · ");
}
function promptOf(j) {
    const p = j.params.prompt;
    return typeof p === "string" && p ? p : j.kind === "upscale" ? "(upscale)" : "(no prompt)";
}
async function refreshGallery() {
    const jobs = await api.listJobs();
    const finished = jobs.filter(j => !["queued", "running"].includes(j.status));
    galleryEmpty.hidden = finished.length > 0;
    gallery.replaceChildren(...finished.map(card));
}
function card(j) {
    const el = document.createElement("article");
    el.className = "card";
    el.dataset.job = j.id;
    el.dataset.status = j.status;
    let thumb;
    if (j.resultUrl) {
        const b = document.createElement("img");
        b.className = "thumb";
        b.src = j.resultUrl;
        b.alt = promptOf(j);
        b.loading = "lazy";
        b.title = "Open";
        b.addEventListener("click", () => openViewer(j));
        thumb = b;
    }
    else {
        thumb = document.createElement("div");
        thumb.className = "thumb noimg";
        thumb.textContent = j.status;
    }
    const meta = document.createElement("div");
    meta.className = "meta";
    const prompt = document.createElement("div");
    prompt.className = "prompt";
    prompt.textContent = promptOf(j);
    prompt.title = promptOf(j);
    const sub = document.createElement("div");
    sub.className = "sub";
    sub.textContent = describe(j);
    const badge = document.createElement("span");
    badge.className = `status-badge ${j.status}`;
    badge.textContent = j.status;
    if (j.error)
        badge.title = j.error;
    meta.append(prompt, sub, badge);
    const actions = document.createElement("div");
    actions.className = "card-actions";
    if (j.status === "done") {
        actions.append(button("Reuse", "reuse", () => reuse(j)), button("Upscale this", "upscale", () => void guarded(() => upscale(j))));
    }
    el.append(thumb, meta, actions);
    return el;
}
function button(text, action, onClick) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "ghost";
    b.textContent = text;
    b.dataset.action = action;
    b.addEventListener("click", onClick);
    return b;
}
/** Put a past job's parameters (and seed) back into the form. */
function reuse(j) {
    const p = j.params;
    const set = (input, v) => { if (v !== undefined && v !== null)
        input.value = String(v); };
    set(promptInput, p.prompt);
    set(negativeInput, p.negativePrompt ?? "");
    set(seedInput, j.seed ?? p.seed);
    set(widthInput, p.width ?? j.width);
    set(heightInput, p.height ?? j.height);
    set(stepsInput, p.steps ?? "");
    set(guidanceInput, p.guidance ?? "");
    if (typeof p.pivotStrength === "number") {
        pivotInput.value = String(p.pivotStrength);
        pivotValue.textContent = p.pivotStrength.toFixed(2);
    }
    if (typeof p.method === "string")
        methodSelect.value = p.method;
    if (typeof p.model === "string" && models.some(m => m.name === p.model))
        modelSelect.value = p.model;
    renderPresets();
    rememberSeed(j.seed);
    window.scrollTo({ top: 0, behavior: "smooth" });
}
async function upscale(j) {
    clearError();
    const p = j.params;
    watch(await api.submitUpscale(j.id, {
        scale: 2,
        model: typeof p.model === "string" ? p.model : undefined,
        prompt: typeof p.prompt === "string" ? p.prompt : "",
        negativePrompt: typeof p.negativePrompt === "string" ? p.negativePrompt : undefined,
        seed: j.seed,
        pivotStrength: Number(pivotInput.value),
    }));
    if (viewer.open)
        viewer.close();
    window.scrollTo({ top: 0, behavior: "smooth" });
}
function openViewer(j) {
    viewed = j;
    $("viewer-img").src = j.resultUrl ?? "";
    const dl = $("viewer-download");
    dl.href = j.resultUrl ?? "#";
    dl.download = `selfcascade-${j.id}.png`;
    const rows = [
        ["job", j.id], ["status", j.status], ["kind", j.kind], ["size", `${j.width ?? "?"}×${j.height ?? "?"}`], ["seed", j.seed],
        ...Object.entries(j.params).filter(([k]) => !["seed", "width", "height"].includes(k)),
    ];
    if (j.stages.length)
        rows.push(["stages", j.stages.map(s => `${s.width}×${s.height}${s.seconds !== undefined ? ` (${s.seconds.toFixed(1)} s)` : ""}`).join(" → ")]);
    if (j.createdAt)
        rows.push(["created", new Date(j.createdAt).toLocaleString()]);
    $("viewer-params").replaceChildren(...rows.filter(([, v]) => v !== undefined && v !== null && v !== "").flatMap(([k, v]) => {
        const dt = document.createElement("dt");
        dt.textContent = k;
        const dd = document.createElement("dd");
        dd.textContent = typeof v === "object" ? JSON.stringify(v) : String(v);
        dd.dataset.param = k;
        return [dt, dd];
    }));
    viewer.showModal();
}
$("viewer-reuse").addEventListener("click", () => { if (viewed) {
    reuse(viewed);
    viewer.close();
} });
$("viewer-upscale").addEventListener("click", () => { if (viewed)
    void guarded(() => upscale(viewed)); });
$("refresh").addEventListener("click", () => void guarded(refreshGallery));
// ---- start ----------------------------------------------------------------------------------------------------
void guarded(async () => {
    await loadModels();
    await refreshGallery();
    document.body.dataset.ready = "true";
});
