// check.mjs: render every kustomize overlay of manifests/ and check it offline.
//
//   node check.mjs REPO_ROOT NODE_MODULES_DIR     (scripts/check-manifests runs it)
//
// For each render (every overlay, plus production with every optional
// component), every document is
//   1. validated against the Kubernetes schemas: kubernetes-models' validate()
//      (types, required fields, enums, formats), and a walk over the field
//      lists of @kubernetes/client-node's generated models (Kubernetes 1.34)
//      or the CRD's OpenAPI schema, which rejects unknown fields;
//   2. checked against the project's rules (probes, resources, restricted
//      security context, ports that agree, HPA target, ...: see RULES below).
// Then a self-test renders deliberately broken copies and requires each to be
// rejected with a message naming the document and the field, so a checker
// that lets everything through fails too.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { checkProfile, flatten, seccompProfileYaml, toSeccompProfile, SPO_HEADER } from "./seccomp.mjs";

const [ROOT, MODULES] = process.argv.slice(2);
if (!ROOT || !MODULES) {
    console.error("usage: node check.mjs REPO_ROOT NODE_MODULES_DIR");
    process.exit(2);
}
const MANIFESTS = path.join(ROOT, "manifests");
const require = createRequire(path.join(MODULES, "index.js"));
const yaml = require("js-yaml");
const k8s = await import(pathToFileURL(path.join(MODULES, "@kubernetes/client-node/dist/gen/models/all.js")).href);

// Capture the OpenAPI schemas the CRD model packages register, for the
// unknown-field walk (kubernetes-models' own validate() does not report those).
const crdSchemas = {};
for (const pkg of ["@kubernetes-models/gateway-api", "@kubernetes-models/prometheus-operator"]) {
    const v = createRequire(path.join(MODULES, pkg, "index.js"))("@kubernetes-models/validate");
    if (!v.__ringletWrapped) {
        const orig = v.register;
        v.register = (id, schema) => {
            crdSchemas[id] = schema;
            return orig(id, schema);
        };
        v.__ringletWrapped = true;
    }
}

// ---------------------------------------------------------------------------
// Documents and paths

const docId = (d) => `${d?.kind || "?"}/${d?.metadata?.name || "?"}`;
const fmtPath = (parts) =>
    parts.reduce((s, p) => (typeof p === "number" ? `${s}[${p}]` : s ? `${s}.${p}` : String(p)), "");
const ajvPath = (p) =>
    fmtPath(
        p.split("/").filter(Boolean).map((x) => (/^\d+$/.test(x) ? Number(x) : x.replace(/~1/g, "/").replace(/~0/g, "~")))
    );

class Report {
    constructor(render) {
        this.render = render;
        this.errors = [];
    }
    err(doc, field, msg) {
        const f = Array.isArray(field) ? fmtPath(field) : field;
        this.errors.push(`${docId(doc)}${f ? " " + f : ""}: ${msg}`);
    }
}

// ---------------------------------------------------------------------------
// 1. Schemas

const MODEL_PKG = {
    "gateway.networking.k8s.io/v1": "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1",
    "monitoring.coreos.com/v1": "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1",
};

function modelClass(doc) {
    const av = doc.apiVersion;
    const mod = MODEL_PKG[av] || `kubernetes-models/${av}`;
    try {
        return require(mod)[doc.kind];
    } catch {
        return undefined;
    }
}

// client-node root model name for apiVersion + kind ("apps/v1" Deployment -> V1Deployment)
function clientModel(doc) {
    const version = String(doc.apiVersion || "").split("/").pop();
    const name = version.charAt(0).toUpperCase() + version.slice(1) + doc.kind;
    return k8s[name];
}

const PRIMITIVE = new Set(["string", "number", "boolean", "Date", "any", "object", "IntOrString"]);

function walkModel(type, value, at, out) {
    if (value === null || value === undefined) return;
    let m;
    if ((m = /^Array<(.+)>$/.exec(type))) {
        if (!Array.isArray(value)) return; // the type error is validate()'s
        value.forEach((v, i) => walkModel(m[1], v, [...at, i], out));
        return;
    }
    if ((m = /^\{ \[key: string\]: (.+); \}$/.exec(type))) {
        if (typeof value !== "object") return;
        for (const [k, v] of Object.entries(value)) walkModel(m[1], v, [...at, k], out);
        return;
    }
    if (PRIMITIVE.has(type)) return;
    const cls = k8s[type];
    if (!cls || !cls.attributeTypeMap || typeof value !== "object" || Array.isArray(value)) return;
    const known = new Map(cls.attributeTypeMap.map((a) => [a.baseName, a.type]));
    for (const [k, v] of Object.entries(value)) {
        if (!known.has(k)) out.push([[...at, k], `unknown field "${k}" (not in ${type})`]);
        else walkModel(known.get(k), v, [...at, k], out);
    }
}

