// The page's view of the server's native JSON API (docs/SERVER.md). Every URL the page uses is in this file.
/** An error the server reported, with its own message. */
export class ApiError extends Error {
    status;
    constructor(message, status) {
        super(message);
        this.status = status;
    }
}
function apiKeyHeaders() {
    const key = new URLSearchParams(location.search).get("key") ?? sessionStorage.getItem("selfcascade-key");
    if (key)
        sessionStorage.setItem("selfcascade-key", key);
    return key ? { "X-Api-Key": key } : {};
}
/** Query-string form of the API key for URLs the browser fetches itself (img src, EventSource). */
export function withKey(url) {
    const key = apiKeyHeaders()["X-Api-Key"];
    return key ? `${url}${url.includes("?") ? "&" : "?"}key=${encodeURIComponent(key)}` : url;
}
async function request(method, url, body) {
    let response;
    try {
        response = await fetch(url, {
            method,
            headers: { ...apiKeyHeaders(), ...(body === undefined ? {} : { "Content-Type": "application/json" }) },
            body: body === undefined ? undefined : JSON.stringify(body),
        });
    }
    catch {
        throw new ApiError("The server cannot be reached.", 0);
    }
    const text = await response.text();
    let json = undefined;
    if (text) {
        try {
            json = JSON.parse(text);
        }
        catch { /* not JSON: the text itself is the message */ }
    }
    if (!response.ok)
        throw new ApiError(errorMessage(json, text, response), response.status);
    return json;
}
/** The server's own words: {error}, {message} or RFC 7807 problem details ({title, detail, errors}). */
function errorMessage(json, text, response) {
    const prefix = `${response.status} ${response.statusText}`.trim();
    if (json && typeof json === "object") {
        const o = json;
        const err = o.error;
        if (typeof err === "string")
            return `${prefix}: ${err}`;
        if (err && typeof err === "object" && typeof err.message === "string")
            return `${prefix}: ${err.message}`;
        if (typeof o.message === "string")
            return `${prefix}: ${o.message}`;
        const parts = [o.title, o.detail].filter((x) => typeof x === "string");
        if (o.errors && typeof o.errors === "object")
            for (const [k, v] of Object.entries(o.errors))
                parts.push(`${k}: ${Array.isArray(v) ? v.join(", ") : String(v)}`);
        if (parts.length)
            return `${prefix}: ${parts.join(" — ")}`;
    }
    return text && text.length < 500 ? `${prefix}: ${text}` : prefix;
}
// Field names are read in both camelCase and snake_case so the page does not depend on the serializer's policy.
function pick(o, ...names) {
    for (const n of names)
        if (o[n] !== undefined && o[n] !== null)
            return o[n];
    return undefined;
}
const num = (v) => (typeof v === "number" ? v : typeof v === "string" && v !== "" && !isNaN(+v) ? +v : undefined);
const str = (v) => (typeof v === "string" ? v : undefined);
function toModel(raw) {
    const o = raw;
    return {
        name: str(pick(o, "name", "id")) ?? "?",
        nativeSize: num(pick(o, "nativeSize", "native_size")) ?? 512,
        isDefault: pick(o, "isDefault", "is_default", "default") === true,
    };
}
export function toJob(raw) {
    const o = raw;
    const params = (pick(o, "request", "params", "parameters") ?? {});
    const stages = pick(o, "stages") ?? [];
    const id = String(pick(o, "id", "jobId", "job_id"));
    const status = String(pick(o, "status", "state") ?? "queued").toLowerCase();
    return {
        id,
        kind: str(pick(o, "kind", "type")) ?? "generate",
        status,
        error: str(pick(o, "error", "reason")),
        params,
        width: num(pick(o, "width")) ?? num(pick(params, "width")),
        height: num(pick(o, "height")) ?? num(pick(params, "height")),
        seed: num(pick(o, "seed")) ?? num(pick(params, "seed")),
        createdAt: str(pick(o, "createdAt", "created_at", "submittedAt", "submitted_at")),
        stages: stages.map(s => {
            const so = s;
            return { index: num(so.index) ?? 0, width: num(so.width) ?? 0, height: num(so.height) ?? 0, seconds: num(so.seconds) };
        }),
        resultUrl: status === "done" ? resultUrl(id) : undefined,
    };
}
export const resultUrl = (id) => withKey(`/api/jobs/${encodeURIComponent(id)}/result.png`);
export const eventsUrl = (id) => withKey(`/api/jobs/${encodeURIComponent(id)}/events`);
export async function listModels() {
    const raw = await request("GET", "/api/models");
    const list = Array.isArray(raw) ? raw : raw?.models ?? [];
    return list.map(toModel);
}
export async function submitGenerate(p) {
    const raw = await request("POST", "/api/jobs", p);
    return String(pick(raw, "id", "jobId", "job_id"));
}
/** "Upscale this": a new job that upscales a finished job's result. */
export async function submitUpscale(sourceJobId, p) {
    const raw = await request("POST", "/api/jobs/upscale", { ...p, sourceJob: sourceJobId });
    return String(pick(raw, "id", "jobId", "job_id"));
}
export async function getJob(id) {
    return toJob(await request("GET", `/api/jobs/${encodeURIComponent(id)}`));
}
export async function listJobs() {
    const raw = await request("GET", "/api/jobs");
    const list = Array.isArray(raw) ? raw : raw?.jobs ?? [];
    return list.map(toJob);
}
export async function cancelJob(id) {
    await request("POST", `/api/jobs/${encodeURIComponent(id)}/cancel`);
}