function walkSchema(schema, value, at, out) {
    if (!schema || value === null || value === undefined) return;
    if (schema.$ref) {
        const ref = schema.$ref.replace(/#$/, "");
        if (ref === "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta") return walkModel("V1ObjectMeta", value, at, out);
        return walkSchema(crdSchemas[ref], value, at, out);
    }
    for (const key of ["oneOf", "anyOf", "allOf"]) {
        if (Array.isArray(schema[key])) {
            // merge the branches' properties: unknown means unknown to all of them
            const merged = { type: "object", properties: {}, _any: false };
            for (const b of schema[key]) {
                const bb = b.$ref ? crdSchemas[b.$ref.replace(/#$/, "")] || {} : b;
                if (bb.$ref === undefined && b.$ref && b.$ref.includes("ObjectMeta")) return walkSchema(b, value, at, out);
                Object.assign(merged.properties, bb.properties || {});
                if (!bb.properties || bb.additionalProperties || bb["x-kubernetes-preserve-unknown-fields"]) merged._any = true;
            }
            if (!merged._any && typeof value === "object" && !Array.isArray(value)) walkSchema(merged, value, at, out);
            return;
        }
    }
    if (Array.isArray(value)) {
        if (schema.items) value.forEach((v, i) => walkSchema(schema.items, v, [...at, i], out));
        return;
    }
    if (typeof value !== "object") return;
    if (schema["x-kubernetes-preserve-unknown-fields"]) return;
    if (schema.properties) {
        for (const [k, v] of Object.entries(value)) {
            if (schema.properties[k]) walkSchema(schema.properties[k], v, [...at, k], out);
            else if (schema.additionalProperties && typeof schema.additionalProperties === "object")
                walkSchema(schema.additionalProperties, v, [...at, k], out);
            else if (!schema.additionalProperties) out.push([[...at, k], `unknown field "${k}"`]);
        }
    } else if (schema.additionalProperties && typeof schema.additionalProperties === "object") {
        for (const [k, v] of Object.entries(value)) walkSchema(schema.additionalProperties, v, [...at, k], out);
    }
}

// Security Profiles Operator's SeccompProfile (v1beta1): no model package
// exists, so its spec is described here (from the operator's CRD).
const SPO_SCHEMA = {
    type: "object",
    required: ["apiVersion", "kind", "metadata", "spec"],
    properties: {
        apiVersion: { enum: ["security-profiles-operator.x-k8s.io/v1beta1"] },
        kind: { enum: ["SeccompProfile"] },
        metadata: { $ref: "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta#" },
        spec: {
            type: "object",
            required: ["defaultAction"],
            properties: {
                disabled: { type: "boolean" },
                baseProfileName: { type: "string" },
                defaultAction: { enum: ["SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY"] },
                architectures: { type: "array", items: { type: "string" } },
                listenerPath: { type: "string" },
                listenerMetadata: { type: "string" },
                flags: { type: "array", items: { type: "string" } },
                syscalls: {
                    type: "array",
                    items: {
                        type: "object",
                        required: ["action", "names"],
                        properties: {
                            action: { type: "string" },
                            names: { type: "array", items: { type: "string" } },
                            errnoRet: { type: "integer" },
                            args: {
                                type: "array",
                                items: {
                                    type: "object",
                                    properties: {
                                        index: { type: "integer" },
                                        value: { type: "integer" },
                                        valueTwo: { type: "integer" },
                                        op: { type: "string" },
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
};

function checkSpo(doc, rep) {
    const out = [];
    walkSchema(SPO_SCHEMA, doc, [], out);
    for (const [at, msg] of out) rep.err(doc, at, msg);
    if (!doc.spec?.defaultAction) rep.err(doc, "spec.defaultAction", "required");
    (doc.spec?.syscalls || []).forEach((s, i) => {
        if (!Array.isArray(s.names) || !s.names.length) rep.err(doc, ["spec", "syscalls", i, "names"], "required, non-empty");
        if (typeof s.action !== "string") rep.err(doc, ["spec", "syscalls", i, "action"], "required string");
    });
}

function checkSchema(doc, rep) {
    if (!doc || typeof doc !== "object" || !doc.apiVersion || !doc.kind) {
        rep.err(doc, "", "not a Kubernetes object (apiVersion and kind are required)");
        return;
    }
    if (doc.apiVersion === "security-profiles-operator.x-k8s.io/v1beta1" && doc.kind === "SeccompProfile") return checkSpo(doc, rep);
    const Cls = modelClass(doc);
    if (!Cls) {
        rep.err(doc, "apiVersion", `no schema for ${doc.apiVersion} ${doc.kind}: unknown or removed API`);
        return;
    }
    // kustomize wraps long base64 values over lines; the API server's decoder
    // skips the newlines, the "byte" format check does not
    let subject = doc;
    if (doc.kind === "Secret" && doc.data) {
        subject = { ...doc, data: Object.fromEntries(Object.entries(doc.data).map(([k, v]) => [k, typeof v === "string" ? v.replace(/[\r\n]/g, "") : v])) };
    }
    try {
        new Cls(subject).validate();
    } catch (e) {
        const errs = e.errors || [{ instancePath: "", message: e.message }];
        for (const x of errs) {
            let field = ajvPath(x.instancePath || "");
            if (x.keyword === "required" && x.params?.missingProperty)
                field = field ? `${field}.${x.params.missingProperty}` : x.params.missingProperty;
            const allowed = x.params?.allowedValues ? ` (${x.params.allowedValues.join(", ")})` : "";
            rep.err(doc, field, `${x.message}${allowed}`);
        }
    }
    const out = [];
    const cm = clientModel(doc);
    if (cm && !MODEL_PKG[doc.apiVersion]) {
        walkModel(cm.name, doc, [], out);
    } else {
        const id = `${doc.apiVersion.replace("/", ".")}.${doc.kind}`;
        if (crdSchemas[id]) walkSchema(crdSchemas[id], doc, [], out);
        else rep.err(doc, "", `no field list for ${doc.apiVersion} ${doc.kind}: cannot check unknown fields`);
    }
    for (const [at, msg] of out) rep.err(doc, at, msg);
}

// ---------------------------------------------------------------------------
// 2. Project rules

// The variables ringlet reads, from its configuration table (when present).
const KNOWN_VARS = (() => {
    const f = path.join(ROOT, "src", "cfg.c");
    if (!fs.existsSync(f)) return undefined;
    const vars = new Set(fs.readFileSync(f, "utf8").match(/"RINGLET_[A-Z0-9_]+"/g)?.map((v) => v.slice(1, -1)) || []);
    return vars.size ? vars : undefined;
})();

const WORKLOADS = new Set(["Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicaSet", "Pod"]);
const LONG_RUNNING = new Set(["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"]);

function podTemplate(doc) {
    if (doc.kind === "Pod") return { at: [], meta: doc.metadata || {}, spec: doc.spec || {} };
    if (doc.kind === "CronJob")
        return { at: ["spec", "jobTemplate", "spec", "template"], meta: doc.spec?.jobTemplate?.spec?.template?.metadata || {}, spec: doc.spec?.jobTemplate?.spec?.template?.spec || {} };
    return { at: ["spec", "template"], meta: doc.spec?.template?.metadata || {}, spec: doc.spec?.template?.spec || {} };
}

const isRinglet = (doc) => doc.metadata?.labels?.["app.kubernetes.io/name"] === "ringlet";
const selects = (selector, labels) =>
    selector && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => (labels || {})[k] === v);
function labelSelectorMatches(ls, labels) {
    if (!ls) return false;
    const ml = ls.matchLabels || {};
    if (!Object.keys(ml).length && !(ls.matchExpressions || []).length) return true; // {} selects all
    if (!Object.entries(ml).every(([k, v]) => (labels || {})[k] === v)) return false;
    return (ls.matchExpressions || []).every((e) => {
        const has = labels && e.key in labels;
        if (e.operator === "In") return has && e.values.includes(labels[e.key]);
        if (e.operator === "NotIn") return !has || !e.values.includes(labels[e.key]);
        if (e.operator === "Exists") return has;
        if (e.operator === "DoesNotExist") return !has;
        return false;
    });
}

// Kubernetes quantity to a number (cores or bytes)
function quantity(q) {
    if (q === undefined || q === null) return undefined;
    const m = /^([+-]?[0-9.]+)([a-zA-Z]*)$/.exec(String(q));
    if (!m) return NaN;
    const mult = { "": 1, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4 }[m[2]];
    return mult === undefined ? NaN : Number(m[1]) * mult;
}

const canonical = (v) =>
    Array.isArray(v) ? `[${v.map(canonical).join(",")}]`
    : v && typeof v === "object" ? `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(",")}}`
    : JSON.stringify(v);
const isZero = (v) => v === 0 || v === "0" || v === "0%";

function containerPortMatches(c, port) {
    return (c.ports || []).some((p) => (typeof port === "string" && !/^\d+$/.test(port) ? p.name === port : p.containerPort === Number(port)));
}

function configFor(doc, pod, c, byKind) {
    const env = {};
    for (const ef of c.envFrom || []) {
        if (ef.configMapRef) {
            const cm = (byKind.ConfigMap || []).find((x) => x.metadata.name === ef.configMapRef.name);
            if (cm) Object.assign(env, cm.data || {});
        }
    }
    for (const e of c.env || []) if (e.value !== undefined) env[e.name] = e.value;
    return env;
}

function checkContainerSecurity(doc, pod, c, at, rep) {
    const psc = pod.spec.securityContext || {};
    const sc = c.securityContext || {};
    const eff = (k) => (sc[k] !== undefined ? sc[k] : psc[k]);
    if (eff("runAsNonRoot") !== true) rep.err(doc, [...at, "securityContext", "runAsNonRoot"], "must be true (restricted Pod Security Standard)");
    const uid = eff("runAsUser");
    if (uid === 0) rep.err(doc, [...at, "securityContext", "runAsUser"], "must not be 0");
    if (isRinglet(doc) && !(Number.isInteger(uid) && uid > 0))
        rep.err(doc, [...at, "securityContext", "runAsUser"], "ringlet runs as a numeric non-root user: set runAsUser (65532)");
    if (sc.allowPrivilegeEscalation !== false)
        rep.err(doc, [...at, "securityContext", "allowPrivilegeEscalation"], "must be false (restricted Pod Security Standard)");
    if (sc.privileged === true) rep.err(doc, [...at, "securityContext", "privileged"], "must not be true");
    const drop = sc.capabilities?.drop || [];
    if (!drop.includes("ALL")) rep.err(doc, [...at, "securityContext", "capabilities", "drop"], 'must contain "ALL" (restricted Pod Security Standard)');
    for (const a of sc.capabilities?.add || [])
        if (a !== "NET_BIND_SERVICE") rep.err(doc, [...at, "securityContext", "capabilities", "add"], `"${a}" is not allowed (restricted: NET_BIND_SERVICE only)`);
    if (sc.readOnlyRootFilesystem !== true)
        rep.err(doc, [...at, "securityContext", "readOnlyRootFilesystem"], "must be true (project rule)");
    const sp = sc.seccompProfile || psc.seccompProfile;
    const spAt = sc.seccompProfile ? [...at, "securityContext", "seccompProfile"] : [...podTemplate(doc).at, "spec", "securityContext", "seccompProfile"];
    if (!sp || !["RuntimeDefault", "Localhost"].includes(sp.type))
        rep.err(doc, spAt, "type must be RuntimeDefault or Localhost (restricted Pod Security Standard)");
    else if (isRinglet(doc) && !(sp.type === "Localhost" && /(^|\/)ringlet\.json$/.test(sp.localhostProfile || "")))
        rep.err(doc, spAt, "ringlet needs the Localhost profile manifests/seccomp/ringlet.json (runtime defaults block io_uring)");
}

function checkResources(doc, c, at, rep) {
    const r = c.resources || {};
    for (const kind of ["requests", "limits"]) {
        if (!r[kind]) {
            rep.err(doc, [...at, "resources", kind], `missing: every container needs cpu and memory ${kind}`);
            continue;
        }
        for (const res of ["cpu", "memory"]) {
            const v = r[kind][res];
            if (v === undefined) rep.err(doc, [...at, "resources", kind, res], "missing");
            else if (Number.isNaN(quantity(v)) || !(quantity(v) > 0)) rep.err(doc, [...at, "resources", kind, res], `"${v}" is not a positive quantity`);
        }
    }
    for (const res of ["cpu", "memory"]) {
        const rq = quantity(r.requests?.[res]);
        const lm = quantity(r.limits?.[res]);
        if (rq > 0 && lm > 0 && rq > lm) rep.err(doc, [...at, "resources", "requests", res], `request ${r.requests[res]} is above the limit ${r.limits[res]}`);
    }
}

function checkProbe(doc, c, at, name, rep, wantPath) {
    const p = c[name];
    if (!p) {
        rep.err(doc, [...at, name], "missing");
        return;
    }
    const h = p.httpGet || p.tcpSocket || p.grpc;
    const kindKey = p.httpGet ? "httpGet" : p.tcpSocket ? "tcpSocket" : p.grpc ? "grpc" : undefined;
    if (h && h.port !== undefined && !containerPortMatches(c, h.port))
        rep.err(doc, [...at, name, kindKey, "port"], `port ${JSON.stringify(h.port)} is not a port of container "${c.name}"`);
    if (wantPath) {
        if (!p.httpGet) rep.err(doc, [...at, name, "httpGet"], `must be an HTTP GET of ${wantPath}`);
        else if (p.httpGet.path !== wantPath)
            rep.err(doc, [...at, name, "httpGet", "path"], `must be ${wantPath}, not ${p.httpGet.path}${name === "livenessProbe" ? " (liveness must never depend on the database)" : ""}`);
    }
}

function checkWorkload(doc, byKind, rep) {
    const pod = podTemplate(doc);
    const ps = pod.spec;
    const at0 = [...pod.at, "spec"];
    for (const k of ["hostNetwork", "hostPID", "hostIPC"]) if (ps[k] === true) rep.err(doc, [...at0, k], "must not be true");
    (ps.volumes || []).forEach((v, i) => {
        if (v.hostPath) rep.err(doc, [...at0, "volumes", i, "hostPath"], "hostPath volumes are not allowed (restricted)");
    });
    const all = [...(ps.initContainers || []).map((c, i) => [c, ["initContainers", i]]), ...(ps.containers || []).map((c, i) => [c, ["containers", i]])];
    if (!(ps.containers || []).length) rep.err(doc, [...at0, "containers"], "no containers");
    for (const [c, rel] of all) {
        const at = [...at0, ...rel];
        checkContainerSecurity(doc, pod, c, at, rep);
        checkResources(doc, c, at, rep);
        if (/:latest$/.test(c.image || "") || !/[:@]/.test((c.image || "").split("/").pop()))
            rep.err(doc, [...at, "image"], `"${c.image}" has no pinned tag or digest`);
        for (const ef of c.envFrom || []) {
            if (ef.configMapRef && !ef.configMapRef.optional && !(byKind.ConfigMap || []).some((x) => x.metadata.name === ef.configMapRef.name))
                rep.err(doc, [...at, "envFrom"], `ConfigMap "${ef.configMapRef.name}" is not in the render`);
        }
        for (const [i, e] of (c.env || []).entries()) {
            const sk = e.valueFrom?.secretKeyRef;
            if (sk) {
                const s = (byKind.Secret || []).find((x) => x.metadata.name === sk.name);
                if (s && !(sk.key in (s.data || {})) && !(sk.key in (s.stringData || {})))
                    rep.err(doc, [...at, "env", i, "valueFrom", "secretKeyRef", "key"], `Secret "${sk.name}" has no key "${sk.key}"`);
            }
            const ck = e.valueFrom?.configMapKeyRef;
            if (ck && !ck.optional) {
                const cm = (byKind.ConfigMap || []).find((x) => x.metadata.name === ck.name);
                if (!cm) rep.err(doc, [...at, "env", i, "valueFrom", "configMapKeyRef", "name"], `ConfigMap "${ck.name}" is not in the render`);
                else if (!(ck.key in (cm.data || {}))) rep.err(doc, [...at, "env", i, "valueFrom", "configMapKeyRef", "key"], `ConfigMap "${ck.name}" has no key "${ck.key}"`);
            }
        }
        if (isRinglet(doc)) {
            const dbi = (c.env || []).findIndex((e) => e.name === "DATABASE_URL");
            if (dbi < 0) rep.err(doc, [...at, "env"], "DATABASE_URL is not set (it must come from a Secret)");
            else if (!c.env[dbi].valueFrom?.secretKeyRef) rep.err(doc, [...at, "env", dbi], "DATABASE_URL must come from a Secret (secretKeyRef), never a literal");
        }
    }
    if (LONG_RUNNING.has(doc.kind)) {
        (ps.containers || []).forEach((c, i) => {
            const at = [...at0, "containers", i];
            const ringlet = isRinglet(doc);
            checkProbe(doc, c, at, "livenessProbe", rep, ringlet ? "/healthz" : undefined);
            checkProbe(doc, c, at, "readinessProbe", rep, ringlet ? "/readyz" : undefined);
            if (ringlet || c.startupProbe) checkProbe(doc, c, at, "startupProbe", rep, ringlet ? "/healthz" : undefined);
        });
    }
    // Prometheus annotations name a real port
    const ann = pod.meta.annotations || {};
    if (ann["prometheus.io/port"] !== undefined && !(ps.containers || []).some((c) => containerPortMatches(c, Number(ann["prometheus.io/port"]))))
        rep.err(doc, [...pod.at, "metadata", "annotations", "prometheus.io/port"], `${ann["prometheus.io/port"]} is not a container port`);
    if (isRinglet(doc) && ann["prometheus.io/path"] !== undefined && ann["prometheus.io/path"] !== "/metrics")
        rep.err(doc, [...pod.at, "metadata", "annotations", "prometheus.io/path"], "ringlet serves metrics on /metrics");
}

function checkRingletDeployment(doc, byKind, rep) {
    const pod = podTemplate(doc);
    const ps = pod.spec;
    const c = (ps.containers || [])[0] || {};
    const at = ["spec", "template", "spec"];
    // selector agrees with the template
    if (!labelSelectorMatches(doc.spec?.selector, pod.meta.labels)) rep.err(doc, "spec.selector", "does not select the pod template's labels");
    // rollout never below desired capacity
    const st = doc.spec?.strategy || {};
    if (st.type && st.type !== "RollingUpdate") rep.err(doc, "spec.strategy.type", "must be RollingUpdate");
    if (!isZero(st.rollingUpdate?.maxUnavailable))
        rep.err(doc, "spec.strategy.rollingUpdate.maxUnavailable", "must be 0: a rollout must never drop below the desired capacity");
    if (isZero(st.rollingUpdate?.maxSurge ?? "25%")) rep.err(doc, "spec.strategy.rollingUpdate.maxSurge", "must be above 0 when maxUnavailable is 0");
    const hpa = (byKind.HorizontalPodAutoscaler || []).find((h) => h.spec?.scaleTargetRef?.kind === "Deployment" && h.spec.scaleTargetRef.name === doc.metadata.name);
    if (hpa && doc.spec?.replicas !== undefined)
        rep.err(doc, "spec.replicas", `must be unset: HorizontalPodAutoscaler/${hpa.metadata.name} owns the count and every apply would reset it`);
    // configuration agrees with the pod spec
    const env = configFor(doc, pod, c, byKind);
    const num = (k, d) => (env[k] === undefined ? d : Number(env[k]));
    const drain = num("RINGLET_DRAIN_DELAY_MS", 5000);
    const grace = num("RINGLET_SHUTDOWN_GRACE_MS", 20000);
    const tgps = ps.terminationGracePeriodSeconds ?? 30;
    if (tgps * 1000 < drain + grace + 5000)
        rep.err(doc, [...at, "terminationGracePeriodSeconds"], `${tgps} s must exceed RINGLET_DRAIN_DELAY_MS + RINGLET_SHUTDOWN_GRACE_MS (${(drain + grace) / 1000} s) by at least 5 s, or the kubelet sends SIGKILL`);
    const listen = env.RINGLET_LISTEN || "0.0.0.0:8080";
    const lport = Number(listen.split(":").pop());
    const http = (c.ports || []).find((p) => p.name === "http");
    if (!http) rep.err(doc, [...at, "containers", 0, "ports"], 'no port named "http"');
    else if (http.containerPort !== lport)
        rep.err(doc, [...at, "containers", 0, "ports", (c.ports || []).indexOf(http), "containerPort"], `${http.containerPort} differs from RINGLET_LISTEN's port ${lport}`);
    if (/^127\.|^\[::1\]|^localhost/.test(listen)) rep.err(doc, "RINGLET_LISTEN", `${listen} is not reachable from outside the pod`);
    if (KNOWN_VARS) {
        for (const k of Object.keys(env).filter((k) => k.startsWith("RINGLET_") && !KNOWN_VARS.has(k)))
            rep.err(doc, `config ${k}`, "ringlet has no such variable (src/cfg.c): a typo here is silently ignored");
    }
    for (const k of Object.keys(env)) {
        if (/_MS$|_CONNECTIONS$|_BYTES$/.test(k) && !/^\d+$/.test(String(env[k]))) rep.err(doc, `config ${k}`, `"${env[k]}" is not a non-negative integer`);
    }
    // topology spread
    const tsc = ps.topologySpreadConstraints || [];
    for (const key of ["kubernetes.io/hostname", "topology.kubernetes.io/zone"]) {
        const i = tsc.findIndex((t) => t.topologyKey === key);
        if (i < 0) rep.err(doc, [...at, "topologySpreadConstraints"], `no constraint on ${key}`);
        else if (!labelSelectorMatches(tsc[i].labelSelector, pod.meta.labels) || !tsc[i].labelSelector)
            rep.err(doc, [...at, "topologySpreadConstraints", i, "labelSelector"], "does not select this Deployment's pods");
    }
    // Ingress keep-alive: ringlet's idle timeout above the proxy's upstream one
    const idle = num("RINGLET_IDLE_TIMEOUT_MS", 60000);
    const reqTimeout = num("RINGLET_REQUEST_TIMEOUT_MS", 5000);
    for (const ing of byKind.Ingress || []) {
        if (ing.spec?.ingressClassName !== "nginx") continue;
        const ka = 60000; // ingress-nginx upstream-keepalive-timeout default (controller ConfigMap)
        if (idle <= ka)
            rep.err(doc, "config RINGLET_IDLE_TIMEOUT_MS", `${idle} ms must be above ingress-nginx's upstream-keepalive-timeout (${ka / 1000} s), or requests race ringlet closing idle connections (502s)`);
        const rt = ing.metadata?.annotations?.["nginx.ingress.kubernetes.io/proxy-read-timeout"];
        if (rt !== undefined && Number(rt) * 1000 <= reqTimeout)
            rep.err(ing, "metadata.annotations.nginx.ingress.kubernetes.io/proxy-read-timeout", `${rt} s must be above RINGLET_REQUEST_TIMEOUT_MS (${reqTimeout} ms) so that ringlet answers 504 itself`);
    }
    // NetworkPolicy
    const nps = (byKind.NetworkPolicy || []).filter((n) => labelSelectorMatches(n.spec?.podSelector, pod.meta.labels));
    if (!nps.length) rep.err(doc, "", "no NetworkPolicy selects these pods");
    const inPorts = nps.flatMap((n) => (n.spec.ingress || []).flatMap((r) => (r.ports || []).map((p) => p.port)));
    if (nps.length && !inPorts.some((p) => containerPortMatches(c, p)))
        for (const n of nps) rep.err(n, "spec.ingress", `no rule admits ringlet's container port (http/${http?.containerPort})`);
    const egress = nps.flatMap((n) => n.spec.egress || []);
    const egressPorts = egress.flatMap((r) => (r.ports || []).map((p) => `${p.port}/${p.protocol || "TCP"}`));
    for (const n of nps) {
        if (!(n.spec.policyTypes || []).includes("Egress")) rep.err(n, "spec.policyTypes", "must include Egress");
        if (!(n.spec.policyTypes || []).includes("Ingress")) rep.err(n, "spec.policyTypes", "must include Ingress");
    }
    if (nps.length && !egressPorts.includes("53/UDP")) for (const n of nps) rep.err(n, "spec.egress", "no rule allows DNS (53/UDP)");
    if (nps.length && !egressPorts.some((p) => p === "5432/TCP" || p === "6432/TCP"))
        for (const n of nps) rep.err(n, "spec.egress", "no rule allows PostgreSQL (5432/TCP) or PgBouncer (6432/TCP)");
    // migration
    const jobs = (byKind.Job || []).filter((j) => isRinglet(j) && (podTemplate(j).spec.containers || []).some((x) => (x.args || []).includes("migrate")));
    if (!jobs.length) rep.err(doc, "", "no Job runs `ringlet migrate`");
    for (const j of jobs) {
        const jc = podTemplate(j).spec.containers.find((x) => (x.args || []).includes("migrate"));
        if (jc.image !== c.image) rep.err(j, "spec.template.spec.containers.image", `${jc.image} differs from the Deployment's ${c.image}`);
    }
}

function checkService(svc, byKind, workloads, rep) {
    const sel = svc.spec?.selector;
    if (!sel || !Object.keys(sel).length) {
        rep.err(svc, "spec.selector", "empty: selects nothing (or everything)");
        return;
    }
    const hits = workloads.filter((w) => selects(sel, podTemplate(w).meta.labels));
    if (!hits.length) rep.err(svc, "spec.selector", `${JSON.stringify(sel)} selects no pod template in the render`);
    for (const w of hits) {
        if (w.kind === "Job" || w.kind === "CronJob") rep.err(svc, "spec.selector", `also selects the pods of ${docId(w)}`);
    }
    (svc.spec.ports || []).forEach((p, i) => {
        const tp = p.targetPort ?? p.port;
        for (const w of hits.filter((h) => LONG_RUNNING.has(h.kind))) {
            if (!(podTemplate(w).spec.containers || []).some((c) => containerPortMatches(c, tp)))
                rep.err(svc, ["spec", "ports", i, "targetPort"], `${JSON.stringify(tp)} is not a container port of ${docId(w)}`);
        }
    });
}

function servicePort(svc, port) {
    return (svc.spec?.ports || []).find((p) => (port.name !== undefined ? p.name === port.name : p.port === port.number));
}

function checkIngress(ing, byKind, rep) {
    const backends = [];
    if (ing.spec?.defaultBackend?.service) backends.push([ing.spec.defaultBackend.service, ["spec", "defaultBackend", "service"]]);
    (ing.spec?.rules || []).forEach((r, i) =>
        (r.http?.paths || []).forEach((p, j) => p.backend?.service && backends.push([p.backend.service, ["spec", "rules", i, "http", "paths", j, "backend", "service"]]))
    );
    if (!backends.length) rep.err(ing, "spec.rules", "no service backend");
    for (const [b, at] of backends) {
        const svc = (byKind.Service || []).find((s) => s.metadata.name === b.name);
        if (!svc) rep.err(ing, [...at, "name"], `Service "${b.name}" is not in the render`);
        else if (!b.port || !servicePort(svc, b.port)) rep.err(ing, [...at, "port"], `${JSON.stringify(b.port)} is not a port of Service/${b.name}`);
    }
}

function checkHttpRoute(rt, byKind, rep) {
    (rt.spec?.rules || []).forEach((r, i) =>
        (r.backendRefs || []).forEach((b, j) => {
            if ((b.kind || "Service") !== "Service" || (b.group || "") !== "") return;
            const at = ["spec", "rules", i, "backendRefs", j];
            const svc = (byKind.Service || []).find((s) => s.metadata.name === b.name && !b.namespace);
            if (!svc) rep.err(rt, [...at, "name"], `Service "${b.name}" is not in the render`);
            else if (!servicePort(svc, { number: b.port })) rep.err(rt, [...at, "port"], `${b.port} is not a port of Service/${b.name}`);
        })
    );
}

function checkHpa(h, byKind, rep) {
    const t = h.spec?.scaleTargetRef || {};
    const target = (byKind[t.kind] || []).find((d) => d.metadata.name === t.name);
    if (!target || t.apiVersion !== "apps/v1" || t.kind !== "Deployment")
        rep.err(h, "spec.scaleTargetRef", `${t.apiVersion} ${t.kind}/${t.name} is not a Deployment in the render`);
    const min = h.spec?.minReplicas ?? 1;
    const max = h.spec?.maxReplicas;
    if (!(min >= 1)) rep.err(h, "spec.minReplicas", "must be at least 1");
    if (!(max >= min)) rep.err(h, "spec.maxReplicas", `${max} is below minReplicas ${min}`);
    if (!h.spec?.behavior?.scaleUp) rep.err(h, "spec.behavior.scaleUp", "missing: scale up fast, explicitly");
    if (!h.spec?.behavior?.scaleDown) rep.err(h, "spec.behavior.scaleDown", "missing: scale down slowly, explicitly");
    else if (!((h.spec.behavior.scaleDown.stabilizationWindowSeconds ?? 300) >= 60))
        rep.err(h, "spec.behavior.scaleDown.stabilizationWindowSeconds", "below 60 s: the replica count would flap");
    const cpu = (h.spec?.metrics || []).findIndex((m) => m.type === "Resource" && m.resource?.name === "cpu");
    if (cpu < 0) rep.err(h, "spec.metrics", "no CPU metric");
    else if (target) {
        (podTemplate(target).spec.containers || []).forEach((c, i) => {
            if (!c.resources?.requests?.cpu) rep.err(target, ["spec", "template", "spec", "containers", i, "resources", "requests", "cpu"], `required by HorizontalPodAutoscaler/${h.metadata.name}'s CPU utilization target`);
        });
    }
    const pdbs = (byKind.PodDisruptionBudget || []).filter((p) => target && labelSelectorMatches(p.spec?.selector, podTemplate(target).meta.labels));
    for (const p of pdbs) {
        const ma = p.spec.minAvailable;
        if (typeof ma === "number" && ma >= min) rep.err(p, "spec.minAvailable", `${ma} >= the HPA's minReplicas ${min}: node drains would block`);
    }
}

function checkPdb(p, workloads, rep) {
    const hits = workloads.filter((w) => labelSelectorMatches(p.spec?.selector, podTemplate(w).meta.labels) && LONG_RUNNING.has(w.kind));
    if (!hits.length) rep.err(p, "spec.selector", "selects no workload's pods");
    if (p.spec?.maxUnavailable !== undefined && isZero(p.spec.maxUnavailable)) rep.err(p, "spec.maxUnavailable", "0 blocks every voluntary eviction (node drains)");
}

function checkServiceMonitor(sm, byKind, rep) {
    const svcs = (byKind.Service || []).filter((s) => labelSelectorMatches(sm.spec?.selector, s.metadata.labels));
    if (!svcs.length) rep.err(sm, "spec.selector", "selects no Service in the render");
    (sm.spec?.endpoints || []).forEach((e, i) => {
        for (const s of svcs)
            if (e.port && !(s.spec.ports || []).some((p) => p.name === e.port)) rep.err(sm, ["spec", "endpoints", i, "port"], `"${e.port}" is not a port name of Service/${s.metadata.name}`);
        if (e.path && e.path !== "/metrics") rep.err(sm, ["spec", "endpoints", i, "path"], "ringlet serves metrics on /metrics");
    });
}

function checkRender(docs, rep, expectedSpo) {
    const byKind = {};
    for (const d of docs) (byKind[d.kind] ||= []).push(d);
    const seen = new Set();
    for (const d of docs) {
        const key = `${d.apiVersion} ${docId(d)}`;
        if (seen.has(key)) rep.err(d, "", "appears twice in the render");
        seen.add(key);
    }
    const workloads = docs.filter((d) => WORKLOADS.has(d.kind));
    for (const w of workloads) checkWorkload(w, byKind, rep);
    const ringletDeps = (byKind.Deployment || []).filter(isRinglet);
    if (!ringletDeps.length) rep.err({ kind: "Deployment", metadata: { name: "ringlet" } }, "", "not in the render");
    for (const d of ringletDeps) checkRingletDeployment(d, byKind, rep);
    for (const s of byKind.Service || []) checkService(s, byKind, workloads, rep);
    for (const i of byKind.Ingress || []) checkIngress(i, byKind, rep);
    for (const r of byKind.HTTPRoute || []) checkHttpRoute(r, byKind, rep);
    for (const h of byKind.HorizontalPodAutoscaler || []) checkHpa(h, byKind, rep);
    if (ringletDeps.length && !(byKind.HorizontalPodAutoscaler || []).length) rep.err(ringletDeps[0], "", "no HorizontalPodAutoscaler targets it");
    for (const p of byKind.PodDisruptionBudget || []) checkPdb(p, workloads, rep);
    if (ringletDeps.length && !(byKind.PodDisruptionBudget || []).length) rep.err(ringletDeps[0], "", "no PodDisruptionBudget covers it");
    for (const sm of byKind.ServiceMonitor || []) checkServiceMonitor(sm, byKind, rep);
    for (const ns of byKind.Namespace || []) {
        if (ns.metadata?.labels?.["pod-security.kubernetes.io/enforce"] !== "restricted")
            rep.err(ns, "metadata.labels.pod-security.kubernetes.io/enforce", 'must be "restricted"');
    }
    for (const sp of byKind.SeccompProfile || []) {
        if (canonical(sp.spec) !== canonical(expectedSpo.spec))
            rep.err(sp, "spec", "differs from manifests/seccomp/ringlet.json: regenerate with `node scripts/manifest-check/seccomp.mjs spo`");
        for (const w of workloads.filter(isRinglet)) {
            const p = podTemplate(w).spec.securityContext?.seccompProfile?.localhostProfile;
            if (p !== `operator/${sp.metadata.name}.json`)
                rep.err(w, [...podTemplate(w).at, "spec", "securityContext", "seccompProfile", "localhostProfile"], `${p} is not the SeccompProfile's path operator/${sp.metadata.name}.json`);
        }
    }
}

// ---------------------------------------------------------------------------
// Rendering

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), "ringlet-manifests-"));
process.on("exit", () => fs.rmSync(TMP, { recursive: true, force: true }));

function kustomize(dir) {
    try {
        return execFileSync("kubectl", ["kustomize", dir], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    } catch (e) {
        throw new Error(`kubectl kustomize ${path.relative(ROOT, dir) || dir} failed: ${(e.stderr || e.message).trim()}`);
    }
}

// A kustomization in TMP on top of a directory of the repo (kustomize wants
// relative paths to other roots).
let tmpN = 0;
function overlayOn(base, { components = [], patches = [] } = {}) {
    const dir = path.join(TMP, `k${tmpN++}`);
    fs.mkdirSync(dir);
    const k = {
        apiVersion: "kustomize.config.k8s.io/v1beta1",
        kind: "Kustomization",
        resources: [path.relative(dir, base)],
    };
    if (components.length) k.components = components.map((c) => path.relative(dir, c));
    if (patches.length) k.patches = patches.map(([kind, name, ops]) => ({ target: { kind, name }, patch: yaml.dump(ops) }));
    fs.writeFileSync(path.join(dir, "kustomization.yaml"), yaml.dump(k));
    return dir;
}

function renderDocs(dir) {
    return yaml.loadAll(kustomize(dir)).filter((d) => d !== null && d !== undefined);
}

function checkDocs(name, docs, expectedSpo) {
    const rep = new Report(name);
    for (const d of docs) checkSchema(d, rep);
    checkRender(docs, rep, expectedSpo);
    return rep;
}

// ---------------------------------------------------------------------------
// Main

const t0 = Date.now();
const failures = [];
let documents = 0;
const lines = [];
const pass = (s) => lines.push(`  PASS ${s}`);
const fail = (s, errs) => {
    lines.push(`  FAIL ${s}`);
    for (const e of errs) lines.push(`       ${e}`);
    failures.push(s);
};

// the seccomp profile and its SPO copy
const profilePath = path.join(MANIFESTS, "seccomp", "ringlet.json");
let profile;
try {
    profile = JSON.parse(fs.readFileSync(profilePath, "utf8"));
    const errs = checkProfile(profile, "manifests/seccomp/ringlet.json");
    errs.length ? fail("manifests/seccomp/ringlet.json", errs) : pass("manifests/seccomp/ringlet.json: OCI format, io_uring allowed");
} catch (e) {
    fail("manifests/seccomp/ringlet.json", [e.message]);
    profile = { defaultAction: "SCMP_ACT_ERRNO", syscalls: [] };
}
const expectedSpo = toSeccompProfile(profile);
const spoFile = path.join(MANIFESTS, "components", "seccomp-operator", "seccompprofile.yaml");
if (fs.existsSync(spoFile)) {
    fs.readFileSync(spoFile, "utf8") === seccompProfileYaml(expectedSpo, SPO_HEADER)
        ? pass("components/seccomp-operator/seccompprofile.yaml matches ringlet.json")
        : fail("components/seccomp-operator/seccompprofile.yaml", [
              "SeccompProfile/ringlet spec: differs from manifests/seccomp/ringlet.json; regenerate: node scripts/manifest-check/seccomp.mjs spo manifests/seccomp/ringlet.json > manifests/components/seccomp-operator/seccompprofile.yaml",
          ]);
}

// compose.yaml: parses, and uses the seccomp profile
const composePath = path.join(ROOT, "compose.yaml");
if (fs.existsSync(composePath)) {
    const errs = [];
    try {
        const c = yaml.load(fs.readFileSync(composePath, "utf8"));
        for (const [name, s] of Object.entries(c.services || {})) {
            if (!/ringlet/.test(s.image || "") && !s.build) continue;
            const so = (s.security_opt || []).find((x) => /^seccomp[=:]/.test(x));
            if (!so) errs.push(`services.${name}.security_opt: no seccomp=manifests/seccomp/ringlet.json (Docker 25+ blocks io_uring)`);
            else if (!fs.existsSync(path.resolve(ROOT, so.replace(/^seccomp[=:]/, ""))))
                errs.push(`services.${name}.security_opt: ${so} names a file that does not exist`);
        }
        if (!c.services?.postgres || !Object.values(c.services).some((s) => (s.command || []).includes?.("migrate")))
            errs.push("services: wants postgres, ringlet and a one-shot migrate");
    } catch (e) {
        errs.push(`compose.yaml: ${e.message}`);
    }
    errs.length ? fail("compose.yaml", errs) : pass("compose.yaml: ringlet services use the seccomp profile");
}

// every overlay, and production with every optional component
const renders = [];
const overlaysDir = path.join(MANIFESTS, "overlays");
for (const o of fs.readdirSync(overlaysDir).sort()) {
    if (fs.existsSync(path.join(overlaysDir, o, "kustomization.yaml"))) renders.push([`overlays/${o}`, path.join(overlaysDir, o)]);
}
const componentsDir = path.join(MANIFESTS, "components");
const components = fs.existsSync(componentsDir)
    ? fs.readdirSync(componentsDir).sort().filter((c) => fs.existsSync(path.join(componentsDir, c, "kustomization.yaml"))).map((c) => path.join(componentsDir, c))
    : [];
const production = path.join(overlaysDir, "production");
if (components.length && fs.existsSync(production))
    renders.push([`overlays/production + components (${components.map((c) => path.basename(c)).join(", ")})`, overlayOn(production, { components })]);
if (!renders.length) fail("manifests/overlays", ["no overlay found"]);

for (const [name, dir] of renders) {
    let docs;
    try {
        docs = renderDocs(dir);
    } catch (e) {
        fail(name, [e.message]);
        continue;
    }
    documents += docs.length;
    const rep = checkDocs(name, docs, expectedSpo);
    rep.errors.length ? fail(`${name} (${docs.length} documents)`, rep.errors) : pass(`${name}: ${docs.length} documents (${[...new Set(docs.map((d) => d.kind))].join(", ")})`);
}

// Self-test: broken copies must be rejected, naming document and field.
const D = "Deployment";
const C0 = "/spec/template/spec/containers/0";
const CASES = [
    ["unknown field", [[D, "ringlet", [{ op: "add", path: `${C0}/livenessProbe/httpGet/pathh`, value: "/x" }]]], ["Deployment/ringlet", "containers[0].livenessProbe.httpGet.pathh", "unknown field"]],
    ["unknown top-level spec field", [["Service", "ringlet", [{ op: "add", path: "/spec/selectors", value: { a: "b" } }]]], ["Service/ringlet", "spec.selectors", "unknown field"]],
    ["missing limits", [[D, "ringlet", [{ op: "remove", path: `${C0}/resources/limits` }]]], ["Deployment/ringlet", "containers[0].resources.limits", "missing"]],
    ["wrong type", [[D, "ringlet", [{ op: "replace", path: `${C0}/ports/0/containerPort`, value: "8080" }]]], ["Deployment/ringlet", "containers[0].ports[0].containerPort", "must be integer"]],
    ["Service targetPort matches no container port", [["Service", "ringlet", [{ op: "replace", path: "/spec/ports/0/targetPort", value: 8081 }]]], ["Service/ringlet", "spec.ports[0].targetPort", "not a container port"]],
    ["Service selects no pod", [["Service", "ringlet", [{ op: "replace", path: "/spec/selector/app.kubernetes.io~1component", value: "api" }]]], ["Service/ringlet", "spec.selector"]],
    ["Ingress port not on the Service", [["Ingress", "ringlet", [{ op: "replace", path: "/spec/rules/0/http/paths/0/backend/service/port", value: { name: "web" } }]]], ["Ingress/ringlet", "backend.service.port", "not a port of Service/ringlet"]],
    ["probe port not a container port", [[D, "ringlet", [{ op: "replace", path: `${C0}/readinessProbe/httpGet/port`, value: 9090 }]]], ["Deployment/ringlet", "readinessProbe.httpGet.port"]],
    ["listen port differs from container port", [[D, "ringlet", [{ op: "replace", path: `${C0}/ports/0/containerPort`, value: 9000 }]]], ["Deployment/ringlet", "containerPort", "RINGLET_LISTEN"]],
    ["liveness on the database", [[D, "ringlet", [{ op: "replace", path: `${C0}/livenessProbe/httpGet/path`, value: "/readyz" }]]], ["Deployment/ringlet", "livenessProbe.httpGet.path"]],
    ["missing startup probe", [[D, "ringlet", [{ op: "remove", path: `${C0}/startupProbe` }]]], ["Deployment/ringlet", "startupProbe", "missing"]],
    ["privilege escalation", [[D, "ringlet", [{ op: "replace", path: `${C0}/securityContext/allowPrivilegeEscalation`, value: true }]]], ["Deployment/ringlet", "allowPrivilegeEscalation"]],
    ["capabilities not dropped", [["Job", "ringlet-migrate", [{ op: "remove", path: `${C0}/securityContext/capabilities` }]]], ["Job/ringlet-migrate", "capabilities.drop"]],
    ["RuntimeDefault seccomp", [[D, "ringlet", [{ op: "replace", path: "/spec/template/spec/securityContext/seccompProfile", value: { type: "RuntimeDefault" } }]]], ["Deployment/ringlet", "seccompProfile", "ringlet.json"]],
    ["grace period too short", [[D, "ringlet", [{ op: "replace", path: "/spec/template/spec/terminationGracePeriodSeconds", value: 20 }]]], ["Deployment/ringlet", "terminationGracePeriodSeconds"]],
    ["rollout below capacity", [[D, "ringlet", [{ op: "replace", path: "/spec/strategy/rollingUpdate/maxUnavailable", value: 1 }]]], ["Deployment/ringlet", "maxUnavailable"]],
    ["HPA targets another Deployment", [["HorizontalPodAutoscaler", "ringlet", [{ op: "replace", path: "/spec/scaleTargetRef/name", value: "ringlett" }]]], ["HorizontalPodAutoscaler/ringlet", "spec.scaleTargetRef"]],
    ["HPA without behavior", [["HorizontalPodAutoscaler", "ringlet", [{ op: "remove", path: "/spec/behavior" }]]], ["HorizontalPodAutoscaler/ringlet", "spec.behavior"]],
    ["NetworkPolicy without DNS", [["NetworkPolicy", "ringlet", [{ op: "remove", path: "/spec/egress/0" }]]], ["NetworkPolicy/ringlet", "spec.egress", "DNS"]],
    ["literal DATABASE_URL", [[D, "ringlet", [{ op: "replace", path: `${C0}/env/0`, value: { name: "DATABASE_URL", value: "postgresql://u:p@db/x" } }]]], ["Deployment/ringlet", "env[0]", "Secret"]],
    ["misspelt variable", [[D, "ringlet", [{ op: "add", path: `${C0}/env/-`, value: { name: "RINGLET_IDEL_TIMEOUT_MS", value: "90000" } }]]], ["Deployment/ringlet", "RINGLET_IDEL_TIMEOUT_MS", "no such variable"]],
    ["idle timeout at the proxy's", [[D, "ringlet", [{ op: "add", path: `${C0}/env/-`, value: { name: "RINGLET_IDLE_TIMEOUT_MS", value: "60000" } }]]], ["RINGLET_IDLE_TIMEOUT_MS", "upstream-keepalive-timeout"]],
    ["unknown field in a CRD (HTTPRoute)", [["HTTPRoute", "ringlet", [{ op: "add", path: "/spec/rules/0/backendRefs/0/portt", value: 80 }]]], ["HTTPRoute/ringlet", "spec.rules[0].backendRefs[0].portt", "unknown field"], true],
    ["HTTPRoute port not on the Service", [["HTTPRoute", "ringlet", [{ op: "replace", path: "/spec/rules/0/backendRefs/0/port", value: 8080 }]]], ["HTTPRoute/ringlet", "backendRefs[0].port"], true],
    ["ServiceMonitor port name", [["ServiceMonitor", "ringlet", [{ op: "replace", path: "/spec/endpoints/0/port", value: "metrics" }]]], ["ServiceMonitor/ringlet", "spec.endpoints[0].port"], true],
].filter(([what]) => what !== "misspelt variable" || KNOWN_VARS);
let rejected = 0;
const selfErrs = [];
if (fs.existsSync(production)) {
    for (const [what, patches, needles, withComponents] of CASES) {
        let errs;
        try {
            const docs = renderDocs(overlayOn(production, { components: withComponents ? components : [], patches }));
            errs = checkDocs(what, docs, expectedSpo).errors;
        } catch (e) {
            selfErrs.push(`"${what}": could not render the broken copy: ${e.message}`);
            continue;
        }
        const hit = errs.find((e) => needles.every((n) => e.includes(n)));
        if (hit) {
            rejected++;
            if (process.env.RINGLET_CHECK_VERBOSE) lines.push(`       self-test "${what}" -> ${hit}`);
        } else selfErrs.push(`"${what}" was not rejected with a message naming ${needles.join(" + ")}; got: ${errs.length ? errs.join(" | ") : "no error at all"}`);
    }
    selfErrs.length ? fail(`self-test: ${rejected}/${CASES.length} broken copies rejected`, selfErrs) : pass(`self-test: ${CASES.length}/${CASES.length} broken copies rejected, each naming document and field`);
}

console.log(lines.join("\n"));
const secs = ((Date.now() - t0) / 1000).toFixed(1);
if (failures.length) {
    console.log(`check-manifests: FAIL (${failures.length} check${failures.length > 1 ? "s" : ""} failed; ${renders.length} renders, ${documents} documents, ${secs} s)`);
    process.exit(1);
}
console.log(`check-manifests: PASS (${renders.length} renders, ${documents} documents, ${CASES.length} broken copies rejected, ${secs} s)`);
